//! A realloc is a sampling opportunity for its new size, at the line that
//! resized the block: 20,000 blocks allocated at one line, then each grown
//! at another line in a later epoch. Every block left the first line's
//! records (the realloc moved it); the second line's estimate of the bytes
//! it holds is unbiased, within 5 standard errors of the truth
//! ([`alloc_tests::estimates`], seed fixed). A block of 64 KiB
//! or more is always sampled, with weight 1: exact.

use alloc_core::{advance_epoch, set_sampling, untracked, EpochAlloc, Jemalloc, SampleMode};
use alloc_tests::estimates::{self, site_live, symbolised};
use alloc_tests::{exit_on_panic, say, watchdog};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

#[inline(never)]
fn allocate(n: usize, size: usize, out: &mut Vec<Vec<u8>>) -> u32 {
    let line = line!() + 2;
    for _ in 0..n {
        out.push(Vec::with_capacity(size));
    }
    line
}

#[inline(never)]
fn grow(blocks: &mut [Vec<u8>], to: usize) -> u32 {
    let line = line!() + 2;
    for b in blocks.iter_mut() {
        b.reserve_exact(to);
    }
    line
}

fn grown_blocks_are_estimated_at_the_growing_line() {
    let interval = 16u64 << 10;
    set_sampling(SampleMode::Interval(interval));
    let (n, size, new) = (20_000usize, 100usize, 400usize);
    let mut kept: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(n));
    let born = advance_epoch();
    let at = allocate(n, size, &mut kept);
    let grew = advance_epoch();
    let grow_line = grow(&mut kept, new);
    advance_epoch();
    assert!(kept.iter().all(|b| b.capacity() == new));
    let s = symbolised();
    let old = site_live(&s, born, &format!("sampling_realloc.rs:{at} "));
    assert_eq!(old, (0.0, 0.0, 0), "records left at the allocating line");
    let (bytes, blocks, samples) =
        site_live(&s, grew, &format!("sampling_realloc.rs:{grow_line} "));
    say!("sampling_realloc: interval {interval}: {samples} samples of {n} blocks grown to {new} bytes");
    // Each grown block is drawn like an allocation of its new size: the
    // bounds are the standard errors of the estimates of n blocks alike.
    let (sd_bytes, sd_blocks) = estimates::sd_blocks_of(interval, n as u64, new as u64);
    estimates::check(
        "sampling_realloc.grown.bytes",
        bytes,
        (n * new) as f64,
        sd_bytes,
    );
    estimates::check("sampling_realloc.grown.blocks", blocks, n as f64, sd_blocks);
    untracked(|| drop(kept));
}

fn a_large_block_is_always_sampled_whole() {
    set_sampling(SampleMode::Interval(alloc_core::DEFAULT_INTERVAL));
    let from = alloc_core::always_sampled_from().unwrap() as usize;
    assert_eq!(from, 64 << 10);
    let mut kept: Vec<Vec<u8>> = untracked(|| Vec::with_capacity(200));
    let born = advance_epoch();
    let at = allocate(100, 100, &mut kept);
    let grew = advance_epoch();
    let grow_line = grow(&mut kept, from);
    advance_epoch();
    let s = symbolised();
    let grown = site_live(&s, grew, &format!("sampling_realloc.rs:{grow_line} "));
    assert_eq!(
        grown,
        ((100 * from) as f64, 100.0, 100),
        "every grown block, weight 1"
    );
    let old = site_live(&s, born, &format!("sampling_realloc.rs:{at} "));
    assert_eq!(old, (0.0, 0.0, 0));
    untracked(|| drop(kept));
    say!("sampling_realloc: 100 blocks grown to {from} bytes: all sampled at the growing line");
}

fn main() {
    exit_on_panic();
    estimates::fix_seed();
    watchdog(Duration::from_secs(300), "sampling_realloc");
    grown_blocks_are_estimated_at_the_growing_line();
    a_large_block_is_always_sampled_whole();
}
