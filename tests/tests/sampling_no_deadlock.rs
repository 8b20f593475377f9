//! No deadlock when every allocation captures a stack while other threads
//! do the things that take the unwinder's and the runtime's locks: panic and
//! unwind (caught), capture and print `std::backtrace::Backtrace`, spawn and
//! join threads, take and symbolise snapshots. Repeated for many rounds
//! under a watchdog that fails the test if any round hangs.

use alloc_core::{set_sampling, snapshot, symbolize, EpochAlloc, Jemalloc, SampleMode};
use alloc_tests::{say, scaled, watchdog};
use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

static PANICS: AtomicU64 = AtomicU64::new(0);
static BACKTRACES: AtomicU64 = AtomicU64::new(0);
static SPAWNED: AtomicU64 = AtomicU64::new(0);
static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);

fn churn(seed: u64, n: usize) -> u64 {
    let mut map: HashMap<u64, String> = HashMap::new();
    let mut acc = 0u64;
    for i in 0..n as u64 {
        map.insert(i % 64, format!("{seed}-{i}"));
        let v: Vec<u64> = (0..(i % 17)).collect();
        acc = acc.wrapping_add(v.iter().sum::<u64>());
        if i % 3 == 0 {
            map.remove(&(i % 61));
        }
    }
    acc + map.len() as u64
}

fn round(r: usize) {
    let start = Barrier::new(5);
    std::thread::scope(|s| {
        s.spawn(|| {
            start.wait();
            black_box(churn(r as u64, 400));
        });
        s.spawn(|| {
            start.wait();
            for i in 0..20 {
                let caught = std::panic::catch_unwind(|| {
                    // A heap block live while unwinding.
                    let v = black_box(Box::new([i; 10]));
                    panic!("deliberate panic {i} with {} items", v.len());
                });
                assert!(caught.is_err());
                PANICS.fetch_add(1, Relaxed);
            }
        });
        s.spawn(|| {
            start.wait();
            for _ in 0..3 {
                let bt = Backtrace::force_capture();
                let text = bt.to_string();
                assert!(!text.is_empty());
                BACKTRACES.fetch_add(1, Relaxed);
            }
        });
        s.spawn(|| {
            start.wait();
            for i in 0..10 {
                let h = std::thread::spawn(move || churn(i, 50));
                black_box(h.join().unwrap());
                SPAWNED.fetch_add(1, Relaxed);
            }
        });
        s.spawn(|| {
            start.wait();
            for _ in 0..3 {
                let mut snap = snapshot();
                symbolize(&mut snap);
                black_box(snap.stacks.len());
                SNAPSHOTS.fetch_add(1, Relaxed);
            }
        });
    });
}

fn main() {
    // Panics are expected; keep their messages out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    watchdog(Duration::from_secs(600), "sampling_no_deadlock");
    set_sampling(SampleMode::All);
    let rounds = scaled(100, 4);
    let t = Instant::now();
    for r in 0..rounds {
        round(r);
    }
    let s = snapshot();
    assert!(
        s.sampling.sampled > 10_000,
        "{} samples",
        s.sampling.sampled
    );
    say!(
        "sampling_no_deadlock: {rounds} rounds in {:?}: {} samples, {} panics caught, {} \
         backtraces, {} threads spawned, {} snapshots symbolised, no hang",
        t.elapsed(),
        s.sampling.sampled,
        PANICS.load(Relaxed),
        BACKTRACES.load(Relaxed),
        SPAWNED.load(Relaxed),
        SNAPSHOTS.load(Relaxed)
    );
}
