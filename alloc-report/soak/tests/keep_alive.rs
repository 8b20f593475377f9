//! `--requests-per-conn` (keep-alive) and the soak's one-way snapshot path,
//! over real loopback TCP against a small HTTP/1.1 server of this test's
//! own (a thread per connection, every read bounded by a timeout) and a fake
//! admin endpoint that serves snapshot files it records.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloc_snapshot::file::{encode, SnapshotFile};
use alloc_snapshot::Snapshot;
use alloc_soak::client::{LoadClient, Script};
use alloc_soak::soak::{self, SoakOptions};
use common::read_head;

mod common;

/// How the test server answers.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// Say `Connection: close` (and close) after this many requests.
    close_after: Option<usize>,
    /// Chunked bodies instead of `Content-Length`.
    chunked: bool,
}

/// What the test server saw.
#[derive(Default)]
struct Seen {
    /// Request paths, in arrival order.
    paths: Mutex<Vec<String>>,
    /// Requests per connection, as each connection ended.
    per_connection: Mutex<Vec<usize>>,
    /// Requests that asked for `Connection: close`.
    close_requests: AtomicU64,
    /// Connections open now.
    open: AtomicU64,
}

fn serve_connection(mut s: TcpStream, how: Behaviour, seen: &Seen) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut served = 0;
    while let Some(head) = read_head(&mut s, &mut buf) {
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let asked_close = head.to_ascii_lowercase().contains("connection: close");
        if asked_close {
            seen.close_requests.fetch_add(1, SeqCst);
        }
        served += 1;
        let close = asked_close || how.close_after == Some(served);
        let body = format!("hello {}\n", path.trim_start_matches("/r/"));
        let mut answer = String::from("HTTP/1.1 200 OK\r\n");
        if close {
            answer.push_str("Connection: close\r\n");
        }
        if how.chunked {
            let (a, b) = body.split_at(3);
            answer.push_str("Transfer-Encoding: chunked\r\n\r\n");
            answer.push_str(&format!(
                "{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            ));
        } else {
            answer.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        }
        seen.paths.lock().unwrap().push(path);
        if s.write_all(answer.as_bytes()).is_err() || close {
            break;
        }
    }
    seen.per_connection.lock().unwrap().push(served);
}

/// Starts the test server; it runs until the test process ends.
fn start_server(how: Behaviour) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            // Counted before the client can ask the admin endpoint.
            shared.open.fetch_add(1, SeqCst);
            let seen = Arc::clone(&shared);
            std::thread::spawn(move || {
                serve_connection(s, how, &seen);
                seen.open.fetch_sub(1, SeqCst);
            });
        }
    });
    (addr, seen)
}

