//! A collection of leak cases, each soaked at the defaults (no
//! `set_sampling`, no `ALLOC_CORE_SAMPLE`) for 20,000 cycles by a program
//! that advances the epoch and takes a snapshot through the API every 200
//! cycles, each case in a process of its own (this binary re-runs itself
//! with `LEAK_CASE=<name>`):
//!
//! | case | leaks per cycle | expected |
//! |---|---|---|
//! | `global_container` | an `Arc<Conn>` pushed to a global list | `leak` at the `Arc::new` line |
//! | `rc_cycle` | a `Conn` and its `Handler` holding each other by `Rc` (`alloc_tests::shapes`) | `leak` at both lines |
//! | `box_leak` | `Box::leak` of a 40-byte name | `leak` at the line that made it |
//! | `per_key_registry` | a map entry per peer: the key and an `Arc<Metrics>` | `leak` at both lines |
//! | `other_thread` | a worker thread keeps one block per job it is sent (`alloc_tests::shapes`) | `leak` at the worker's line |
//! | `cache_holds` | a cache filled over the first 1,000 cycles | no `leak` anywhere |
//! | `pool_warms_up` | a pool of 64 buffers made in the first cycles, reused | no `leak` anywhere |
//! | `high_water_buffer` | a buffer grown to its high-water mark, cleared and reused | no `leak` anywhere |
//! | `churn_only` | 16 KiB of blocks freed within each cycle | no `leak` anywhere |
//!
//! A leak's site must be `leak` at its file and line, with its bytes per
//! cycle within 10% of the truth (the sizes of the blocks it keeps, from the
//! types' layouts); the whole heap must be `leak`. A non-leak must have no
//! site called `leak`. (The default policy records every allocation once
//! snapshots show survivors, so a leak's figures are exact, not sampled.)

use alloc_core::{advance_epoch, untracked, EpochAlloc, Jemalloc};
use alloc_report::{analyze, ClassifyOptions, SnapshotFile, VerdictKind};
use alloc_tests::estimates::push_snapshot;
use alloc_tests::shapes::{self, rc_block, Handler, RcConn};
use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const CYCLES: u32 = 20_000;
const PER_SNAPSHOT: u32 = 200;
/// The environment variable that makes this process run one case.
const CASE_ENV: &str = "LEAK_CASE";

/// What a case leaks per cycle at each of its lines: (line, bytes).
type Truth = Vec<(u32, usize)>;

/// One case: run one cycle (returns the lines that leak and the bytes each
/// leaks per cycle, the same every cycle).
struct Case {
    name: &'static str,
    cycle: fn(u32) -> Truth,
    /// The file its lines are in.
    file: &'static str,
}

// ---- leaks -------------------------------------------------------------

struct Conn {
    #[allow(dead_code)] // what a server would keep per connection
    id: u64,
    #[allow(dead_code)]
    buf: [u8; 200],
}

static CONNECTIONS: Mutex<Vec<Arc<Conn>>> = Mutex::new(Vec::new());

#[inline(never)]
fn global_container(cycle: u32) -> Truth {
    let conn = Conn {
        id: u64::from(cycle),
        buf: [0; 200],
    };
    #[rustfmt::skip]
    let (line, conn) = (line!(), Arc::new(conn));
    CONNECTIONS.lock().unwrap().push(conn);
    vec![(line, rc_block::<Conn>())]
}

#[inline(never)]
fn rc_cycle(cycle: u32) -> Truth {
    let [conn, handler] = shapes::rc_cycle(cycle);
    vec![
        (conn, rc_block::<RcConn>()),
        (handler, rc_block::<Handler>()),
    ]
}

#[inline(never)]
fn box_leak(cycle: u32) -> Truth {
    #[rustfmt::skip]
    let (line, name) = (line!(), format!("peer-{cycle:035}"));
    let bytes = name.capacity();
    // `into_boxed_str` keeps the buffer as it is when it is full (no
    // realloc), so the block leaked is the one `format!` made.
    assert_eq!(bytes, name.len());
    black_box(Box::leak(name.into_boxed_str()));
    vec![(line, bytes)]
}

struct Metrics {
    #[allow(dead_code)]
    counts: [u64; 8],
}

static REGISTRY: Mutex<Option<HashMap<String, Arc<Metrics>>>> = Mutex::new(None);

#[inline(never)]
fn per_key_registry(cycle: u32) -> Truth {
    #[rustfmt::skip]
    let (key_line, key) = (line!(), format!("peer-10.0.{:05}.{:08}", cycle % 7, cycle));
    let key_bytes = key.capacity();
    #[rustfmt::skip]
    let (metrics_line, metrics) = (line!(), Arc::new(Metrics { counts: [0; 8] }));
    let mut registry = REGISTRY.lock().unwrap();
    registry
        .get_or_insert_with(HashMap::new)
        .insert(key, metrics);
    // The key is `format!`'s String, as large as its capacity (the map's
    // own table grows in steps and is reported apart, at the insert line).
    vec![(key_line, key_bytes), (metrics_line, rc_block::<Metrics>())]
}

