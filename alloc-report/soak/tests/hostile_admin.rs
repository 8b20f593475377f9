//! `alloc-soak` against admin endpoints that misbehave, and output
//! directories that hold others' files, over real loopback TCP: a fake
//! admin endpoint of this test's own (one thread, every read bounded by a
//! timeout) that also answers the soak's cycles (`GET /r/N`), and the real
//! binary, killed (and the test failed) if it runs past a minute.
//!
//! - busy (503) a few times, then normal: the soak succeeds and prints a
//!   line per retry; busy or silent for good: exit 2 naming the call,
//!   within the retry bound;
//! - a 300 MiB snapshot body, with and without `Content-Length`: refused,
//!   having read at most the bound, its peak memory printed;
//! - snapshots of two runs: exit 2 naming the file;
//! - a token: sent as `Authorization: Bearer` on every request, from the
//!   flag or the environment;
//! - `--out` with others' files in `series/`: refused; `--replace` deletes
//!   only the earlier soak's files.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloc_snapshot::file::{encode, SnapshotFile};
use alloc_snapshot::{RunIdentity, Snapshot};
use alloc_soak::admin_client::MAX_BODY_BYTES;
use common::read_head;

mod common;

/// How the fake endpoint misbehaves.
#[derive(Clone, Default)]
struct Fake {
    /// Answer `503 busy` to this many admin requests first.
    busy_first: u64,
    /// Answer `503 busy` to every admin request.
    busy_always: bool,
    /// Accept admin requests and never answer them.
    silent: bool,
    /// Serve `/snapshot` as a 300 MiB body: `Some(true)` with its
    /// `Content-Length`, `Some(false)` until the connection closes.
    big: Option<bool>,
    /// Snapshot `k` carries `runs[k % runs.len()]` (none if empty).
    runs: Vec<RunIdentity>,
    /// Answer 401 to admin requests without `Authorization: Bearer` this.
    token: Option<String>,
}

/// What the fake endpoint saw and did.
#[derive(Default)]
struct Seen {
    /// Admin requests (not cycles).
    admin: AtomicU64,
    /// Admin requests answered 401.
    unauthorized: AtomicU64,
    /// Body bytes of a big snapshot written before the client stopped.
    big_sent: AtomicU64,
}

const BIG: u64 = 300 << 20;

fn answer(s: &mut TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

/// Starts the fake endpoint; it also answers the soak's `GET /r/N` cycles.
fn start(fake: Fake) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let saw = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut epoch = 1u32;
        let mut snapshots = 0usize;
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let Some(head) = read_head(&mut s, &mut Vec::new()) else {
                continue;
            };
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            if target.starts_with("/r/") {
                answer(&mut s, "200 OK", b"ok\n");
                continue;
            }
            let n = saw.admin.fetch_add(1, SeqCst);
            if fake.silent {
                held.push(s);
                continue;
            }
            if fake.busy_always || n < fake.busy_first {
                answer(&mut s, "503 Service Unavailable", b"busy\n");
                continue;
            }
            if let Some(t) = &fake.token {
                let wanted = format!("authorization: bearer {}", t.to_ascii_lowercase());
                if !head
                    .to_ascii_lowercase()
                    .lines()
                    .any(|l| l.trim() == wanted)
                {
                    saw.unauthorized.fetch_add(1, SeqCst);
                    answer(&mut s, "401 Unauthorized", b"token required\n");
                    continue;
                }
            }
            if target == "/connections" {
                answer(&mut s, "200 OK", b"{\"open\":0}");
            } else if target == "/epoch" {
                epoch += 1;
                answer(
                    &mut s,
                    "200 OK",
                    format!("{{\"epoch\":{epoch}}}").as_bytes(),
                );
            } else if let Some(with_length) = fake.big.filter(|_| target.starts_with("/snapshot")) {
                let head = if with_length {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n")
                } else {
                    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
                };
                let _ = s.write_all(head.as_bytes());
                let chunk = vec![b' '; 1 << 20];
                let mut sent = 0;
                while sent < BIG && s.write_all(&chunk).is_ok() {
                    sent += chunk.len() as u64;
                }
                saw.big_sent.store(sent, SeqCst);
            } else if target.starts_with("/snapshot") {
                let cycles = target
                    .strip_prefix("/snapshot?cycles=")
                    // The soak's last request adds `&retention=1`.
                    .map(|n| n.split('&').next().unwrap_or(n).parse().unwrap());
                let run =
                    (!fake.runs.is_empty()).then(|| fake.runs[snapshots % fake.runs.len()].clone());
                snapshots += 1;
                let snapshot = Snapshot {
                    epoch,
                    timestamp_unix_ns: 1_700_000_000_000_000_000 + u64::from(epoch),
                    run,
                    ..Snapshot::default()
                };
                answer(
                    &mut s,
                    "200 OK",
                    &encode(&SnapshotFile { cycles, snapshot }),
                );
            } else {
                answer(&mut s, "404 Not Found", b"");
            }
        }
    });
    (addr, seen)
}

