//! Why each leak is alive: a collection of leak cases, each soaked at the
//! defaults (no `set_sampling`, no `ALLOC_CORE_SAMPLE`) for 20,000 cycles
//! by a program that advances the epoch and takes a snapshot through the
//! API every 200 cycles, the last one with a retention scan
//! (`alloc_core::snapshot_with_retention`), each case in a process of its
//! own (this binary re-runs itself with `RETENTION_CASE=<name>`):
//!
//! | case | kept per cycle | cause |
//! |---|---|---|
//! | `static_vec` | a `Box` pushed to a `static Mutex<Vec<_>>` | `static`, the path names `STATIC_VEC` |
//! | `static_hashmap` | a `Box` inserted into a `static Mutex<Option<HashMap<_, _>>>` | `static`, names `STATIC_MAP` |
//! | `static_string` | 24 bytes appended to a `static Mutex<String>` (one block that grows) | `static`, names `STATIC_STRING` |
//! | `rc_cycle` | a `Conn` and its `Handler` holding each other by `Rc` (`alloc_tests::shapes`) | `cycle` |
//! | `arc_cycle_threads` | an `Arc` pair made on two threads, holding each other | `cycle` |
//! | `box_leak` | `Box::leak` of a 40-byte name | `unreferenced` |
//! | `mem_forget` | `mem::forget` of a 64-byte `Vec` | `unreferenced` |
//! | `thread_local_vec` | a `Box` pushed to a `thread_local!` `Vec` of the main thread | `thread` |
//! | `worker_local_vec` | a worker thread keeps one `Box` per job in a local `Vec` (`alloc_tests::shapes`) | `thread` |
//! | `channel_undrained` | a `Box` sent on a channel whose receiver the main thread keeps in a `thread_local!`, never read; the channel made in the first cycle | `thread`, from the main thread |
//! | `channel_unrecorded` | the same, the channel made after the start-up's records are spent, before capture turned dense (see below) | `heap`, the path starts at an unsampled block |
//! | `channel_undrained_late` | the same, the channel made after capture turned dense (a `thread_local_vec` leak from the first cycle turns it on) | `thread` |
//! | `tokio_task_pending` | a tokio task per cycle that never finishes, holding a `Box`; the runtime made in the first cycle | `thread`, the path names tokio's `Builder::build` |
//! | `churn_only` (no leak) | 16 KiB of blocks freed within each cycle | no cause anywhere |
//!
//! Each leak site (found by its file and line, verdict `leak`) must carry the
//! expected cause with a share of at least 0.9, and a static case's path must
//! name the static. Sites that are not leaks must have no cause.
//!
//! The structures that hold a leak are often made before the soak: a
//! channel, a runtime. The default capture policy records every
//! allocation of the program's start-up ([`alloc_core::STARTUP_RECORDS`]),
//! so `channel_undrained` and `tokio_task_pending`, which make theirs in
//! the first cycle, come out `thread`, the path running from the
//! thread-local storage that keeps the receiver or the runtime through the
//! channel's or the runtime's blocks (`tokio::runtime::builder::Builder::build`).
//! `channel_unrecorded` makes its channel after the start-up's records are
//! spent and before capture turned dense: the scan cannot follow a pointer
//! through the channel's unrecorded blocks, and says so (`heap`, the path
//! starting at an unsampled block, then the channel's recorded list
//! blocks, if any, at the sending line).

use alloc_core::{advance_epoch, untracked, EpochAlloc, Jemalloc};
use alloc_report::analysis::{Cause, CauseKind};
use alloc_report::{analyze, ClassifyOptions, SnapshotFile, Symbolizer, VerdictKind};
use alloc_tests::estimates::push_snapshot;
use alloc_tests::shapes;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const CYCLES: u32 = 20_000;
const PER_SNAPSHOT: u32 = 200;
/// The environment variable that makes this process run one case.
const CASE_ENV: &str = "RETENTION_CASE";

/// What one cycle leaks: the line that allocates it.
type Lines = Vec<u32>;

