//! Sampled call sites in snapshots: the line that allocated, exact figures
//! when every allocation is sampled, unbiased estimates within 5 standard
//! errors at an interval (seeded: `ALLOC_CORE_SEED` replays), the histograms, and the tool's own work (snapshots,
//! symbolisation) never among the user's sites or live bytes.

use alloc_core::{
    advance_epoch, set_sampling, snapshot, symbolize, untracked, EpochAlloc, Jemalloc, SampleMode,
};
use alloc_tests::estimates::{self, site_live, symbolised};
use alloc_tests::{exit_on_panic, say, watchdog};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

#[inline(never)]
fn allocate_here(n: usize, size: usize, out: &mut Vec<Vec<u8>>) -> u32 {
    let mut line = 0;
    for i in 0..n {
        let (l, block) = (line!(), vec![i as u8; size]);
        line = l;
        out.push(block);
    }
    line
}

fn every_allocation_is_exact() {
    set_sampling(SampleMode::All);
    let mut kept: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(100));
    let e = advance_epoch();
    let line = allocate_here(100, 333, &mut kept);
    advance_epoch();
    let needle = format!("sampling_sites.rs:{line} ");
    let s = symbolised();
    assert_eq!(s.sampling.mode, alloc_core::SampleMode::All);
    let (bytes, blocks, samples) = site_live(&s, e, &needle);
    assert_eq!((bytes, blocks, samples), (33_300.0, 100.0, 100), "{needle}");
    let stack = s
        .stacks
        .iter()
        .find(|st| st.label().contains(&needle))
        .unwrap();
    let site = stack.site().unwrap();
    assert!(
        site.function
            .as_deref()
            .is_some_and(|f| f.contains("allocate_here")),
        "{site:?}"
    );
    // The exact counters agree with the estimate for that epoch.
    let exact = s.epoch_entry(e).unwrap();
    assert_eq!((exact.live_bytes, exact.live_blocks), (33_300, 100));

    // Sizes were recorded; frees record lifetimes of at least one epoch.
    let sizes = s.histograms.alloc_size.clone();
    assert!(sizes
        .buckets
        .iter()
        .any(|b| b.low <= 333 && 333 <= b.high && b.count >= 100));
    let lifetimes_before = s.histograms.lifetime_epochs.count();
    let freed: Vec<Vec<u8>> = untracked(|| kept.drain(..50).collect());
    drop(freed);
    let s = symbolised();
    assert_eq!(site_live(&s, e, &needle), (16_650.0, 50.0, 50));
    assert!(s.histograms.lifetime_epochs.count() >= lifetimes_before + 50);
    assert!(s.histograms.lifetime_ns.count() >= 50);
    assert!(s.histograms.lifetime_epochs.quantile(0.5).is_some());

    // The tool's side: symbolising allocated (the debug-info cache, the
    // strings), but none of it is the user's, and no site is in the tool.
    let before = snapshot();
    let mut again = snapshot();
    symbolize(&mut again);
    let after = snapshot();
    assert_eq!(before.totals.live_bytes, after.totals.live_bytes);
    assert_eq!(before.totals.allocs, after.totals.allocs);
    for st in &again.stacks {
        if let Some(f) = st.site() {
            let name = f.function.as_deref().unwrap_or("");
            assert!(
                !name.contains("alloc_core::") && !name.starts_with("backtrace::"),
                "a site in the tool: {}",
                st.label()
            );
        }
    }
    untracked(|| drop(kept));
    say!("sampling_sites: every allocation: {needle} exact (33300 bytes, 100 blocks), histograms filled");
}

fn an_interval_estimates_within_its_standard_error() {
    let interval = 16 << 10;
    set_sampling(SampleMode::Interval(interval));
    let n = 20_000;
    let size = 256;
    let mut kept: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(n));
    let e = advance_epoch();
    let line = allocate_here(n, size, &mut kept);
    advance_epoch();
    let s = symbolised();
    let needle = format!("sampling_sites.rs:{line} ");
    let (bytes, blocks, samples) = site_live(&s, e, &needle);
    say!("sampling_sites: interval {interval}: {samples} samples of {n} blocks of {size} bytes");
    // About n * p = 311 samples expected; the bounds are the exact
    // standard errors of the estimates of n blocks alike.
    let (sd_bytes, sd_blocks) = estimates::sd_blocks_of(interval, n as u64, size as u64);
    estimates::check(
        "sampling_sites.interval.bytes",
        bytes,
        (n * size) as f64,
        sd_bytes,
    );
    estimates::check(
        "sampling_sites.interval.blocks",
        blocks,
        n as f64,
        sd_blocks,
    );
    untracked(|| drop(kept));
}

/// A mode switch resets every countdown; the allocation after it must be
/// sampled with the probability its weight assumes, not for certain (which
/// would add a phantom `interval / size` blocks per switch).
fn switches_do_not_bias_estimates() {
    let interval = 16 << 10;
    let (switches, per_switch, size) = (2_000, 10, 256);
    let n = switches * per_switch;
    let mut kept: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(n));
    let e = advance_epoch();
    let mut line = 0;
    for _ in 0..switches {
        set_sampling(SampleMode::Interval(interval));
        line = allocate_here(per_switch, size, &mut kept);
    }
    advance_epoch();
    let s = symbolised();
    let needle = format!("sampling_sites.rs:{line} ");
    let (bytes, blocks, samples) = site_live(&s, e, &needle);
    say!("sampling_sites: {switches} mode switches: {samples} samples of {n} blocks");
    let (sd_bytes, sd_blocks) = estimates::sd_blocks_of(interval, n as u64, size as u64);
    estimates::check(
        "sampling_sites.switches.bytes",
        bytes,
        (n * size) as f64,
        sd_bytes,
    );
    estimates::check(
        "sampling_sites.switches.blocks",
        blocks,
        n as f64,
        sd_blocks,
    );
    untracked(|| drop(kept));
}

fn off_records_nothing_new() {
    set_sampling(SampleMode::Off);
    let before = snapshot().sampling.sampled;
    let mut kept: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(1000));
    allocate_here(1000, 4000, &mut kept);
    let s = snapshot();
    assert_eq!(s.sampling.sampled, before);
    assert_eq!(s.sampling.mode, alloc_core::SampleMode::Off);
    untracked(|| drop(kept));
}

fn main() {
    exit_on_panic();
    estimates::fix_seed();
    watchdog(Duration::from_secs(300), "sampling_sites");
    every_allocation_is_exact();
    an_interval_estimates_within_its_standard_error();
    switches_do_not_bias_estimates();
    off_records_nothing_new();
}
