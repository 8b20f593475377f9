//! The admin routes mounted in an axum service (`alloc-admin`'s `axum`
//! feature): they answer under the service's prefix, `CountingListener`
//! counts the service's open connections, and what answering an admin
//! request allocates is the tool's, on the service's own runtime threads
//! (the program allocates no more for an admin snapshot than for a greeting,
//! while encoding a snapshot itself costs it hundreds of allocations), with
//! no survivors of the program.

mod axum_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_snapshot::file::decode;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

async fn hello(Path(name): Path<String>) -> String {
    format!("hello, {name}\n")
}

/// The control: the heap profile built by the program's own handler, in
/// the program's scope (what the admin route does, minus the tool scope).
async fn program_profile() -> Vec<u8> {
    let snapshot = alloc_core::snapshot();
    alloc_snapshot::pprof::gzip(&alloc_snapshot::pprof::heap(&snapshot))
}

/// The service's own routes.
fn routes() -> Router {
    Router::new()
        .route("/hello/{name}", get(hello))
        .route("/program/heap", get(program_profile))
}

/// One request on its own connection; the status and body.
fn request(addr: SocketAddr, method: &str, target: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let head = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let status = std::str::from_utf8(&all[9..12]).unwrap().parse().unwrap();
    (status, all[head..].to_vec())
}

fn text(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    let (status, body) = request(addr, method, target);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn open_count(addr: SocketAddr) -> u64 {
    let (status, body) = text(addr, "GET", "/admin/connections");
    assert_eq!(status, 200, "{body}");
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn routes_answer_under_the_prefix(addr: SocketAddr) {
    let (status, index) = text(addr, "GET", "/admin");
    assert_eq!(status, 200);
    assert!(index.contains("/debug/pprof/heap"), "{index}");
    let (_, before) = text(addr, "GET", "/admin/epoch");
    let (status, after) = text(addr, "POST", "/admin/epoch");
    assert_eq!(status, 200);
    assert_ne!(before, after);
    let (status, body) = request(addr, "GET", "/admin/snapshot?cycles=3");
    assert_eq!(status, 200);
    assert_eq!(decode(&body).unwrap().cycles, Some(3));
    let (status, gz) = request(addr, "GET", "/admin/debug/pprof/heap");
    assert_eq!(status, 200);
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip");
    assert_eq!(text(addr, "GET", "/admin/nowhere").0, 404);
    assert_eq!(text(addr, "PUT", "/admin/snapshot").0, 405);
    assert_eq!(
        text(addr, "GET", "/hello/you"),
        (200, "hello, you\n".into())
    );
}

fn connections_are_counted(addr: SocketAddr) {
    // Quiescent: only the asking connection is open (earlier requests'
    // connections are released a little after their answers).
    let deadline = Instant::now() + Duration::from_secs(10);
    let wait_for = |n: u64, what: &str| {
        while open_count(addr) != n {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(1, "earlier connections never released");
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_for(4, "3 held connections never counted");
    drop(held);
    wait_for(1, "closed connections still counted");
}

/// Program allocations per request of `target`, over `n` requests.
fn allocs_per_request(addr: SocketAddr, target: &str, n: u64) -> u64 {
    let before = alloc_core::snapshot().totals.allocs;
    for _ in 0..n {
        assert_eq!(request(addr, "GET", target).0, 200);
    }
    (alloc_core::snapshot().totals.allocs - before) / n
}

fn admin_allocations_are_the_tools(addr: SocketAddr) {
    // Warm up both paths (lazily made buffers of the workers).
    allocs_per_request(addr, "/hello/warm", 20);
    allocs_per_request(addr, "/admin/snapshot", 20);
    let epoch = alloc_core::advance_epoch();
    allocs_per_request(addr, "/admin/debug/pprof/heap", 5);
    allocs_per_request(addr, "/program/heap", 5);
    let hello = allocs_per_request(addr, "/hello/world", 100);
    let snapshot = allocs_per_request(addr, "/admin/snapshot", 100);
    let heap = allocs_per_request(addr, "/admin/debug/pprof/heap", 50);
    let control = allocs_per_request(addr, "/program/heap", 50);
    println!(
        "axum_mount: program allocations per request: greeting {hello}, admin snapshot \
         {snapshot}, admin heap profile {heap}; the same profile by the program's handler: \
         {control}"
    );
    for (route, admin) in [("snapshot", snapshot), ("heap profile", heap)] {
        assert!(
            admin <= hello + 8,
            "an admin {route} cost the program {admin} allocations, a greeting {hello}"
        );
    }
    assert!(control > heap + 20, "control {control} vs admin {heap}");
    // Nothing of the program born while those requests ran survives them,
    // once the service has released their connections: hyper drops a
    // connection's state after the client has read the answer, and tokio
    // frees an I/O registration on its driver's next turn, which a later
    // request (born in a later epoch) brings about. Bounded wait.
    let closed = alloc_core::advance_epoch();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(request(addr, "GET", "/hello/nudge").0, 200);
        std::thread::sleep(Duration::from_millis(20));
        let snap = alloc_core::snapshot();
        let survivors: u64 = snap
            .epochs
            .iter()
            .filter(|e| e.first >= epoch && e.last < closed)
            .map(|e| e.live_bytes)
            .sum();
        if survivors == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{survivors} program bytes left by 300 requests after 10 s"
        );
    }
}

fn main() -> ExitCode {
    let addr = axum_support::start(routes);
    type Check = (&'static str, fn(SocketAddr));
    let checks: [Check; 3] = [
        (
            "routes_answer_under_the_prefix",
            routes_answer_under_the_prefix,
        ),
        ("connections_are_counted", connections_are_counted),
        (
            "admin_allocations_are_the_tools",
            admin_allocations_are_the_tools,
        ),
    ];
    let mut failed = 0;
    for (name, f) in checks {
        match std::panic::catch_unwind(|| f(addr)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
