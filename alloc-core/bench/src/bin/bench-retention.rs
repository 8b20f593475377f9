//! The retention scan's cost: `bench-retention N` builds a heap of `N`
//! sampled live blocks (every allocation recorded: `SampleMode::All`, so
//! that the table holds them all) of the leak shapes the scan names: half
//! held by a static `Vec`, a quarter in `Rc` pairs that hold each other, a
//! quarter leaked with `Box::leak`; plus 16 MiB of unsampled-looking churn
//! freed before measuring. It then times 5 plain snapshots and 5 with a
//! retention scan (medians), and reports the scan's own figures (time,
//! bytes read, edges, its peak tables) and the process's peak RSS growth
//! across the scans (`VmHWM`).
//!
//! Run: `cargo run --release -p alloc-bench --bin bench-retention -- 60000`
//! (figures in `alloc-core/bench/results/retention-cost.txt`).

#![forbid(unsafe_code)]

use alloc_core::{advance_epoch, set_sampling, EpochAlloc, Jemalloc, SampleMode};
use std::cell::RefCell;
use std::hint::black_box;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

#[allow(clippy::vec_box)] // one heap block each: what the scan follows
static HELD: Mutex<Vec<Box<[u64; 6]>>> = Mutex::new(Vec::new());

struct Pair {
    #[allow(dead_code)] // the edge that makes the cycle
    other: RefCell<Option<Rc<Pair>>>,
    #[allow(dead_code)]
    data: [u64; 4],
}

/// `VmHWM` (peak resident set) in bytes, from `/proc/self/status`.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: bench-retention N (sampled live blocks)");
            return ExitCode::from(2);
        }
    };
    set_sampling(SampleMode::All);
    advance_epoch();
    {
        // Churn: freed again, so its pages are dirty heap the scan reads.
        let churn: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 4096]).collect();
        black_box(&churn);
    }
    let mut held = HELD.lock().unwrap();
    held.reserve(n / 2);
    for i in 0..n / 2 {
        held.push(Box::new([i as u64; 6]));
    }
    drop(held);
    for i in 0..n / 8 {
        let a = Rc::new(Pair {
            other: RefCell::new(None),
            data: [i as u64; 4],
        });
        let b = Rc::new(Pair {
            other: RefCell::new(Some(Rc::clone(&a))),
            data: [i as u64; 4],
        });
        *a.other.borrow_mut() = Some(b);
    }
    for i in 0..n / 4 {
        black_box(Box::leak(format!("leaked-{i:033}").into_boxed_str()));
    }
    advance_epoch();

    let mut plain = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        black_box(alloc_core::snapshot());
        plain.push(t.elapsed());
    }
    let hwm_before = peak_rss();
    let mut scans = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let t = Instant::now();
        let s = alloc_core::snapshot_with_retention();
        scans.push(t.elapsed());
        last = s.retention;
    }
    let hwm_after = peak_rss();
    let r = last.expect("a retention scan");
    let plain = median(plain);
    let scanned = median(scans);
    println!(
        "sampled blocks {}: snapshot {:.1} ms, with retention {:.1} ms (+{:.1} ms); scan {:.1} ms, \
         {:.1} MiB read, {:.1} MiB not resident, {} edges, {} blocks kept, scan tables {:.2} MiB, \
         complete {}; peak RSS +{:.2} MiB across the scans",
        r.scan.sampled_blocks,
        plain.as_secs_f64() * 1e3,
        scanned.as_secs_f64() * 1e3,
        (scanned.saturating_sub(plain)).as_secs_f64() * 1e3,
        r.scan.duration_ns as f64 / 1e6,
        r.scan.bytes_read as f64 / f64::from(1 << 20),
        r.scan.bytes_not_resident as f64 / f64::from(1 << 20),
        r.scan.edges,
        r.blocks.len(),
        r.scan.peak_bytes as f64 / f64::from(1 << 20),
        r.scan.complete,
        hwm_after.saturating_sub(hwm_before) as f64 / f64::from(1 << 20),
    );
    ExitCode::SUCCESS
}
