//! The sampling tables stay within their documented bounds however many
//! distinct stacks and live sampled blocks there are, and the epoch counters
//! stay exact when they overflow:
//!
//! - 16,384 distinct call stacks (twice `MAX_STACKS`), every allocation
//!   sampled: the table keeps `MAX_STACKS` at most, the rest go to the
//!   overflow stack (id 0), counted in `stack_overflow`; the estimates still
//!   add up to every block.
//! - More live sampled blocks than `MAX_SAMPLED_BLOCKS`: samples beyond are
//!   dropped and counted in `dropped_full`; live counts stay exact; after
//!   the blocks are freed the table is empty again.
//! - The tool's metadata (`ToolUsage::metadata_bytes`) stays under the
//!   documented bound throughout.

use alloc_core::{
    advance_epoch, set_sampling, snapshot, untracked, EpochAlloc, Jemalloc, SampleMode, Snapshot,
    MAX_SAMPLED_BLOCKS, MAX_STACKS, MAX_STACK_DEPTH,
};
use alloc_tests::{exit_on_panic, say, watchdog};
use std::hint::black_box;
use std::time::Duration;

/// One heap block per call path, kept alive.
type Blocks = Vec<Box<[u8; 24]>>;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Distinct call paths: 16,384, twice `MAX_STACKS`.
const PATHS: u32 = 1 << 14;
/// Levels of the call tree, 8 ways each: 8^5 = 32,768 paths. Kept shallow so
/// that the distinguishing frames fit in `MAX_STACK_DEPTH` even in a debug
/// build, where the allocator machinery takes about 16 frames.
const LEVELS: u32 = 5;

/// Allocates one block at the end of a call path chosen by the digits of
/// `path` in base 8: each level goes through one of eight functions, so
/// every path has its own return addresses.
#[inline(never)]
fn descend(path: u32, level: u32, out: &mut Blocks) -> usize {
    if level == 0 {
        out.push(Box::new([path as u8; 24]));
        return out.len();
    }
    let (next, level) = (path >> 3, level - 1);
    match path & 7 {
        0 => black_box(way0(next, level, out)),
        1 => black_box(way1(next, level, out)),
        2 => black_box(way2(next, level, out)),
        3 => black_box(way3(next, level, out)),
        4 => black_box(way4(next, level, out)),
        5 => black_box(way5(next, level, out)),
        6 => black_box(way6(next, level, out)),
        _ => black_box(way7(next, level, out)),
    }
}

macro_rules! ways {
    ($($name:ident = $k:literal),*) => {$(
        #[inline(never)]
        fn $name(path: u32, level: u32, out: &mut Blocks) -> usize {
            black_box(descend(path, level, out)) + $k
        }
    )*};
}
ways!(
    way0 = 0,
    way1 = 1,
    way2 = 2,
    way3 = 3,
    way4 = 4,
    way5 = 5,
    way6 = 6,
    way7 = 7
);

/// The bound `metadata_bytes` must stay under: counter slots of the
/// threads in use, page-table leaves, and both sampling tables at their
/// maximum.
fn metadata_bound(s: &Snapshot) -> u64 {
    // A counter slot is about 26 KiB (the ring, the coarse buckets and the
    // sampling histograms).
    let slots = 32 * 1024 * (s.tool.threads + 2);
    let page_table = 4 << 20;
    // The entries, and the index of ids (two 4-byte slots per entry).
    let stacks = MAX_STACKS as u64 * (16 + 8 * MAX_STACK_DEPTH as u64 + 8);
    // 16 shards of at most 16,384 records of 32 bytes (8 MiB).
    let records = 16 * 16384 * 32;
    slots + page_table + stacks + records
}

fn distinct_stacks_overflow_into_one() {
    set_sampling(SampleMode::All);
    let paths = PATHS;
    let mut kept: Blocks = untracked(|| Vec::with_capacity(paths as usize));
    let before = snapshot();
    let e = advance_epoch();
    for path in 0..paths {
        descend(path, LEVELS, &mut kept);
    }
    advance_epoch();
    let s = snapshot();
    let overflowed = s.sampling.stack_overflow - before.sampling.stack_overflow;
    let distinct = s.stacks.iter().filter(|st| st.id != 0).count();
    assert!(distinct <= MAX_STACKS, "{distinct} stacks");
    assert!(
        overflowed >= u64::from(paths) - MAX_STACKS as u64,
        "only {overflowed} samples overflowed"
    );
    let born: Vec<_> = s.sites.iter().filter(|l| l.epoch == e).collect();
    let blocks: f64 = born.iter().map(|l| l.blocks).sum();
    let bytes: f64 = born.iter().map(|l| l.bytes).sum();
    assert_eq!((bytes, blocks), (f64::from(paths) * 24.0, f64::from(paths)));
    assert!(
        born.iter().any(|l| l.stack == 0),
        "the overflow stack has sites"
    );
    let exact = s.epoch_entry(e).unwrap();
    assert_eq!(exact.live_blocks, u64::from(paths));
    assert!(s.tool.metadata_bytes <= metadata_bound(&s));
    say!(
        "sampling_bounds: {paths} distinct stacks: {distinct} kept, {overflowed} samples to the \
         overflow stack, estimates exact; metadata {} KiB",
        s.tool.metadata_bytes >> 10
    );
    untracked(|| drop(kept));
}

fn a_full_block_table_drops_samples_not_counts() {
    set_sampling(SampleMode::All);
    let n = MAX_SAMPLED_BLOCKS + 20_000;
    let mut kept: Vec<Box<u64>> = untracked(|| Vec::with_capacity(n));
    let before = snapshot();
    let e = advance_epoch();
    for i in 0..n {
        kept.push(Box::new(i as u64));
    }
    advance_epoch();
    let s = snapshot();
    let dropped = s.sampling.dropped_full - before.sampling.dropped_full;
    assert!(dropped >= 20_000, "{dropped} dropped");
    assert!(s.sampling.live_sampled <= MAX_SAMPLED_BLOCKS as u64);
    let exact = s.epoch_entry(e).unwrap();
    assert_eq!(
        (exact.live_bytes, exact.live_blocks),
        (8 * n as u64, n as u64)
    );
    assert!(s.tool.metadata_bytes <= metadata_bound(&s));
    untracked(|| drop(kept));
    let after = snapshot();
    assert!(after.epoch_entry(e).is_none(), "every block freed");
    assert!(
        after.sampling.live_sampled <= before.sampling.live_sampled + 16,
        "{} records left",
        after.sampling.live_sampled
    );
    say!(
        "sampling_bounds: {n} live blocks, every one sampled: {} records at most, {dropped} \
         dropped, counts exact; metadata {} KiB",
        s.sampling.live_sampled,
        s.tool.metadata_bytes >> 10
    );
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(600), "sampling_bounds");
    distinct_stacks_overflow_into_one();
    a_full_block_table_drops_samples_not_counts();
}
