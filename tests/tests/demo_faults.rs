//! The server holds up under hostile clients while a soak runs: clients
//! that disconnect mid-request, reset, half-close, send a line far larger
//! than any buffer, send binary garbage, or trickle one byte at a time, and
//! malformed requests to the admin endpoint, all during every batch. The
//! soak's own clients lose no session (each checks it reads back its own
//! value), the server keeps running, the leaky variant stays `leak` and the
//! fixed variant `ok`. With its descriptor limit lowered below the number of
//! concurrent clients, the server survives the accept errors and serves
//! every cycle once descriptors free.

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::admin_client::AdminClient;
use demo_server::client::reset;
use demo_server::patterns::{Pattern, Variant};
use demo_server::soak::BatchHook;
use demo_support::{assert_verdict, options, run_checks, server_role, soak, start};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Reads until EOF (or a reset, or the timeout), returning what came.
fn read_all(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 8 << 20 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn expect(got: &str, want: &[&str], what: &str) -> Result<(), String> {
    let lines: Vec<&str> = got.lines().collect();
    let ok = lines.len() == want.len() + 1 && lines[0].starts_with("hello ") && lines[1..] == *want;
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want hello + {want:?}"))
    }
}

/// Every misbehaving client, once, against the line-protocol port.
fn hostile_clients(addr: SocketAddr, round: u64) -> Result<(), String> {
    // Disconnect in the middle of a request line.
    let mut s = connect(addr)?;
    let _ = s.write_all(b"set us");
    drop(s);

    // Reset (SO_LINGER 0) after a request, and before sending anything.
    let mut s = connect(addr)?;
    let _ = s.write_all(b"set user x\n");
    reset(&s);
    drop(s);
    let s = connect(addr)?;
    reset(&s);
    drop(s);

    // Half-close: the answers still arrive.
    let mut s = connect(addr)?;
    s.write_all(b"set k v\nget k\n")
        .map_err(|e| e.to_string())?;
    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    expect(&read_all(&mut s), &["ok", "v"], "half-close")?;

    // A line far larger than any buffer: refused, connection closed.
    let mut s = connect(addr)?;
    let line = vec![b'a'; 1 << 20];
    let _ = s.write_all(&line); // the server may close before all is sent
    let got = read_all(&mut s);
    if !got.contains("error line too long") {
        return Err(format!("huge line: got {:?}", &got[..got.len().min(200)]));
    }

    // Binary garbage, then a well-formed quit.
    let mut s = connect(addr)?;
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ round;
    let garbage: Vec<u8> = (0..2048)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    s.write_all(&garbage).map_err(|e| format!("garbage: {e}"))?;
    s.write_all(b"\nquit\n")
        .map_err(|e| format!("garbage: {e}"))?;
    let got = read_all(&mut s);
    if !got.ends_with("bye\n") || !got.contains("error") {
        return Err(format!("garbage: got {got:?}"));
    }

    // Multi-byte characters across every place the server cuts a line.
    let mut s = connect(addr)?;
    for pad in 0..4 {
        let line = format!("log {}{}\n", "x".repeat(pad), "é".repeat(60));
        s.write_all(line.as_bytes())
            .map_err(|e| format!("utf-8: {e}"))?;
    }
    s.write_all(b"quit\n").map_err(|e| format!("utf-8: {e}"))?;
    expect(
        &read_all(&mut s),
        &["ok", "ok", "ok", "ok", "bye"],
        "utf-8 lines",
    )?;

    // Many requests whose answers the client does not read for a while:
    // the server stops answering (its buffer is bounded), then goes on.
    let mut s = connect(addr)?;
    let value = "v".repeat(1000);
    s.write_all(format!("set big {value}\n").as_bytes())
        .map_err(|e| format!("backlog: {e}"))?;
    let gets = "get big\n".repeat(2000);
    let writer = {
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            let _ = w.write_all(gets.as_bytes());
            let _ = w.write_all(b"quit\n");
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let got = read_all(&mut s);
    let _ = writer.join();
    let answers = got.lines().filter(|l| *l == value).count();
    if answers != 2000 || !got.ends_with("bye\n") {
        return Err(format!("backlog: {answers} of 2000 answers"));
    }

    // One byte at a time.
    let mut s = connect(addr)?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    for b in b"set user slow\nget user\nquit\n" {
        s.write_all(&[*b]).map_err(|e| format!("trickle: {e}"))?;
        std::thread::sleep(Duration::from_micros(300));
    }
    expect(
        &read_all(&mut s),
        &["ok", "slow", "bye"],
        "one byte at a time",
    )
}

/// Malformed requests to the admin endpoint: each gets its 4xx status.
fn hostile_admin(admin: SocketAddr) -> Result<(), String> {
    let many_headers: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"\x00\xff\xfe binary \x01\r\n\r\n".to_vec(), 400),
        (b"GET /nope HTTP/1.1\r\n\r\n".to_vec(), 404),
        (b"DELETE /epoch HTTP/1.1\r\n\r\n".to_vec(), 405),
        (b"POST /metrics HTTP/1.1\r\n\r\n".to_vec(), 405),
        (b"GET /snapshot?cycles=abc HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            b"GET /snapshot?cycles=1&cycles=2 HTTP/1.1\r\n\r\n".to_vec(),
            400,
        ),
        (b"GET /snapshot?frobnicate=1 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET /epoch?x=1 HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            format!("GET / HTTP/1.1\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
        (
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000)).into_bytes(),
            431,
        ),
        (b"GET / HTTP/1.1\r\nHost: x".to_vec(), 400), // then half-closed
    ];
    for (raw, want) in cases {
        let mut s = connect(admin)?;
        let _ = s.write_all(&raw);
        let _ = s.shutdown(Shutdown::Write);
        let got = read_all(&mut s);
        let status: Option<u16> = got
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        if status != Some(want) {
            return Err(format!(
                "admin request {:?}: want {want}, got {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(60)]),
                got.lines().next()
            ));
        }
    }
    // A client that resets at once, and one that sends nothing and leaves.
    let s = connect(admin)?;
    reset(&s);
    drop(s);
    drop(connect(admin)?);
    AdminClient::new(admin)
        .open_connections()
        .map(drop)
        .map_err(|e| e.to_string())
}

