//! The retention scan never faults and never stalls while the program
//! changes under it: 1,000 snapshots with a retention scan, while four
//! threads allocate, link, free and resize blocks of 16 bytes to 1 MiB,
//! short-lived threads come and go (their stacks unmapped or reused), and
//! one thread maps and unmaps anonymous memory of its own. jemalloc runs
//! with `retain:false` and no decay (the process re-runs itself with
//! `_RJEM_MALLOC_CONF` set), so a freed large block's pages are returned
//! to the kernel at once: the scan reads memory that is unmapped between
//! its `mincore` and its read.
//!
//! Every scan must finish within its time budget plus a margin, and blocks
//! a static holds (large, so always sampled) must come out held by that
//! static in every scan that saw them as survivors.

use alloc_core::{advance_epoch, EpochAlloc, Jemalloc};
use alloc_snapshot::Holder;
use alloc_tests::{exit_on_panic, watchdog};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const SCANS: usize = 1000;
/// Blocks each churning thread keeps live at once.
const LIVE: usize = 32;
const CHILD_ENV: &str = "RETENTION_STRESS_CHILD";

/// Blocks of 96 KiB (always sampled) that this static holds for good, in a
/// buffer of 64 KiB (always sampled too).
#[allow(clippy::vec_box)] // one heap block each: what the scan must find
static HELD: Mutex<Vec<Box<[u8; 96 << 10]>>> = Mutex::new(Vec::new());

static STOP: AtomicBool = AtomicBool::new(false);

/// Allocates, links, resizes and frees blocks until `STOP`.
fn churn(seed: u64) {
    let mut rng = alloc_tests::Rng::new(seed);
    let mut live: Vec<Vec<usize>> = Vec::with_capacity(LIVE);
    while !STOP.load(Relaxed) {
        let size = match rng.below(100) {
            0..=79 => 2 + rng.below(64) as usize,
            80..=97 => 1024 + rng.below(16 << 10) as usize,
            _ => (8 << 10) + rng.below(56 << 10) as usize,
        };
        let mut v = vec![0usize; size];
        // Link it to others: pointers the scan follows.
        for (i, slot) in v.iter_mut().take(8).enumerate() {
            if let Some(other) = live.get(i * 7 % live.len().max(1)) {
                *slot = other.as_ptr() as usize;
            }
        }
        if rng.below(4) == 0 {
            v.resize(size * 2, 1);
        }
        if live.len() == LIVE {
            let k = rng.below(LIVE as u64) as usize;
            live.swap_remove(k);
        }
        live.push(black_box(v));
    }
}

/// Maps, touches and unmaps anonymous memory of its own until `STOP`.
fn map_unmap() {
    let mut n = 0usize;
    while !STOP.load(Relaxed) {
        let len = (1 + n % 64) << 16;
        // SAFETY: an anonymous private mapping with no address hint; the
        // result is checked, written within its length, and unmapped once.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            std::ptr::write_bytes(p.cast::<u8>(), 0xab, len / 2);
            libc::munmap(p, len);
        }
        n += 1;
    }
}

fn child() {
    watchdog(Duration::from_secs(600), "retention_stress");
    {
        let mut held = HELD.lock().unwrap();
        // A buffer of 64 KiB: always sampled, so the path from the static
        // to each block runs through recorded blocks only.
        held.reserve_exact(8192);
        for _ in 0..16 {
            held.push(Box::new([7u8; 96 << 10]));
        }
    }
    let workers: Vec<_> = (0..4u64)
        .map(|seed| std::thread::spawn(move || churn(seed + 1)))
        .chain([std::thread::spawn(map_unmap)])
        .collect();
    let mut slowest = Duration::ZERO;
    let mut found_static = 0usize;
    let budget = Duration::from_nanos(alloc_core::retention::TIME_BUDGET_NS);
    for scan in 0..SCANS {
        if scan % 20 == 0 {
            // Threads that come and go: their stacks unmapped or reused.
            let t = std::thread::spawn(|| black_box(vec![1u8; 4096]).len());
            if scan % 40 == 0 {
                t.join().unwrap();
            }
        }
        advance_epoch();
        let t = Instant::now();
        let s = alloc_core::snapshot_with_retention();
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < budget + Duration::from_secs(2),
            "scan {scan} took {took:?}"
        );
        let r = s.retention.as_ref().expect("a retention scan");
        let held: Vec<u64> = HELD
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.as_ptr() as u64)
            .collect();
        for b in r.blocks.iter().filter(|b| held.contains(&b.addr)) {
            // Up the path to its root: the static.
            let mut at = b;
            for _ in 0..r.blocks.len() {
                match &at.held_by {
                    Some(Holder::Block { block, .. }) => at = &r.blocks[*block as usize],
                    _ => break,
                }
            }
            assert!(
                matches!(at.held_by, Some(Holder::Static { .. })),
                "scan {scan}: a block HELD holds is held by {:?}",
                at.held_by
            );
            found_static += 1;
        }
        drop(s);
        if scan % 100 == 99 {
            eprintln!("retention_stress: {} scans, slowest {slowest:?}", scan + 1);
        }
    }
    STOP.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // Every scan after the first saw the 16 held blocks as survivors.
    assert!(
        found_static >= 16 * (SCANS - 1),
        "held blocks found held by the static {found_static} times"
    );
    println!(
        "retention_stress: {SCANS} scans while threads allocate, free and unmap; slowest {slowest:?}; \
         the static's blocks found held by it {found_static} times"
    );
}

fn main() -> ExitCode {
    exit_on_panic();
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().expect("this test's path");
    let status = std::process::Command::new(exe)
        .env(CHILD_ENV, "1")
        .env(
            "_RJEM_MALLOC_CONF",
            "retain:false,dirty_decay_ms:0,muzzy_decay_ms:0",
        )
        .env_remove("ALLOC_CORE_SAMPLE")
        .status()
        .expect("run the child");
    if status.success() {
        println!("test retention_stress ... ok");
        ExitCode::SUCCESS
    } else {
        println!("test retention_stress ... FAILED ({status})");
        ExitCode::FAILURE
    }
}