/// One case: a cycle, the cause its leak sites must have, and what the
/// path must mention (empty: nothing required).
struct Case {
    name: &'static str,
    cycle: fn(u32) -> Lines,
    want: &'static [CauseKind],
    path_names: &'static str,
    /// The file its lines are in.
    file: &'static str,
}

// ---- statics -----------------------------------------------------------

#[allow(clippy::vec_box)] // one heap block per cycle
static STATIC_VEC: Mutex<Vec<Box<[u64; 5]>>> = Mutex::new(Vec::new());

#[inline(never)]
fn static_vec(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, b) = (line!(), Box::new([u64::from(cycle); 5]));
    STATIC_VEC.lock().unwrap().push(b);
    vec![line]
}

#[allow(clippy::type_complexity)]
static STATIC_MAP: Mutex<Option<HashMap<u32, Box<[u64; 6]>>>> = Mutex::new(None);

#[inline(never)]
fn static_hashmap(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, b) = (line!(), Box::new([u64::from(cycle); 6]));
    STATIC_MAP
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(cycle, b);
    vec![line]
}

static STATIC_STRING: Mutex<String> = Mutex::new(String::new());

#[inline(never)]
fn static_string(cycle: u32) -> Lines {
    let mut s = STATIC_STRING.lock().unwrap();
    #[rustfmt::skip]
    let line = { s.push_str(&format!("{cycle:>23};")); line!() };
    vec![line]
}

// ---- cycles ------------------------------------------------------------

#[inline(never)]
fn rc_cycle(cycle: u32) -> Lines {
    shapes::rc_cycle(cycle).to_vec()
}

struct Peer {
    #[allow(dead_code)]
    id: u64,
    other: Mutex<Option<Arc<Peer>>>,
}

/// The worker that makes the other half of each pair.
struct PairWorker {
    jobs: mpsc::Sender<Arc<Peer>>,
    done: mpsc::Receiver<u32>,
}

thread_local! {
    static PAIR_WORKER: RefCell<Option<PairWorker>> = const { RefCell::new(None) };
}

static PEER_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[inline(never)]
fn peer_on_worker(a: Arc<Peer>) {
    #[rustfmt::skip]
    let (line, b) = (line!(), Arc::new(Peer { id: 1, other: Mutex::new(Some(Arc::clone(&a))) }));
    PEER_LINE.store(line, std::sync::atomic::Ordering::Relaxed);
    *a.other.lock().unwrap() = Some(b);
}

#[inline(never)]
fn arc_cycle_threads(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, a) = (line!(), Arc::new(Peer { id: u64::from(cycle), other: Mutex::new(None) }));
    PAIR_WORKER.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.get_or_insert_with(|| {
            let (jobs, rx) = mpsc::channel::<Arc<Peer>>();
            let (tx, done) = mpsc::channel::<u32>();
            std::thread::spawn(move || {
                while let Ok(a) = rx.recv() {
                    peer_on_worker(a);
                    if tx.send(0).is_err() {
                        break;
                    }
                }
            });
            PairWorker { jobs, done }
        });
        w.jobs.send(a).unwrap();
        w.done.recv().unwrap();
    });
    vec![line, PEER_LINE.load(std::sync::atomic::Ordering::Relaxed)]
}

// ---- forgotten ---------------------------------------------------------

#[inline(never)]
fn box_leak(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, name) = (line!(), format!("peer-{cycle:035}"));
    black_box(Box::leak(name.into_boxed_str()));
    vec![line]
}

#[inline(never)]
fn mem_forget(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, v) = (line!(), vec![cycle as u8; 64]);
    std::mem::forget(black_box(v));
    vec![line]
}

// ---- threads -----------------------------------------------------------

thread_local! {
    #[allow(clippy::vec_box)] // one heap block per cycle
    static LOCAL: RefCell<Vec<Box<[u64; 7]>>> = const { RefCell::new(Vec::new()) };
}

#[inline(never)]
fn thread_local_vec(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, b) = (line!(), Box::new([u64::from(cycle); 7]));
    LOCAL.with(|l| l.borrow_mut().push(b));
    vec![line]
}

