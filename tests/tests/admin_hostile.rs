//! The admin endpoint against hostile neighbours on the same machine, with
//! real sockets on loopback:
//!
//! - sixty idle connections, four clients that trickle their request head a
//!   byte every 150 ms, and four that read their answer and then trickle
//!   bytes into the linger: a legitimate client's requests to every route
//!   are still answered, each within 3 s;
//! - a browser's attacks: a foreign `Host` (DNS rebinding), a cross-site
//!   `Origin` or `Sec-Fetch-Site` (a form posting `/epoch`) get 403 and
//!   change nothing; a same-origin request passes;
//! - strict HTTP: conflicting `Content-Length`, a signed `cycles`, the
//!   reason phrases of 413 and 501;
//! - the optional token: 401 without it, 200 with it as a bearer header or
//!   as `token=` in the query.

use alloc_admin::Admin;
use alloc_core::{epoch, EpochAlloc, Jemalloc};
use alloc_tests::run_checks;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Sends `request`, reads the whole answer; returns its status line and
/// body.
fn exchange(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    (status, body.to_string())
}

fn status(addr: SocketAddr, request: &str) -> u16 {
    let (line, _) = exchange(addr, request);
    line.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?} for {request:?}"))
}

fn start(admin: Admin) -> SocketAddr {
    admin
        .addr("127.0.0.1:0".parse().unwrap())
        .open_connections(|| 0)
        .start()
        .expect("start the endpoint")
        .local_addr()
}

fn neighbours_do_not_starve_a_legitimate_client() {
    let addr = start(Admin::new());
    let stop = Arc::new(AtomicBool::new(false));
    let idle: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(addr).expect("idle connect"))
        .collect();
    let mut hostile = Vec::new();
    for i in 0..8 {
        let stop = Arc::clone(&stop);
        hostile.push(std::thread::spawn(move || {
            // Bounded: until told to stop, and at most 20 s.
            let until = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    continue;
                };
                if i < 4 {
                    // The head, a byte at a time.
                    for b in b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n" {
                        if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(150));
                    }
                } else {
                    // A whole request, its answer read, then bytes trickled
                    // into the linger.
                    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                    for _ in 0..40 {
                        if stop.load(Ordering::SeqCst) || s.write_all(b"x").is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(150));
                    }
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let routes = [
        "GET /metrics",
        "GET /connections",
        "GET /epoch",
        "GET /snapshot?cycles=1",
        "POST /epoch",
    ];
    let mut slowest = Duration::ZERO;
    for round in 0..10 {
        for route in routes {
            let t = Instant::now();
            let got = status(
                addr,
                &format!("{route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"),
            );
            let took = t.elapsed();
            slowest = slowest.max(took);
            assert_eq!(got, 200, "round {round}: {route}");
            assert!(took < Duration::from_secs(3), "{route} took {took:?}");
        }
    }
    stop.store(true, Ordering::SeqCst);
    for h in hostile {
        h.join().unwrap();
    }
    drop(idle);
    println!("50 requests answered among hostile clients; slowest {slowest:?}");
}

fn browsers_from_other_sites_are_refused() {
    let addr = start(Admin::new());
    let before = epoch();
    let cases = [
        (
            "GET /snapshot HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_string(),
            403,
        ),
        (
            format!(
                "GET /metrics HTTP/1.1\r\nHost: evil.example:{}\r\n\r\n",
                addr.port()
            ),
            403,
        ),
        (
            format!(
                "POST /epoch HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: http://evil.example\r\n\
                 Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nx=1",
                addr.port()
            ),
            403,
        ),
        (
            format!(
                "POST /epoch HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nSec-Fetch-Site: cross-site\r\n\
                 Content-Length: 0\r\n\r\n",
                addr.port()
            ),
            403,
        ),
        (
            "GET /epoch HTTP/1.1\r\nHost: localhost\r\nOrigin: null\r\n\r\n".to_string(),
            403,
        ),
    ];
    for (req, want) in &cases {
        assert_eq!(status(addr, req), *want, "{req:?}");
    }
    assert_eq!(epoch(), before, "a refused POST /epoch advanced nothing");
    // The same origin passes (a page the endpoint served itself).
    let same = format!(
        "POST /epoch HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nOrigin: http://127.0.0.1:{p}\r\n\
         Sec-Fetch-Site: same-origin\r\nContent-Length: 0\r\n\r\n",
        p = addr.port()
    );
    assert_eq!(status(addr, &same), 200);
    assert_eq!(epoch(), before + 1);
}

fn http_is_parsed_strictly() {
    let addr = start(Admin::new());
    let conflicting = "POST /debug/pprof/symbol HTTP/1.1\r\nHost: localhost\r\n\
                       Content-Length: 4\r\nContent-Length: 2\r\n\r\n0x10";
    assert_eq!(status(addr, conflicting), 400);
    for q in ["+5", "-5", " 5", "5x", ""] {
        let req = format!("GET /snapshot?cycles={q} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(status(addr, &req), 400, "cycles={q:?}");
    }
    let (line, _) = exchange(
        addr,
        "POST /debug/pprof/symbol HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n",
    );
    assert_eq!(line, "HTTP/1.1 413 Content Too Large");
    let (line, _) = exchange(
        addr,
        "POST /epoch HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(line, "HTTP/1.1 501 Not Implemented");
}

fn the_token_is_required_when_set() {
    let addr = start(Admin::new().token("s3cret"));
    let plain = "GET /epoch HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_eq!(status(addr, plain), 401);
    let wrong = "GET /epoch HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer s3creT\r\n\r\n";
    assert_eq!(status(addr, wrong), 401);
    let bearer = "GET /epoch HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer s3cret\r\n\r\n";
    assert_eq!(status(addr, bearer), 200);
    let query = "GET /snapshot?cycles=3&token=s3cret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_eq!(status(addr, query), 200);
    let pprof = "GET /debug/pprof/heap?token=s3cret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_eq!(status(addr, pprof), 200);
}

fn main() -> ExitCode {
    run_checks(&[
        (
            "neighbours_do_not_starve_a_legitimate_client",
            neighbours_do_not_starve_a_legitimate_client,
        ),
        (
            "browsers_from_other_sites_are_refused",
            browsers_from_other_sites_are_refused,
        ),
        ("http_is_parsed_strictly", http_is_parsed_strictly),
        (
            "the_token_is_required_when_set",
            the_token_is_required_when_set,
        ),
    ])
}
