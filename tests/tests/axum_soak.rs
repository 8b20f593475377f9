//! The goal, end to end: a small axum service that mounts the admin
//! routes (feature `axum`) and counts its connections with
//! `CountingListener`, soaked over HTTP with a different path each cycle
//! through the soak tool's library API (`alloc_soak`; an HTTP script, and a
//! cycle given as a closure), at the default
//! sampling and capture policy. Clean: exit code 0. With the leak switched
//! on (each greeted name kept in a global list): exit code 1, the top call
//! site is in the leaking function, and the copy's line is called a leak.

mod axum_support;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_soak::client::Script;
use alloc_soak::soak::{self, SoakOptions};
use axum::extract::Path;
use axum::routing::get;
use axum::Router;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

static LEAK: AtomicBool = AtomicBool::new(false);
static GREETED: Mutex<Vec<String>> = Mutex::new(Vec::new());

async fn hello(Path(name): Path<String>) -> String {
    if LEAK.load(Ordering::Relaxed) {
        remember(&name);
    }
    format!("hello, {name}\n")
}

/// The injected leak: a copy of each name, kept forever.
#[inline(never)]
fn remember(name: &str) {
    let copy = format!("{name} was here"); // REMEMBER_LINE
    GREETED.lock().unwrap().push(copy);
}

/// The service's own routes.
fn routes() -> Router {
    Router::new().route("/hello/{name}", get(hello))
}

/// A cycle as a closure: one HTTP/1.1 request on a connection of its own,
/// a path per cycle, a 200 expected.
fn closure_cycle(n: u64, addr: SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /hello/closure-{n} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answer {:?}", String::from_utf8_lossy(&answer)))
    }
}

fn soak(addr: SocketAddr, name: &str, script: Script, hold: usize) -> soak::SoakOutcome {
    let out = std::env::temp_dir().join(format!("axum-soak-{name}-{}", std::process::id()));
    let mut o = SoakOptions::new(addr, addr, out);
    o.admin_prefix = "/admin".to_string();
    o.script = script;
    o.hold = hold;
    o.cycles = 2000;
    o.batch = 100;
    o.concurrency = 16;
    // The driver runs in this process: its allocations (and its offline
    // symboliser's) are the tool's, not the service's.
    let r = alloc_core::untracked(|| soak::run(&o)).expect("the soak ran");
    println!("axum_soak: {name}: {}", r.verdict_line());
    // The report came from the snapshots as they arrived; the series the
    // driver wrote beside it, read back as `alloc-report` reads it, is one
    // file per snapshot and gives the same report.
    alloc_core::untracked(|| {
        let series = alloc_snapshot::read_series(&o.out).expect("the soak's series reads");
        assert_eq!(series.len() as u64, o.cycles / o.batch + 1);
        // Named with the workspace roots found on disk, as the soak names
        // them (a site in a nested package, `alloc-core/admin`, is named
        // from the workspace's root).
        let roots = alloc_report::WorkspaceFinder::of(series.iter().map(|f| &f.snapshot));
        let mut again = alloc_report::Analyzer::new(&Default::default());
        for f in &series {
            again.push_in(f, &roots);
        }
        let again = again.finish();
        let json = alloc_report::render::report_json;
        assert_eq!(
            json(&again),
            json(&r.report),
            "{name}: the series on disk says otherwise"
        );
    });
    r
}

fn main() -> ExitCode {
    let addr = axum_support::start(routes);
    let http = || Script::Http {
        method: "GET".to_string(),
        path: "/hello/u{cycle}-{key}".to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    // Idle connections held through the soak (any protocol): the
    // quiescence wait counts them in.
    let clean = soak(addr, "clean, 4 connections held", http(), 4);
    assert_eq!(clean.failed, 0);
    assert_eq!(clean.exit_code(0.0), 0, "{}", clean.verdict_line());
    let closure = soak(
        addr,
        "clean, a closure per cycle",
        Script::Closure(std::sync::Arc::new(closure_cycle)),
        0,
    );
    assert_eq!((closure.cycles, closure.failed), (2000, 0));
    assert_eq!(closure.exit_code(0.0), 0, "{}", closure.verdict_line());

    LEAK.store(true, Ordering::Relaxed);
    let leaky = soak(addr, "leaky", http(), 0);
    assert_eq!(leaky.exit_code(0.0), 1, "{}", leaky.verdict_line());
    let line = include_str!("axum_soak.rs")
        .lines()
        .position(|l| l.ends_with("// REMEMBER_LINE") && l.contains("format!"))
        .unwrap()
        + 1;
    // Both lines of `remember` leak: the copy, and the list's growth (a
    // growing `Vec` is memory added each cycle). The top site is one of
    // them, and the copy's line is called a leak.
    let top = leaky.top_site.clone().unwrap_or_default();
    assert!(
        top.starts_with("tests/tests/axum_soak.rs:") && top.ends_with(" axum_soak::remember"),
        "top site {top:?} is not in the leaking function"
    );
    let copy_site = format!("tests/tests/axum_soak.rs:{line} axum_soak::remember");
    let leak_sites: Vec<&str> = leaky
        .report
        .sites
        .iter()
        .filter(|v| v.kind == alloc_report::VerdictKind::Leak)
        .map(|v| v.site.as_str())
        .collect();
    assert!(
        leak_sites.contains(&copy_site.as_str()),
        "{copy_site} not among the leak sites {leak_sites:?}"
    );
    println!("axum_soak: the leaking line named: {top}");
    ExitCode::SUCCESS
}