#[inline(never)]
fn worker_local_vec(cycle: u32) -> Lines {
    vec![shapes::keep_on_worker(cycle)]
}

/// A channel whose receiver the main thread keeps and never reads.
struct Undrained {
    tx: mpsc::Sender<Box<[u64; 9]>>,
    #[allow(dead_code)] // kept, never read: the leak
    rx: mpsc::Receiver<Box<[u64; 9]>>,
}

thread_local! {
    static UNDRAINED: RefCell<Option<Undrained>> = const { RefCell::new(None) };
}

/// The cycle from which `channel_undrained_late` makes its channel: after
/// the first snapshots, once capture records every allocation (while
/// survivors of a snapshot's age are held).
const LATE_FROM: u32 = 4 * PER_SNAPSHOT;

/// Allocations enough to spend the start-up's records
/// ([`alloc_core::STARTUP_RECORDS`]), each freed at once.
fn spend_startup() {
    for i in 0..alloc_core::STARTUP_RECORDS + 1_000 {
        black_box(Box::new(i));
    }
}

#[inline(never)]
fn channel_unrecorded(cycle: u32) -> Lines {
    if cycle == 0 {
        spend_startup();
    }
    channel_undrained(cycle)
}

#[inline(never)]
fn channel_undrained_late(cycle: u32) -> Lines {
    // A leak from the start, so that capture records every allocation
    // from the first snapshot on (the default policy).
    let mut lines = thread_local_vec(cycle);
    if cycle >= LATE_FROM {
        lines.extend(channel_undrained(cycle));
    }
    lines
}

#[inline(never)]
fn channel_undrained(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, b) = (line!(), Box::new([u64::from(cycle); 9]));
    UNDRAINED.with(|u| {
        let mut u = u.borrow_mut();
        let u = u.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel();
            Undrained { tx, rx }
        });
        u.tx.send(b).unwrap();
    });
    vec![line]
}

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

#[inline(never)]
fn tokio_task_pending(cycle: u32) -> Lines {
    #[rustfmt::skip]
    let (line, b) = (line!(), Box::new([u64::from(cycle); 4]));
    RUNTIME.with(|r| {
        let mut r = r.borrow_mut();
        let rt = r.get_or_insert_with(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap()
        });
        rt.spawn(async move {
            std::future::pending::<()>().await;
            black_box(b);
        });
    });
    vec![line]
}

#[inline(never)]
fn churn_only(cycle: u32) -> Lines {
    let mut live: Vec<Vec<u8>> = Vec::with_capacity(16);
    for i in 0..16u32 {
        live.push(vec![(cycle + i) as u8; 1024]);
    }
    black_box(&live);
    Vec::new()
}

fn cases() -> Vec<Case> {
    use CauseKind::*;
    let c = |name, cycle, want, path_names| Case {
        name,
        cycle,
        want,
        path_names,
        file: "retention_causes.rs",
    };
    let shared = |name, cycle, want, path_names| Case {
        name,
        cycle,
        want,
        path_names,
        file: shapes::FILE,
    };
    vec![
        c(
            "static_vec",
            static_vec as fn(u32) -> Lines,
            &[Static],
            "STATIC_VEC",
        ),
        c("static_hashmap", static_hashmap, &[Static], "STATIC_MAP"),
        c("static_string", static_string, &[Static], "STATIC_STRING"),
        shared("rc_cycle", rc_cycle, &[Cycle], ""),
        c("arc_cycle_threads", arc_cycle_threads, &[Cycle], ""),
        c("box_leak", box_leak, &[Unreferenced], ""),
        c("mem_forget", mem_forget, &[Unreferenced], ""),
        c(
            "thread_local_vec",
            thread_local_vec,
            &[Thread],
            "main thread",
        ),
        shared("worker_local_vec", worker_local_vec, &[Thread], "thread"),
        c(
            "channel_undrained",
            channel_undrained,
            &[Thread],
            "main thread",
        ),
        c(
            "channel_unrecorded",
            channel_unrecorded,
            &[Heap],
            "an unsampled block",
        ),
        c(
            "channel_undrained_late",
            channel_undrained_late,
            &[Thread],
            "main thread",
        ),
        c(
            "tokio_task_pending",
            tokio_task_pending,
            &[Thread],
            "tokio::runtime::builder::Builder::build",
        ),
        c("churn_only", churn_only, &[], ""),
    ]
}