#[inline(never)]
fn other_thread(cycle: u32) -> Truth {
    vec![(shapes::keep_on_worker(cycle), shapes::WORKER_BYTES)]
}

// ---- non-leaks ---------------------------------------------------------

static CACHE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn cache_holds(cycle: u32) -> Truth {
    if cycle < 1000 {
        CACHE.lock().unwrap().push(vec![cycle as u8; 700]);
    }
    Vec::new()
}

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn pool_warms_up(cycle: u32) -> Truth {
    let mut pool = POOL.lock().unwrap();
    // Take a buffer, or make one while the pool is still warming up.
    let mut buf = pool.pop().unwrap_or_else(|| Vec::with_capacity(4096));
    buf.clear();
    buf.extend_from_slice(&cycle.to_le_bytes());
    pool.push(buf);
    if cycle < 64 {
        pool.push(Vec::with_capacity(4096));
    }
    Vec::new()
}

static SCRATCH: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[inline(never)]
fn high_water_buffer(cycle: u32) -> Truth {
    let mut scratch = SCRATCH.lock().unwrap();
    scratch.clear();
    // Request sizes vary up to 3,000 elements; the buffer keeps the largest.
    let n = (cycle.wrapping_mul(2_654_435_761) >> 20) % 3000;
    scratch.extend(0..u64::from(n));
    black_box(&*scratch);
    Vec::new()
}

#[inline(never)]
fn churn_only(cycle: u32) -> Truth {
    let mut live: Vec<Vec<u8>> = Vec::with_capacity(16);
    for i in 0..16u32 {
        live.push(vec![(cycle + i) as u8; 1024]);
    }
    black_box(&live);
    Vec::new()
}

fn cases() -> Vec<Case> {
    let c = |name, cycle| Case {
        name,
        cycle,
        file: "leak_cases.rs",
    };
    let shared = |name, cycle| Case {
        name,
        cycle,
        file: shapes::FILE,
    };
    vec![
        c("global_container", global_container as fn(u32) -> Truth),
        shared("rc_cycle", rc_cycle),
        c("box_leak", box_leak),
        c("per_key_registry", per_key_registry),
        shared("other_thread", other_thread),
        c("cache_holds", cache_holds),
        c("pool_warms_up", pool_warms_up),
        c("high_water_buffer", high_water_buffer),
        c("churn_only", churn_only),
    ]
}

/// Soaks one case in this process and checks its verdicts.
fn run_case(case: &Case) {
    let t = Instant::now();
    let mut series: Vec<SnapshotFile> = untracked(|| Vec::with_capacity(128));
    let mut truth = Truth::new();
    advance_epoch();
    for cycle in 0..=CYCLES {
        if cycle % PER_SNAPSHOT == 0 {
            push_snapshot(&mut series, u64::from(cycle));
        }
        if cycle < CYCLES {
            truth = (case.cycle)(cycle);
        }
    }
    untracked(|| {
        let r = analyze(&series, &ClassifyOptions::default());
        let leaks: Vec<String> = r
            .sites
            .iter()
            .filter(|v| v.kind == VerdictKind::Leak)
            .map(|v| format!("{} ({:.1} B/cycle)", v.site, v.bytes_per_cycle))
            .collect();
        if truth.is_empty() {
            assert!(
                leaks.is_empty(),
                "{}: a non-leak has sites called leak: {leaks:?}",
                case.name
            );
            assert_ne!(
                r.overall.kind,
                VerdictKind::Leak,
                "{}: {:?}",
                case.name,
                r.overall
            );
            println!(
                "{}: no leak (whole heap {}) in {:.1?}",
                case.name,
                r.overall.kind.as_str(),
                t.elapsed()
            );
            return;
        }
        assert_eq!(
            r.overall.kind,
            VerdictKind::Leak,
            "{}: {:?}",
            case.name,
            r.overall
        );
        for (line, bytes) in &truth {
            let needle = format!("{}:{line} ", case.file);
            let v = r
                .sites
                .iter()
                .find(|v| v.site.contains(&needle))
                .unwrap_or_else(|| panic!("{}: no site {needle}; leaks: {leaks:?}", case.name));
            let want = *bytes as f64;
            let error = (v.bytes_per_cycle - want).abs() / want;
            println!(
                "{}: {} {} at {:.1} B/cycle (true {want}), {} samples",
                case.name,
                v.site,
                v.kind.as_str(),
                v.bytes_per_cycle,
                v.samples
            );
            assert_eq!(v.kind, VerdictKind::Leak, "{}: {v:#?}", case.name);
            assert!(
                error <= 0.10,
                "{}: {needle}: {:.1} B/cycle, true {want}",
                case.name,
                v.bytes_per_cycle
            );
        }
        println!("{}: done in {:.1?}", case.name, t.elapsed());
    });
}

fn main() -> ExitCode {
    alloc_tests::case_main(
        CASE_ENV,
        (Duration::from_secs(300), "leak_cases"),
        cases(),
        |c| c.name,
        run_case,
    )
}