fn http(path: &str) -> Script {
    Script::Http {
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// The paths the server saw, sorted.
fn sorted_paths(seen: &Seen) -> Vec<String> {
    let mut p = seen.paths.lock().unwrap().clone();
    p.sort();
    p
}

/// Waits (bounded) until the server has seen every connection end.
fn wait_closed(seen: &Seen, connections: usize) {
    for _ in 0..1000 {
        if seen.per_connection.lock().unwrap().len() >= connections {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the server did not see {connections} connections end");
}

fn expected_paths(first: u64, count: u64) -> Vec<String> {
    let mut v: Vec<String> = (first..first + count).map(|n| format!("/r/{n}")).collect();
    v.sort();
    v
}

/// Runs `count` cycles of `script` numbered from `first`, `per` to a
/// connection, `concurrency` connections at once; returns (completed,
/// failed, connections), the connections' request counts, sorted, once
/// the server has seen every connection end, and the next unused number.
fn run(
    addr: SocketAddr,
    seen: &Seen,
    script: Script,
    per: u64,
    (first, count, concurrency): (u64, u64, usize),
) -> ((u64, u64, u64), Vec<usize>, u64) {
    let mut client = LoadClient::new(addr, script)
        .unwrap()
        .requests_per_connection(per);
    let stats = client
        .run(first, count, concurrency, Duration::from_secs(20))
        .unwrap();
    wait_closed(seen, stats.connections as usize);
    let mut per_connection = seen.per_connection.lock().unwrap().clone();
    per_connection.sort();
    (
        (stats.completed, stats.failed, stats.connections),
        per_connection,
        stats.next,
    )
}

#[test]
fn http_keep_alive_carries_n_cycles_per_connection() {
    let (addr, seen) = start_server(Behaviour::default());
    let (stats, per, _) = run(addr, &seen, http("/r/{cycle}"), 4, (100, 40, 3));
    assert_eq!(stats, (40, 0, 10));
    assert_eq!(per, [4; 10]);
    // Every cycle's own request, once.
    assert_eq!(sorted_paths(&seen), expected_paths(100, 40));
    // Each connection's last request, and only it, said Connection: close.
    assert_eq!(seen.close_requests.load(SeqCst), 10);
}

#[test]
fn the_servers_connection_close_is_obeyed_and_chunks_are_framed() {
    let (addr, seen) = start_server(Behaviour {
        close_after: Some(2),
        chunked: true,
    });
    let (stats, per, next) = run(addr, &seen, http("/r/{cycle}"), 5, (0, 30, 4));
    assert_eq!((stats.0, stats.1), (30, 0));
    // No connection carries a third request; the rest of each block of 5
    // goes to new connections (the last blocks may be shorter than 2).
    assert!(stats.2 >= 15, "{} connections", stats.2);
    assert_eq!(per.len() as u64, stats.2);
    assert!(per.iter().all(|&k| k == 1 || k == 2), "{per:?}");
    // Cycles are numbered in blocks, and the unused numbers of a block
    // the server cut short are not reused, by this run or the next one,
    // which starts at the number this one says: 40 distinct requests.
    let (stats, ..) = run(addr, &seen, http("/r/{cycle}"), 5, (next, 10, 4));
    assert_eq!((stats.0, stats.1), (10, 0));
    let paths = sorted_paths(&seen);
    assert_eq!(paths.len(), 40);
    assert!(paths.windows(2).all(|w| w[0] != w[1]), "{paths:?}");
}

#[test]
fn a_batch_that_does_not_divide_ends_its_connections_early() {
    let (addr, seen) = start_server(Behaviour::default());
    let (stats, per, _) = run(addr, &seen, http("/r/{cycle}"), 5, (7, 23, 3));
    // Blocks of 5: four full connections and one of 3.
    assert_eq!(stats, (23, 0, 5));
    assert_eq!(per, [3, 5, 5, 5, 5]);
    assert_eq!(seen.close_requests.load(SeqCst), 5);
    assert_eq!(sorted_paths(&seen), expected_paths(7, 23));
}

#[test]
fn raw_tcp_keep_alive_waits_for_each_cycles_templated_marker() {
    let (addr, seen) = start_server(Behaviour::default());
    let script = Script::Custom {
        request: b"GET /r/{cycle} HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        until: b"hello {cycle}\n".to_vec(),
    };
    let (stats, per, _) = run(addr, &seen, script, 4, (0, 20, 2));
    assert_eq!(stats, (20, 0, 5));
    assert_eq!(per, [4; 5]);
    assert_eq!(sorted_paths(&seen), expected_paths(0, 20));
}

#[test]
fn scripts_that_cannot_keep_a_connection_take_one_per_cycle() {
    let close_delimited = Script::Custom {
        request: b"x".to_vec(),
        until: Vec::new(),
    };
    assert!(!close_delimited.can_keep_alive());
    assert!(!Script::Demo.can_keep_alive());
    assert!(http("/").can_keep_alive());
    let mut o = SoakOptions::new(
        "127.0.0.1:9".parse().unwrap(),
        "127.0.0.1:9".parse().unwrap(),
        std::env::temp_dir(),
    );
    o.script = close_delimited;
    o.requests_per_connection = 2;
    let e = soak::run(&o).unwrap_err();
    assert!(e.to_string().contains("--until"), "{e}");
}

/// A fake admin endpoint over `seen.open`: `/connections`, `POST /epoch`,
/// `/snapshot?cycles=N` (an empty snapshot at the current epoch, its bytes
/// recorded).
fn start_admin(seen: Arc<Seen>) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&served);
    std::thread::spawn(move || {
        let epoch = AtomicU64::new(1);
        for mut s in listener.incoming().flatten() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let Some(head) = read_head(&mut s, &mut Vec::new()) else {
                continue;
            };
            let target = head.split(' ').nth(1).unwrap_or("");
            let body = if target == "/connections" {
                format!("{{\"open\":{}}}", seen.open.load(SeqCst)).into_bytes()
            } else if target == "/epoch" {
                format!("{{\"epoch\":{}}}", epoch.fetch_add(1, SeqCst) + 1).into_bytes()
            } else {
                let cycles = target
                    .strip_prefix("/snapshot?cycles=")
                    // The soak's last request adds `&retention=1`.
                    .map(|n| n.split('&').next().unwrap_or(n).parse().unwrap());
                let snapshot = Snapshot {
                    epoch: epoch.load(SeqCst) as u32,
                    ..Snapshot::default()
                };
                let bytes = encode(&SnapshotFile { cycles, snapshot });
                if cycles.is_some() {
                    record.lock().unwrap().push(bytes.clone());
                }
                bytes
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    (addr, served)
}

#[test]
fn a_soak_keeps_connections_and_writes_each_snapshot_as_served() {
    let (addr, seen) = start_server(Behaviour::default());
    let (admin, served) = start_admin(Arc::clone(&seen));
    let out = std::env::temp_dir().join(format!("keep-alive-soak-{}", std::process::id()));
    let mut o = SoakOptions::new(addr, admin, out.clone());
    o.script = http("/r/{cycle}");
    o.requests_per_connection = 10;
    o.cycles = 200;
    o.batch = 50;
    o.warmup = 20;
    o.concurrency = 5;
    let r = soak::run(&o).unwrap();
    assert_eq!((r.cycles, r.failed, r.connections), (200, 0, 20));
    assert_eq!(sorted_paths(&seen), expected_paths(0, 220));
    // One file per snapshot kept, byte for byte what the endpoint served
    // (no stacks to symbolise), and the report made from the same snapshots.
    let served = served.lock().unwrap().clone();
    assert_eq!(served.len(), 5);
    for (i, bytes) in served.iter().enumerate() {
        let file = out.join(format!("series/{i:06}.json"));
        assert_eq!(&std::fs::read(&file).unwrap(), bytes, "{}", file.display());
    }
    assert_eq!(r.report.overall.kind.as_str(), "ok");
    let report_json = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert_eq!(report_json, alloc_report::render::report_json(&r.report));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_flag_on_the_command_line() {
    let (addr, seen) = start_server(Behaviour::default());
    let (admin, _) = start_admin(Arc::clone(&seen));
    let out = std::env::temp_dir().join(format!("keep-alive-cli-{}", std::process::id()));
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_alloc-soak"))
            .args(["--server", &addr.to_string(), "--admin", &admin.to_string()])
            .args(["--out", out.to_str().unwrap(), "--no-progress", "--replace"])
            .args(["--cycles", "300", "--batch", "100", "--warmup", "0"])
            .args(extra)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        (o.status.code(), text)
    };
    let (code, text) = run(&["--http", "GET /r/{cycle}", "--requests-per-conn", "25"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("300 cycles on 12 connections in "), "{text}");
    let (code, text) = run(&["--http", "GET /r/{cycle}"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("300 cycles in "), "{text}");
    // Raw TCP needs an end marker to keep a connection; 0 is no count.
    let (code, text) = run(&["--send", "x", "--requests-per-conn", "2"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--until"), "{text}");
    let (code, text) = run(&["--http", "GET /", "--requests-per-conn", "0"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--requests-per-conn"), "{text}");
    std::fs::remove_dir_all(&out).unwrap();
}