/// The last snapshot: with a retention scan, symbolised in-process, its
/// statics named from this binary's symbol table.
fn push_retained(series: &mut Vec<SnapshotFile>, cycles: u64) {
    advance_epoch();
    let mut s = alloc_core::snapshot_with_retention();
    alloc_core::symbolize(&mut s);
    untracked(|| {
        Symbolizer::new()
            .symbolize(&mut s)
            .expect("statics named from this binary");
        let scan = &s.retention.as_ref().expect("a retention scan").scan;
        println!(
            "scan: {} sampled blocks, {:.1} ms, {} KiB read, {} edges, peak {} KiB, complete {}",
            scan.sampled_blocks,
            scan.duration_ns as f64 / 1e6,
            scan.bytes_read >> 10,
            scan.edges,
            scan.peak_bytes >> 10,
            scan.complete
        );
        series.push(SnapshotFile {
            cycles: Some(cycles),
            snapshot: s,
        });
    });
}

/// Soaks one case in this process and checks its causes.
fn run_case(case: &Case) {
    let t = Instant::now();
    let mut series: Vec<SnapshotFile> = untracked(|| Vec::with_capacity(128));
    let mut lines = Lines::new();
    advance_epoch();
    for cycle in 0..=CYCLES {
        if cycle == CYCLES {
            push_retained(&mut series, u64::from(cycle));
        } else if cycle % PER_SNAPSHOT == 0 {
            push_snapshot(&mut series, u64::from(cycle));
        }
        if cycle < CYCLES {
            lines = (case.cycle)(cycle);
        }
    }
    untracked(|| {
        let r = analyze(&series, &ClassifyOptions::default());
        for v in &r.sites {
            if v.kind != VerdictKind::Leak {
                assert!(
                    v.cause.is_none(),
                    "{}: a {} site has a cause: {v:#?}",
                    case.name,
                    v.kind.as_str()
                );
            }
        }
        if case.want.is_empty() {
            let leaks: Vec<&str> = r
                .sites
                .iter()
                .filter(|v| v.kind == VerdictKind::Leak)
                .map(|v| v.site.as_str())
                .collect();
            assert!(leaks.is_empty(), "{}: leaks {leaks:?}", case.name);
            println!("{}: no leak, no cause, in {:.1?}", case.name, t.elapsed());
            return;
        }
        for line in &lines {
            let needle = format!("{}:{line} ", case.file);
            let v = r
                .sites
                .iter()
                .find(|v| v.site.contains(&needle))
                .unwrap_or_else(|| panic!("{}: no site {needle}: {:#?}", case.name, r.sites));
            assert_eq!(v.kind, VerdictKind::Leak, "{}: {v:#?}", case.name);
            let cause: &Cause = v
                .cause
                .as_ref()
                .unwrap_or_else(|| panic!("{}: leak without a cause: {v:#?}", case.name));
            println!("{}: {} -> {}", case.name, v.site, cause.line());
            println!("    shares {:?}", cause.shares);
            let path = cause.path.join(" -> ");
            assert!(
                path.contains(case.path_names),
                "{}: {needle}: the path does not name {:?}: {path}",
                case.name,
                case.path_names
            );
            assert!(
                case.want.contains(&cause.kind),
                "{}: {needle}: cause {:?}, expected one of {:?}: {cause:#?}",
                case.name,
                cause.kind,
                case.want
            );
            assert!(
                cause.share >= 0.9,
                "{}: {needle}: share {:.3}: {cause:#?}",
                case.name,
                cause.share
            );
        }
        println!("{}: done in {:.1?}", case.name, t.elapsed());
    });
}

fn main() -> ExitCode {
    alloc_tests::case_main(
        CASE_ENV,
        (Duration::from_secs(300), "retention_causes"),
        cases(),
        |c| c.name,
        run_case,
    )
}
