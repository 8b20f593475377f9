//! At the defaults (no `set_sampling`, no `ALLOC_CORE_SAMPLE`), a program
//! that advances the epoch and takes snapshots through the API itself names
//! a 16-byte leak per cycle among 64 KiB of churn at its file and line: a
//! 20,000-cycle soak, a snapshot and an epoch every 200 cycles, the report
//! from `alloc_report::analyze`. The leak's site is `leak` with its bytes
//! per cycle within 10% of 16 (the default policy records every allocation
//! once snapshots show survivors, so it is exact); a cache that fills over
//! the first 1,000 cycles and holds has no site called `leak`, and the
//! report does not call its sites uncertain.

use alloc_core::{advance_epoch, untracked, EpochAlloc, Jemalloc};
use alloc_report::{analyze, ClassifyOptions, SnapshotFile, VerdictKind};
use alloc_tests::estimates::push_snapshot;
use alloc_tests::{exit_on_panic, watchdog};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const CYCLES: u32 = 20_000;
const PER_SNAPSHOT: u32 = 200;

/// 64 KiB of blocks of 16 B to 4 KiB, all freed before the cycle ends.
#[inline(never)]
fn churn(cycle: u32) -> u64 {
    let mut sum = 0u64;
    let mut left: usize = 64 * 1024;
    let mut k = cycle as usize;
    let mut live: Vec<Vec<u8>> = Vec::with_capacity(64);
    while left > 0 {
        k = k.wrapping_mul(2_654_435_761).wrapping_add(12_345);
        let size = (16 << ((k >> 7) % 9)).min(left);
        live.push(vec![k as u8; size]);
        left -= size;
        if live.len() > 8 {
            sum += u64::from(black_box(live.remove(0))[0]);
        }
    }
    sum + live.iter().map(|b| u64::from(b[0])).sum::<u64>()
}

/// One 16-byte block per cycle, kept for good (a `Box` each: the leak is
/// a heap block per cycle, not bytes in the container's buffer).
#[allow(clippy::vec_box)]
#[inline(never)]
fn leak(kept: &mut Vec<Box<[u8; 16]>>, cycle: u32) -> u32 {
    let (line, block) = (line!(), Box::new([cycle as u8; 16]));
    kept.push(block);
    line
}

#[inline(never)]
fn cache_insert(cache: &mut Vec<Vec<u8>>, cycle: u32) -> u32 {
    let (line, block) = (line!(), vec![cycle as u8; 700]);
    cache.push(block);
    line
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(600), "default_soak_sites");
    let t = Instant::now();
    // The containers' own buffers are the tool's (reserved up front), so
    // the survivors are exactly the blocks the cycles keep.
    let mut kept: Vec<Box<[u8; 16]>> = untracked(|| Vec::with_capacity(CYCLES as usize));
    let mut cache: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(1000));
    let mut series: Vec<SnapshotFile> = untracked(|| Vec::with_capacity(128));
    let (mut leak_line, mut cache_line, mut sum) = (0, 0, 0u64);
    advance_epoch();
    for cycle in 0..CYCLES {
        if cycle % PER_SNAPSHOT == 0 {
            push_snapshot(&mut series, u64::from(cycle));
        }
        sum += churn(cycle);
        leak_line = leak(&mut kept, cycle);
        if cycle < 1000 {
            cache_line = cache_insert(&mut cache, cycle);
        }
    }
    push_snapshot(&mut series, u64::from(CYCLES));
    let last = series.last().map_or(0, |f| f.snapshot.sampling.sampled);
    black_box(sum);

    untracked(|| {
        let r = analyze(&series, &ClassifyOptions::default());
        assert_eq!(r.overall.kind, VerdictKind::Leak, "{:?}", r.overall);
        let leak_site = format!("default_soak_sites.rs:{leak_line} ");
        let cache_site = format!("default_soak_sites.rs:{cache_line} ");
        let v = r
            .sites
            .iter()
            .find(|v| v.site.contains(&leak_site))
            .unwrap_or_else(|| panic!("no site {leak_site}: {:#?}", r.sites));
        assert_eq!(v.kind, VerdictKind::Leak, "{v:#?}");
        let error = (v.bytes_per_cycle - 16.0).abs() / 16.0;
        assert!(error <= 0.10, "{v:#?}");
        let leaks: Vec<&str> = r
            .sites
            .iter()
            .filter(|v| v.kind == VerdictKind::Leak)
            .map(|v| v.site.as_str())
            .collect();
        assert!(
            leaks.iter().all(|s| !s.contains(&cache_site)),
            "the cache is called a leak: {leaks:?}"
        );
        assert_eq!(r.agreement, None);
        println!(
            "default_soak_sites: {CYCLES} cycles at the defaults in {:.1?}: {} {} {:.2} B/cycle \
             ({} samples taken in all), {} leak site(s), cache not a leak",
            t.elapsed(),
            v.site,
            v.kind.as_str(),
            v.bytes_per_cycle,
            last,
            leaks.len()
        );
    });
}
