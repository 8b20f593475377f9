//! `GET /debug/pprof/heap` on the admin endpoint, read live by the real
//! `go tool pprof`: the leaking function heads `-top`, a leak in a helper
//! inlined into its caller is listed under the helper's own name (the
//! server symbolises, inlined calls included), the profile has pprof's
//! standard heap sample types, the `birth_epoch` label, and mappings with
//! the executable's path and build id; with `?symbolize=0` the addresses
//! are raw, for pprof to symbolise from the binary on disk, and the leaking
//! function still heads `-top`. Runs at the default sampling interval.
//!
//! Needs Go (`apt-get install golang-go`). Without it the test says so and
//! passes; with `ALLOC_REPORT_REQUIRE_PPROF=1` (as `.ci/run` sets) a missing
//! tool fails it.

use alloc_admin::Admin;
use alloc_core::{EpochAlloc, Jemalloc};
use alloc_snapshot::pprof::Profile;
use prost::Message;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Session buffers kept forever: the leak (64 MiB in 4 KiB blocks).
#[inline(never)]
fn keep_session_buffers(kept: &mut Vec<Box<[u8]>>) {
    for i in 0..16_384 {
        kept.push(vec![i as u8; 4096].into_boxed_slice());
    }
}

/// A helper inlined into its caller (as small helpers are in release
/// builds): its blocks are its own in the profile, not the caller's.
#[inline(always)]
fn remember(kept: &mut Vec<Box<[u8]>>, i: usize) {
    kept.push(vec![i as u8; 2048].into_boxed_slice());
}

/// Sessions remembered through the inlined helper: a second leak (16 MiB).
#[inline(never)]
fn handle_sessions(kept: &mut Vec<Box<[u8]>>) {
    for i in 0..8192 {
        remember(kept, i);
    }
}

/// Request buffers freed at once: churn that must not show as live.
#[inline(never)]
fn serve_requests() -> u64 {
    let mut sum = 0;
    for i in 0..16_384u64 {
        let b = vec![i as u8; 4096];
        sum += u64::from(std::hint::black_box(&b)[7]);
    }
    sum
}

fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn fetch(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let head = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let status = std::str::from_utf8(&all[9..12]).unwrap().parse().unwrap();
    (status, all[head..].to_vec())
}

fn decode(gz: &[u8]) -> Profile {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .unwrap();
    Profile::decode(raw.as_slice()).unwrap()
}

fn main() -> ExitCode {
    let admin = Admin::new()
        .addr("127.0.0.1:0".parse().unwrap())
        .start()
        .expect("admin endpoint");
    let addr = admin.local_addr();
    alloc_core::advance_epoch();
    let mut kept = Vec::new();
    keep_session_buffers(&mut kept);
    handle_sessions(&mut kept);
    std::hint::black_box(serve_requests());

    // The profile as served: standard heap shape.
    let (status, body) = fetch(addr, "/debug/pprof/heap");
    assert_eq!(status, 200);
    let p = decode(&body);
    let s = |i: i64| p.string_table[i as usize].as_str();
    let types: Vec<(&str, &str)> = p
        .sample_type
        .iter()
        .map(|t| (s(t.r#type), s(t.unit)))
        .collect();
    assert_eq!(
        types,
        [("inuse_objects", "count"), ("inuse_space", "bytes")]
    );
    assert_eq!(s(p.default_sample_type), "inuse_space");
    let exe = std::env::current_exe().unwrap();
    let main_map = p
        .mapping
        .iter()
        .find(|m| s(m.filename) == exe.to_str().unwrap())
        .expect("a mapping of the executable");
    assert_eq!(s(main_map.build_id).len(), 40, "a GNU build id in hex");
    let epochs: Vec<i64> = p
        .sample
        .iter()
        .flat_map(|x| &x.label)
        .filter(|l| s(l.key) == "birth_epoch")
        .map(|l| l.num)
        .collect();
    assert!(!p.sample.is_empty() && epochs.len() == p.sample.len());
    let inlined = p.location.iter().any(|l| {
        l.line.len() >= 2
            && s(p.function[l.line[0].function_id as usize - 1].name).ends_with("::remember")
    });
    assert!(
        inlined,
        "no location with the inlined `remember` as its innermost line"
    );
    assert!(epochs.contains(&i64::from(alloc_core::epoch())));
    println!(
        "admin_pprof: {} samples, {} locations, {} mappings, {} bytes gzipped",
        p.sample.len(),
        p.location.len(),
        p.mapping.len(),
        body.len()
    );

    if !go_available() {
        if std::env::var_os("ALLOC_REPORT_REQUIRE_PPROF").is_some() {
            eprintln!("admin_pprof: Go is required (ALLOC_REPORT_REQUIRE_PPROF) but not found");
            return ExitCode::FAILURE;
        }
        println!("admin_pprof: SKIPPED the go tool pprof part: Go is not installed");
        return ExitCode::SUCCESS;
    }
    if let Some(save) = std::env::var_os("ADMIN_PPROF_SAVE") {
        std::fs::write(save, &body).unwrap();
    }
    let url = format!("http://{addr}/debug/pprof/heap");
    let text = pprof_top(&url);
    // The first row after the column header is the largest flat entry.
    let first = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .nth(1)
        .unwrap_or("");
    assert!(
        first.contains("keep_session_buffers"),
        "the leaking function does not head `pprof -top`:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("::remember")),
        "the inlined helper is not listed by `pprof -top`:\n{text}"
    );
    assert!(!text.contains("serve_requests"), "{text}");
    println!("admin_pprof: go tool pprof -top {url}: {}", first.trim());
    let raw_url = format!("{url}?symbolize=0");
    let raw = pprof_top(&raw_url);
    let first = raw
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .nth(1)
        .unwrap_or("");
    assert!(
        first.contains("keep_session_buffers"),
        "raw addresses: the leaking function does not head `pprof -top`:\n{raw}"
    );
    println!(
        "admin_pprof: go tool pprof -top {raw_url}: {}",
        first.trim()
    );
    drop(kept);
    admin.shutdown();
    ExitCode::SUCCESS
}

/// `go tool pprof -top -unit=B URL`'s output (it must succeed).
fn pprof_top(url: &str) -> String {
    let tmp = std::env::temp_dir().join(format!("admin-pprof-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", "-unit=B", url])
        .env("PPROF_TMPDIR", &tmp)
        .env("HOME", &tmp)
        .output()
        .expect("run go tool pprof");
    let _ = std::fs::remove_dir_all(&tmp);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.into_owned()
}