/// What a run of the binary gave.
struct Ran {
    code: Option<i32>,
    /// Standard output and standard error.
    text: String,
    took: Duration,
    /// The most resident memory seen (`VmHWM`, sampled every 5 ms).
    peak_kib: u64,
}

/// Runs `alloc-soak` against `addr` with a short soak and `extra`
/// arguments (and `env`); killed after a minute.
fn soak(addr: SocketAddr, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Ran {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_alloc-soak"))
        .args(["--server", &addr.to_string(), "--admin", &addr.to_string()])
        .args(["--out", out.to_str().unwrap(), "--no-progress"])
        .args([
            "--http",
            "GET /r/{cycle}",
            "--cycles",
            "40",
            "--batch",
            "10",
        ])
        .args(["--warmup", "0", "--concurrency", "2"])
        .args(extra)
        .env_remove("ALLOC_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    // Drained on threads, so that a full pipe never stalls the child.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out_text = drain(Box::new(child.stdout.take().unwrap()));
    let err_text = drain(Box::new(child.stderr.take().unwrap()));
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("alloc-soak {extra:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let text = out_text.join().unwrap() + &err_text.join().unwrap();
    Ran {
        code,
        text,
        took,
        peak_kib,
    }
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hostile-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_busy_endpoint_is_retried_and_one_that_stays_busy_is_named() {
    let (addr, seen) = start(Fake {
        busy_first: 3,
        ..Fake::default()
    });
    let out = out_dir("busy");
    let r = soak(addr, &out, &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    let retries: Vec<&str> = r.text.lines().filter(|l| l.contains("; retry ")).collect();
    assert_eq!(retries.len(), 3, "{}", r.text);
    assert!(
        retries[0].contains("GET /connections: status 503: busy"),
        "{}",
        r.text
    );
    assert!(seen.admin.load(SeqCst) > 3);
    assert!(out.join("series/000004.json").is_file(), "{}", r.text);

    // Busy for good: exit 2 naming the call, within the bound.
    let (addr, _) = start(Fake {
        busy_always: true,
        ..Fake::default()
    });
    let r = soak(addr, &out, &["--replace", "--admin-retry-secs", "3"], &[]);
    println!("busy for good: {:?}: {}", r.took, r.text);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("GET /connections: gave up after") && r.text.contains("status 503"),
        "{}",
        r.text
    );
    assert!(r.took < Duration::from_secs(8), "{:?}", r.took);

    // Silent (accepts, never answers): each attempt times out.
    let (addr, _) = start(Fake {
        silent: true,
        ..Fake::default()
    });
    let r = soak(addr, &out, &["--replace", "--admin-retry-secs", "3"], &[]);
    println!("silent: {:?}: {}", r.took, r.text);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("GET /connections: gave up after") && r.text.contains("timeout"),
        "{}",
        r.text
    );
    assert!(r.took < Duration::from_secs(10), "{:?}", r.took);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_body_over_the_bound_is_refused_without_reading_it_all() {
    for with_length in [true, false] {
        let (addr, seen) = start(Fake {
            big: Some(with_length),
            ..Fake::default()
        });
        let out = out_dir("big");
        let r = soak(addr, &out, &[], &[]);
        let sent = seen.big_sent.load(SeqCst);
        println!(
            "300 MiB body, Content-Length {with_length}: exit {:?} in {:?}, peak RSS {} KiB, \
             {} MiB sent before the client stopped: {}",
            r.code,
            r.took,
            r.peak_kib,
            sent >> 20,
            r.text
        );
        assert_eq!(r.code, Some(2), "{}", r.text);
        assert!(r.text.contains("GET /snapshot"), "{}", r.text);
        if with_length {
            assert!(r.text.contains("refused unread"), "{}", r.text);
            // What the socket buffers took, at most.
            assert!(sent < 32 << 20, "{sent}");
            assert!(r.peak_kib < 64 << 10, "{} KiB", r.peak_kib);
        } else {
            assert!(r.text.contains("refused after reading"), "{}", r.text);
            assert!(sent < MAX_BODY_BYTES + (32 << 20), "{sent}");
            // The body up to the bound, in a vector that doubles.
            assert!(
                r.peak_kib < (3 * MAX_BODY_BYTES) >> 10,
                "{} KiB",
                r.peak_kib
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

fn run_identity(pid: u32) -> RunIdentity {
    RunIdentity {
        pid,
        started_unix_ns: 1_690_000_000_000_000_000,
        id: format!("{pid:032x}"),
    }
}

#[test]
fn snapshots_of_another_run_end_the_soak() {
    let (addr, _) = start(Fake {
        runs: vec![run_identity(100), run_identity(200)],
        ..Fake::default()
    });
    let out = out_dir("runs");
    let r = soak(addr, &out, &[], &[]);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("series/000001.json")
            && r.text.contains("another process run")
            && r.text.contains("pid 200"),
        "{}",
        r.text
    );
    // The other run's snapshot was not written.
    assert!(out.join("series/000000.json").is_file());
    assert!(!out.join("series/000001.json").exists());
    // One run throughout: a soak.
    let (addr, _) = start(Fake {
        runs: vec![run_identity(300)],
        ..Fake::default()
    });
    let r = soak(addr, &out, &["--replace"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_token_goes_with_every_request() {
    let token = "s3cret-token";
    let fake = Fake {
        token: Some(token.into()),
        ..Fake::default()
    };
    let out = out_dir("token");
    let (addr, seen) = start(fake.clone());
    let r = soak(addr, &out, &["--admin-token", token], &[]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(seen.unauthorized.load(SeqCst), 0);
    assert!(seen.admin.load(SeqCst) >= 15, "{}", seen.admin.load(SeqCst));
    let (addr, seen) = start(fake.clone());
    let r = soak(addr, &out, &["--replace"], &[("ALLOC_ADMIN_TOKEN", token)]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(seen.unauthorized.load(SeqCst), 0);
    // Without it: the endpoint's 401, named, and no retry.
    let (addr, seen) = start(fake);
    let r = soak(addr, &out, &["--replace"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("GET /connections: status 401"),
        "{}",
        r.text
    );
    assert_eq!(seen.unauthorized.load(SeqCst), 1);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn files_in_out_that_a_soak_did_not_write_survive() {
    let (addr, _) = start(Fake::default());
    let out = out_dir("out");
    let series = out.join("series");
    std::fs::create_dir_all(&series).unwrap();
    std::fs::write(series.join("notes.txt"), "mine").unwrap();
    // Someone's notes in series/: refused, nothing touched.
    let r = soak(addr, &out, &[], &[]);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("notes.txt") && r.text.contains("did not write"),
        "{}",
        r.text
    );
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&series), ["notes.txt"]);
    // --replace: written beside them.
    let r = soak(addr, &out, &["--replace"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert_eq!(names(&series).len(), 6);
    assert_eq!(
        std::fs::read_to_string(series.join("notes.txt")).unwrap(),
        "mine"
    );
    // An earlier soak: refused without --replace, its files unchanged.
    let before = std::fs::read(series.join("000002.json")).unwrap();
    let r = soak(addr, &out, &[], &[]);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("earlier soak") && r.text.contains("--replace"),
        "{}",
        r.text
    );
    assert_eq!(std::fs::read(series.join("000002.json")).unwrap(), before);
    // With it: the earlier series goes (a longer one leaves no file
    // behind from a shorter one, and vice versa).
    std::fs::copy(series.join("000004.json"), series.join("000009.json")).unwrap();
    let r = soak(addr, &out, &["--replace"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.text);
    assert!(!series.join("000009.json").exists());
    assert_ne!(std::fs::read(series.join("000002.json")).unwrap(), before);
    // A series file's name that is not a snapshot file: never deleted.
    std::fs::write(series.join("000007.json"), "my own numbers").unwrap();
    let r = soak(addr, &out, &["--replace"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.text);
    assert!(
        r.text.contains("000007.json") && r.text.contains("not written by a soak"),
        "{}",
        r.text
    );
    assert_eq!(
        std::fs::read_to_string(series.join("000007.json")).unwrap(),
        "my own numbers"
    );
    assert_eq!(names(&series).len(), 7);
    assert_eq!(
        std::fs::read_to_string(series.join("notes.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