fn faults_during_soak(variant: Variant) {
    let pattern = Pattern::GlobalList;
    let mut server = start(pattern, variant, &[]);
    let (addr, admin) = (server.server, server.admin);
    let mut o = options(&server, &format!("faults-{variant}"), 600, 50);
    o.during_batch = Some(BatchHook(Arc::new(move |done| {
        hostile_clients(addr, done)?;
        hostile_admin(admin)
    })));
    let r = soak(&o);
    assert!(server.is_running(), "the server died");
    assert_eq!(r.failed, 0, "soak clients failed while faults happened");
    // Hostile connections are connections too: with the leaky variant they
    // leak a record each, so only the verdicts are checked here.
    let v = r.verdict.kind.as_str();
    match variant {
        Variant::Leaky => assert_eq!(v, "leak", "{:?}", r.verdict),
        Variant::Fixed => {
            assert_eq!(v, "ok", "{:?}", r.verdict);
            assert_eq!(r.verdict.final_survivors.bytes, 0);
        }
    }
    let _ = std::fs::remove_dir_all(&o.out);
}

fn accept_errors(admin: SocketAddr) -> u64 {
    let (status, body) = AdminClient::new(admin)
        .request("GET", "/metrics")
        .expect("metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("demo_server_accept_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("demo_server_accept_errors_total in /metrics")
}

fn descriptor_limit_below_clients(variant: Variant) {
    let pattern = Pattern::GlobalList;
    // Twelve descriptors are left once the server listens (the admin
    // endpoint needs one per request too), and 64 clients connect at once.
    let mut server = start(pattern, variant, &["--spare-fds", "12"]);
    let mut o = options(&server, &format!("fds-{variant}"), 600, 100);
    o.concurrency = 64;
    let r = soak(&o);
    assert!(server.is_running(), "the server died");
    let errors = accept_errors(server.admin);
    assert!(
        errors > 0,
        "no accept error: the limit did not bite (64 clients, 12 descriptors)"
    );
    assert_verdict(pattern, variant, &r);
    let _ = std::fs::remove_dir_all(&o.out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    run_checks(&[
        ("faults_during_soak_leaky_stays_leak", || {
            faults_during_soak(Variant::Leaky)
        }),
        ("faults_during_soak_fixed_stays_ok", || {
            faults_during_soak(Variant::Fixed)
        }),
        ("descriptor_limit_below_clients_leaky", || {
            descriptor_limit_below_clients(Variant::Leaky)
        }),
        ("descriptor_limit_below_clients_fixed", || {
            descriptor_limit_below_clients(Variant::Fixed)
        }),
    ])
}
