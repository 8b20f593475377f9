//! A soak gets through while hostile local clients keep the admin endpoint
//! busy: 48 connections that send nothing (more than the endpoint's
//! workers and queue hold, so it answers the rest `503`), held for 3 s
//! from before the soak's first call, then in bursts (held 0.7 s, 0.3 s
//! apart) for as long as the soak runs. The soak (`demo-server soak`, this
//! test binary in a child process, so that its standard error can be
//! read) retries busy and silent calls with backoff, printing a line per
//! retry, and finishes with the fixed server's `ok`; before it retried,
//! the first `503` ended it (exit 2). The hostile clients are checked to
//! have met a `503` themselves: the endpoint really was full. How many
//! calls were retried depends on how the endpoint shares itself out, so
//! it is printed, not checked (`alloc-soak`'s `hostile_admin.rs` checks
//! the retries against a fake endpoint).

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{out_dir, run_checks, server_role, start, SERVER_ROLE};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Connections per burst: more than the endpoint's 4 workers and queue of
/// 32 hold.
const HOSTILE: usize = 48;

/// Opens `HOSTILE` connections that send nothing.
fn burst(admin: SocketAddr) -> Vec<TcpStream> {
    (0..HOSTILE)
        .filter_map(|_| TcpStream::connect_timeout(&admin, Duration::from_secs(1)).ok())
        .collect()
}

/// Closes a burst's connections; counts those the endpoint refused (a
/// refused one has its `503` waiting; a held one has nothing).
fn release(held: Vec<TcpStream>, busy: &AtomicU64) {
    for mut s in held {
        let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
        let mut head = [0u8; 12];
        if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 503") {
            busy.fetch_add(1, SeqCst);
        }
    }
}

/// Bursts of idle connections until `stop`.
fn hostile(admin: SocketAddr, stop: Arc<AtomicBool>, busy: Arc<AtomicU64>) {
    while !stop.load(SeqCst) {
        let held = burst(admin);
        std::thread::sleep(Duration::from_millis(700));
        release(held, &busy);
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn soak_through_a_busy_endpoint() {
    let server = start(Pattern::GlobalList, Variant::Fixed, &[]);
    let out = out_dir("admin-busy");
    let (stop, busy) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    // Full before the soak's first call, for 3 s.
    let first = burst(server.admin);
    std::thread::sleep(Duration::from_millis(100));
    let releaser = {
        let busy = Arc::clone(&busy);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            release(first, &busy);
        })
    };
    let attacker = {
        let (stop, busy) = (Arc::clone(&stop), Arc::clone(&busy));
        let admin = server.admin;
        std::thread::spawn(move || hostile(admin, stop, busy))
    };
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_ROLE, "1")
        .args(["soak", "--server", &server.server.to_string()])
        .args(["--admin", &server.admin.to_string()])
        .args(["--out", out.to_str().unwrap(), "--no-progress"])
        .args(["--cycles", "600", "--batch", "50", "--warmup", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let took = started.elapsed();
    stop.store(true, SeqCst);
    attacker.join().unwrap();
    releaser.join().unwrap();
    let retries = err.lines().filter(|l| l.contains("; retry ")).count();
    println!(
        "admin_busy_soak: {status} in {took:?}, {retries} retries, the hostile clients met {} \
         503s",
        busy.load(SeqCst)
    );
    assert!(status.success(), "the soak failed: {err}");
    assert!(busy.load(SeqCst) > 0, "the endpoint was never full");
    assert!(
        err.lines()
            .filter(|l| l.contains("; retry "))
            .all(|l| l.contains("status 503") || l.contains("timeout")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    run_checks(&[("soak_through_a_busy_endpoint", soak_through_a_busy_endpoint)])
}
