//! A snapshot over jemalloc carries the process's RSS and jemalloc's own
//! statistics (named `"jemalloc"`, with `allocated` tracking what the program
//! holds), and its cost does not depend on the number of live blocks: with a
//! million small blocks live, the snapshot's result and the tool's metadata
//! are the same size as with none (per-block work would show there). The
//! times are printed, not asserted; speed is measured by the benchmarks.

use alloc_core::{advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc, Snapshot};
use alloc_tests::{exact, exit_on_panic, say, watchdog, Counts};
use std::alloc::{GlobalAlloc, Layout};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const BLOCKS: usize = 1_000_000;
const SIZE: usize = 32;

/// Median wall time of `n` snapshots.
fn median_snapshot_time(n: usize) -> Duration {
    let mut times: Vec<Duration> = untracked(|| Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let s = snapshot();
        times.push(t.elapsed());
        drop(s);
    }
    times.sort_unstable();
    let m = times[n / 2];
    untracked(move || drop(times));
    m
}

fn check_stats(s: &Snapshot, what: &str) -> u64 {
    let rss = s
        .rss_bytes
        .unwrap_or_else(|| panic!("{what}: rss_bytes is None"));
    assert!(rss > 0, "{what}: rss_bytes is 0");
    let a = s
        .allocator
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no allocator statistics"));
    assert_eq!(a.name, "jemalloc", "{what}: allocator name");
    assert!(a.allocated > 0, "{what}: jemalloc allocated is 0");
    assert!(a.resident > 0, "{what}: jemalloc resident is 0");
    a.allocated
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "jemalloc_stats");
    let mut ptrs: Vec<usize> = untracked(|| Vec::with_capacity(BLOCKS));
    let e = advance_epoch();
    let s0 = snapshot();
    let allocated0 = check_stats(&s0, "at start");
    let t_few = median_snapshot_time(201);

    let layout = Layout::from_size_align(SIZE, 8).unwrap();
    for _ in 0..BLOCKS {
        // SAFETY: non-zero size.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(!p.is_null());
        ptrs.push(p as usize);
    }
    let s1 = snapshot();
    let allocated1 = check_stats(&s1, "with 1M live blocks");
    assert_eq!(
        exact(&s1, e),
        Counts::new((BLOCKS * SIZE) as i64, BLOCKS as i64),
        "epoch {e} with 1M live blocks"
    );
    let want = (BLOCKS * SIZE) as u64;
    assert!(
        allocated1 >= allocated0 + want * 9 / 10,
        "jemalloc allocated {allocated0} -> {allocated1}, expected it to grow by about {want}"
    );
    let t_many = median_snapshot_time(201);
    assert_eq!(
        s1.epochs.len(),
        s0.epochs.len() + usize::from(s0.epoch_entry(e).is_none()),
        "snapshot entries grew with live blocks"
    );
    // Slots do not grow with live blocks. The page table may map a leaf (1 MiB
    // of address space reserved, touched only where tags are written) for
    // each new GiB of address space the heap reaches: the 8 MiB pointer
    // vector and 32 MiB of blocks can reach into at most two more.
    let (m0, m1) = (s0.tool.metadata_bytes, s1.tool.metadata_bytes);
    assert!(
        m1 <= m0 + 65536 + 2 * (1 << 20),
        "tool metadata grew from {m0} to {m1} bytes with 1M small live blocks"
    );

    for &p in &ptrs {
        // SAFETY: every pointer is live with `layout`.
        unsafe { GLOBAL.dealloc(p as *mut u8, layout) };
    }
    let s2 = snapshot();
    check_stats(&s2, "after freeing");
    assert_eq!(exact(&s2, e), Counts::default(), "epoch {e} after freeing");
    untracked(move || drop(ptrs));
    say!(
        "jemalloc_stats: rss {} -> {} B, jemalloc allocated {allocated0} -> {allocated1} B; \
         median snapshot {t_few:?} with few blocks, {t_many:?} with {BLOCKS} live \
         (printed, not asserted); metadata {m0} -> {m1} B",
        s0.rss_bytes.unwrap(),
        s1.rss_bytes.unwrap()
    );
}
