//! The alloc-admin endpoint mounted in this process: every route answers
//! what it documents, `/metrics` is well-formed Prometheus text, malformed
//! requests get 4xx, a non-loopback address is refused without the explicit
//! flag, and the endpoint's own allocations never count as the program's
//! (hundreds of requests leave the user's allocation count unchanged, while
//! the same work done outside the endpoint moves it).

use alloc_admin::{Admin, AdminError};
use alloc_core::{EpochAlloc, Jemalloc};
use alloc_snapshot::file::{decode, encode, SnapshotFile};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// One request with no allocation on this side: the answer goes into
/// `buf`; returns the status and the body's range.
fn raw(addr: SocketAddr, request: &[u8], buf: &mut [u8]) -> (u16, usize, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write");
    let _ = s.shutdown(Shutdown::Write);
    let mut len = 0;
    while len < buf.len() {
        match s.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    assert!(len < buf.len(), "answer larger than the test's buffer");
    let head_end = buf[..len]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(len, |p| p + 4);
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (status, head_end, len)
}

fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    request(addr, "GET", target)
}

fn request(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    let mut buf = vec![0u8; 8 << 20];
    let req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (status, body, end) = raw(addr, req.as_bytes(), &mut buf);
    (
        status,
        String::from_utf8_lossy(&buf[body..end]).into_owned(),
    )
}

fn start() -> SocketAddr {
    Admin::new()
        .addr("127.0.0.1:0".parse().unwrap())
        .open_connections(|| 7)
        .extra_metrics(|out| {
            out.push_str("# HELP my_gauge Mine.\n# TYPE my_gauge gauge\nmy_gauge 42\n")
        })
        .start()
        .expect("start the endpoint")
        .local_addr()
}

fn routes_answer_what_they_document() {
    let addr = start();
    let (s, index) = get(addr, "/");
    assert_eq!(s, 200);
    assert!(index.contains("/snapshot"), "{index}");
    let (s, body) = get(addr, "/epoch");
    assert_eq!(
        (s, body.trim().to_string()),
        (200, format!("{{\"epoch\":{}}}", alloc_core::epoch()))
    );
    let before = alloc_core::epoch();
    let (s, body) = request(addr, "POST", "/epoch");
    assert_eq!(s, 200);
    assert_eq!(alloc_core::epoch(), before + 1);
    assert_eq!(body.trim(), format!("{{\"epoch\":{}}}", before + 1));
    assert_eq!(
        get(addr, "/connections"),
        (200, "{\"open\":7}\n".to_string())
    );
    let (s, body) = get(addr, "/snapshot?cycles=5");
    assert_eq!(s, 200);
    let file = decode(body.as_bytes()).expect("a snapshot file");
    assert_eq!(file.cycles, Some(5));
    assert_eq!(file.snapshot.epoch, before + 1);
    // Raw stacks and the loaded modules (this binary first): the reader
    // symbolises, the server holds no debug information.
    let exe = std::env::current_exe().unwrap();
    assert_eq!(file.snapshot.modules[0].path, exe.to_string_lossy());
    assert!(file.snapshot.modules[0].build_id.is_some());
    assert!(file
        .snapshot
        .stacks
        .iter()
        .all(|st| st.user_frame.is_none() && st.frames.iter().all(|f| f.function.is_none())));
    let (s, body) = get(addr, "/snapshot");
    assert_eq!(s, 200);
    assert_eq!(
        decode(body.as_bytes()).expect("a snapshot file").cycles,
        None
    );
    // Without `retention=1` no scan; with it, one that read this process.
    assert_eq!(
        decode(body.as_bytes())
            .expect("a snapshot file")
            .snapshot
            .retention,
        None
    );
    let (s, body) = get(addr, "/snapshot?cycles=6&retention=1");
    assert_eq!(s, 200);
    let file = decode(body.as_bytes()).expect("a snapshot file with a scan");
    assert_eq!(file.cycles, Some(6));
    let scan = &file
        .snapshot
        .retention
        .as_ref()
        .expect("a retention scan")
        .scan;
    assert!(scan.bytes_read > 0 && !file.snapshot.retention.as_ref().unwrap().threads.is_empty());
    for bad in [
        "/snapshot?retention=yes",
        "/snapshot?retention=1&retention=1",
    ] {
        assert_eq!(get(addr, bad).0, 400, "{bad}");
    }
    let (s, body) = request(addr, "HEAD", "/");
    assert_eq!((s, body.as_str()), (200, ""));
}

