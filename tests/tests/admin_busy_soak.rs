//! A 2,000-cycle soak of a fixed server exits 0 while hostile local
//! clients work on its admin endpoint from before the soak's first call to
//! its end: sixty connections that send nothing (each reopened when the
//! endpoint closes it), four that trickle a request head a byte every
//! 150 ms, and four that read an answer and then trickle bytes into the
//! endpoint's linger. The soak is `demo-server soak`, this test binary in a
//! child process, so that its standard error can be read; it retries busy
//! and silent calls with backoff, printing a line per retry (how many
//! depends on how the endpoint shares itself out, so it is printed, not
//! checked; `alloc-soak`'s `hostile_admin.rs` checks the retries against a
//! fake endpoint). The hostile clients are checked to have been at work:
//! the endpoint closed idle and trickling connections that it would
//! otherwise have had to serve.

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{out_dir, run_checks, server_role, start, SERVER_ROLE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const IDLE: usize = 60;
const TRICKLERS: usize = 4;
/// No hostile client runs longer than this, whatever the soak does.
const LIMIT: Duration = Duration::from_secs(300);

fn connect(admin: SocketAddr) -> Option<TcpStream> {
    TcpStream::connect_timeout(&admin, Duration::from_secs(1)).ok()
}

/// Holds `IDLE` silent connections, reopening each one the endpoint
/// closes; counts the closes.
fn idle(admin: SocketAddr, stop: &AtomicBool, closed: &AtomicU64) {
    let started = Instant::now();
    let mut held: Vec<TcpStream> = (0..IDLE).filter_map(|_| connect(admin)).collect();
    for s in &held {
        let _ = s.set_nonblocking(true);
    }
    while !stop.load(SeqCst) && started.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(100));
        for s in &mut held {
            let mut byte = [0u8; 1];
            // A closed connection reads 0 (or fails): open another.
            let gone = match s.read(&mut byte) {
                Ok(_) => true,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            if gone {
                closed.fetch_add(1, SeqCst);
                if let Some(fresh) = connect(admin) {
                    let _ = fresh.set_nonblocking(true);
                    *s = fresh;
                }
            }
        }
    }
}

/// Sends `bytes` one at a time, 150 ms apart; false once the endpoint
/// has closed the connection.
fn trickle(s: &mut TcpStream, bytes: &[u8], stop: &AtomicBool) -> bool {
    for b in bytes {
        if stop.load(SeqCst) {
            return true;
        }
        if s.write_all(&[*b]).is_err() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    true
}

/// A request head trickled (`linger` false), or a whole request whose
/// answer is read and then bytes trickled into the linger (`linger`
/// true), again and again; counts connections the endpoint cut.
fn trickler(admin: SocketAddr, linger: bool, stop: &AtomicBool, cut: &AtomicU64) {
    let started = Instant::now();
    let head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".repeat(4);
    while !stop.load(SeqCst) && started.elapsed() < LIMIT {
        let Some(mut s) = connect(admin) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let finished = if linger {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            trickle(&mut s, &[b'x'; 40], stop)
        } else {
            trickle(&mut s, &head, stop)
        };
        if !finished {
            cut.fetch_add(1, SeqCst);
        }
    }
}

fn soak_among_hostile_clients() {
    let server = start(Pattern::GlobalList, Variant::Fixed, &[]);
    let out = out_dir("admin-busy");
    let stop = Arc::new(AtomicBool::new(false));
    let (closed, cut) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut hostile = Vec::new();
    {
        let (stop, closed, admin) = (Arc::clone(&stop), Arc::clone(&closed), server.admin);
        hostile.push(std::thread::spawn(move || idle(admin, &stop, &closed)));
    }
    for i in 0..2 * TRICKLERS {
        let (stop, cut, admin) = (Arc::clone(&stop), Arc::clone(&cut), server.admin);
        hostile.push(std::thread::spawn(move || {
            trickler(admin, i >= TRICKLERS, &stop, &cut)
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_ROLE, "1")
        .args(["soak", "--server", &server.server.to_string()])
        .args(["--admin", &server.admin.to_string()])
        .args(["--out", out.to_str().unwrap(), "--no-progress"])
        .args(["--cycles", "2000", "--batch", "100", "--warmup", "100"])
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
    // The connections opened before the soak are closed by the endpoint 2 s
    // after they connected: a soak faster than that ends before any is.
    let waited = Instant::now();
    while (closed.load(SeqCst) == 0 || cut.load(SeqCst) == 0)
        && waited.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, SeqCst);
    for h in hostile {
        h.join().unwrap();
    }
    let retries = err.lines().filter(|l| l.contains("; retry ")).count();
    println!(
        "admin_busy_soak: {status} in {took:?}, {retries} retries; the endpoint closed {} idle \
         and cut {} trickling connections",
        closed.load(SeqCst),
        cut.load(SeqCst)
    );
    assert!(status.success(), "the soak failed: {err}");
    assert!(
        closed.load(SeqCst) > 0 && cut.load(SeqCst) > 0,
        "the hostile clients were never cut off: were they connected?"
    );
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
    run_checks(&[("soak_among_hostile_clients", soak_among_hostile_clients)])
}