fn metrics_are_prometheus_text() {
    let addr = start();
    let (s, text) = get(addr, "/metrics");
    assert_eq!(s, 200);
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let mut samples: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut values = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            typed.push(w.next().unwrap().to_string());
            assert!(matches!(w.next(), Some("gauge" | "counter")), "{line}");
        } else {
            let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            // `name` or `name{label="value"}`: one family, several samples.
            let (name, labels) = match name.split_once('{') {
                Some((n, rest)) => (n, Some(rest)),
                None => (name, None),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            if let Some(labels) = labels {
                let (label, value) = labels
                    .strip_suffix("\"}")
                    .and_then(|l| l.split_once("=\""))
                    .unwrap_or_else(|| panic!("{line:?}"));
                assert!(label.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                assert!(value.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                parts.push((value.to_string(), line.to_string()));
            }
            let v = value.parse::<f64>().unwrap_or_else(|_| panic!("{line:?}"));
            values.push((line.to_string(), v));
            if samples.last().map(String::as_str) != Some(name) || labels.is_none() {
                samples.push(name.to_string());
            }
        }
    }
    assert_eq!(helped, samples, "one HELP per metric");
    assert_eq!(typed, samples, "one TYPE per metric");
    // The tool's metadata by part: every part, in order; the counter slots
    // (this thread's at least) within the whole. The parts are read a moment
    // after the snapshot, so their sum need not match it to the byte.
    let names: Vec<&str> = parts.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "counter_slots",
            "page_table",
            "stack_table",
            "sampled_table"
        ],
        "{text}"
    );
    let value_of = |prefix: &str| {
        values
            .iter()
            .find(|(l, _)| l.starts_with(prefix))
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("{prefix} missing:\n{text}"))
    };
    let whole = value_of("alloc_core_tool_metadata_bytes ");
    let slots = value_of("alloc_core_tool_metadata_part_bytes{part=\"counter_slots\"}");
    assert!(slots > 0.0 && slots <= whole, "{text}");
    for want in [
        "alloc_core_live_bytes",
        "alloc_core_survivor_bytes",
        "alloc_core_rss_bytes",
        "alloc_core_open_connections",
        "my_gauge",
    ] {
        assert!(samples.iter().any(|s| s == want), "{want} missing:\n{text}");
    }
    assert!(text.contains("\nalloc_core_open_connections 7\n"), "{text}");
}

fn malformed_requests_get_4xx() {
    let addr = start();
    let mut buf = vec![0u8; 1 << 16];
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(40_000));
    let cases: [(&[u8], u16); 8] = [
        (b"NONSENSE\r\n\r\n", 400),
        (b"\xff\xfe\x00\x01\r\n\r\n", 400),
        (b"GET /snapshot?cycles=-1 HTTP/1.1\r\n\r\n", 400),
        (b"GET /connections?all HTTP/1.1\r\n\r\n", 400),
        (b"PUT /snapshot HTTP/1.1\r\n\r\n", 405),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"GET / HTTP/1.1\r\nHost: half", 400),
        (huge.as_bytes(), 431),
    ];
    for (req, want) in cases {
        let (status, ..) = raw(addr, req, &mut buf);
        assert_eq!(
            status,
            want,
            "{:?}",
            String::from_utf8_lossy(&req[..req.len().min(40)])
        );
    }
    // Still serving.
    assert_eq!(get(addr, "/connections").0, 200);
}

fn non_loopback_needs_the_flag() {
    for a in ["0.0.0.0:0", "192.0.2.1:0", "[::]:0"] {
        let addr: SocketAddr = a.parse().unwrap();
        match Admin::new().addr(addr).start() {
            Err(AdminError::NotLoopback(x)) => assert_eq!(x, addr),
            other => panic!("{a}: {other:?}"),
        }
    }
    // With the flag the check passes (192.0.2.1, TEST-NET-1, is not on this
    // machine, so the bind itself fails: nothing is exposed).
    let addr: SocketAddr = "192.0.2.1:0".parse().unwrap();
    match Admin::new().addr(addr).allow_non_loopback(true).start() {
        Err(AdminError::Bind(x, _)) => assert_eq!(x, addr),
        other => panic!("{other:?}"),
    }
    // The message says how to allow it.
    let msg = AdminError::NotLoopback(addr).to_string();
    assert!(msg.contains("not a loopback"), "{msg}");
}

fn the_endpoints_allocations_are_the_tools() {
    let addr = start();
    let mut buf = vec![0u8; 8 << 20];
    // Warm up: lazily created things of this thread (none expected).
    raw(addr, b"GET /metrics HTTP/1.1\r\n\r\n", &mut buf);
    let before = alloc_core::snapshot();
    let requests: [&[u8]; 5] = [
        b"GET /snapshot?cycles=1 HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
        b"GET /connections HTTP/1.1\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\n\r\n",
        b"garbage\r\n\r\n",
    ];
    let mut answered = 0;
    for i in 0..300 {
        let (status, body, end) = raw(addr, requests[i % requests.len()], &mut buf);
        assert!(status == 200 || status >= 400);
        assert!(end > body);
        answered += 1;
    }
    let after = alloc_core::snapshot();
    assert_eq!(answered, 300);
    assert_eq!(
        (
            after.totals.allocs,
            after.totals.frees,
            after.totals.live_bytes
        ),
        (
            before.totals.allocs,
            before.totals.frees,
            before.totals.live_bytes
        ),
        "300 admin requests moved the program's counts"
    );
    assert!(
        after.tool.live_bytes > 0,
        "the endpoint's buffers are the tool's"
    );
    // The control: the same encoding done by the program is the program's.
    let file = encode(&SnapshotFile::new(alloc_core::snapshot()));
    let control = alloc_core::snapshot();
    assert!(!file.is_empty());
    assert!(
        control.totals.allocs > after.totals.allocs,
        "encoding outside the endpoint must count as the program's"
    );
}

fn main() -> ExitCode {
    let checks: [(&str, fn()); 5] = [
        (
            "routes_answer_what_they_document",
            routes_answer_what_they_document,
        ),
        ("metrics_are_prometheus_text", metrics_are_prometheus_text),
        ("malformed_requests_get_4xx", malformed_requests_get_4xx),
        ("non_loopback_needs_the_flag", non_loopback_needs_the_flag),
        (
            "the_endpoints_allocations_are_the_tools",
            the_endpoints_allocations_are_the_tools,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in checks {
        match std::panic::catch_unwind(f) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
        assert!(Instant::now() < deadline, "admin tests took over 2 minutes");
    }
    println!("\n{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
