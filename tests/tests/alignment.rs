//! Every power-of-two alignment from 1 to 65536, with sizes around it, through
//! `alloc`, `alloc_zeroed` and `realloc` (grow and shrink) on the global
//! `EpochAlloc<Jemalloc>`: pointers are aligned, zeroed blocks are zero,
//! contents survive a realloc, and each operation moves the live counts of
//! the block's epoch by exactly its size (a realloc in a later epoch moves
//! the block there: its old size leaves the birth epoch and its new size
//! joins the current one; further reallocs in that epoch change it by the
//! difference).

use alloc_core::{advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc};
use alloc_tests::{
    exact, exit_on_panic, fill, find_mismatch, find_nonzero, ops_delta, say, watchdog, Counts,
};
use std::alloc::{GlobalAlloc, Layout};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// One block of the test, with the pattern it holds.
struct Block {
    p: *mut u8,
    size: usize,
    align: usize,
    seed: u64,
}

/// Sizes to try with `align`: small ones, ones around the alignment, and
/// ones around page and jemalloc size-class boundaries.
fn sizes_for(align: usize) -> Vec<usize> {
    let mut v = vec![
        1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129, 255, 256,
        257, 1000, 1024, 2048, 3000, 4095, 4096, 4097, 8192, 14336, 16383, 16384, 16385, 65535,
        65536, 65537,
    ];
    v.extend([
        align - 1,
        align,
        align + 1,
        2 * align - 1,
        2 * align,
        2 * align + 1,
        3 * align,
    ]);
    v.retain(|&s| s > 0);
    v.sort_unstable();
    v.dedup();
    v
}

/// The sizes a block of `size` is reallocated through, in order: grow a
/// little, grow a lot, shrink a lot, shrink to one byte, back to the start.
fn realloc_steps(size: usize, align: usize) -> [usize; 5] {
    [size + 1, 2 * size + align, (size / 3).max(1), 1, size]
}

/// Totals' live counts as a [`Counts`].
fn live(s: &alloc_core::Snapshot) -> Counts {
    Counts::new(s.totals.live_bytes as i64, s.totals.live_blocks as i64)
}

fn minus(a: Counts, b: Counts) -> Counts {
    Counts::new(a.bytes - b.bytes, a.blocks - b.blocks)
}

#[derive(Default)]
struct Tally {
    allocs: usize,
    zeroed: usize,
    reallocs: usize,
    frees: usize,
}

fn check_align(align: usize, tally: &mut Tally) {
    let sizes = untracked(|| sizes_for(align));
    let mut blocks: Vec<Block> = untracked(|| Vec::with_capacity(2 * sizes.len()));
    let birth = advance_epoch();

    // Allocate every size twice, plain and zeroed, in the birth epoch.
    for (i, &size) in sizes.iter().enumerate() {
        for zeroed in [false, true] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let before = snapshot();
            let p = if zeroed {
                // SAFETY: `layout` has a non-zero size.
                unsafe { GLOBAL.alloc_zeroed(layout) }
            } else {
                // SAFETY: `layout` has a non-zero size.
                unsafe { GLOBAL.alloc(layout) }
            };
            let after = snapshot();
            let what = if zeroed { "alloc_zeroed" } else { "alloc" };
            assert!(!p.is_null(), "{what}({size}, {align}) returned null");
            assert_eq!(p as usize % align, 0, "{what}({size}, {align}) = {p:p}");
            if zeroed {
                // SAFETY: `p` is a fresh zeroed block of `size` bytes.
                let nz = unsafe { find_nonzero(p, size) };
                assert_eq!(nz, None, "alloc_zeroed({size}, {align}): byte not zero");
                tally.zeroed += 1;
            } else {
                tally.allocs += 1;
            }
            let seed = (align as u64) << 32 | (i as u64) << 1 | zeroed as u64;
            // SAFETY: `p` is a block of `size` writable bytes.
            unsafe { fill(p, size, seed) };
            assert_eq!(
                minus(exact(&after, birth), exact(&before, birth)),
                Counts::new(size as i64, 1),
                "{what}({size}, {align}): birth epoch {birth} moved by the wrong amount"
            );
            assert_eq!(
                minus(live(&after), live(&before)),
                Counts::new(size as i64, 1),
                "{what}({size}, {align}): totals moved by the wrong amount"
            );
            assert_eq!(
                ops_delta(&before, &after),
                (1, 0, 0),
                "{what}({size}, {align})"
            );
            blocks.push(Block {
                p,
                size,
                align,
                seed,
            });
        }
    }
    let all: usize = blocks.iter().map(|b| b.size).sum();
    let s = snapshot();
    assert_eq!(
        exact(&s, birth),
        Counts::new(all as i64, blocks.len() as i64),
        "align {align}: epoch {birth} after all allocations"
    );

    // Resize every block in a later epoch: the first realloc moves it from
    // the birth epoch to `later`, the next ones stay in `later`.
    let later = advance_epoch();
    for b in blocks.iter_mut() {
        for (step, new_size) in realloc_steps(b.size, b.align).into_iter().enumerate() {
            let layout = Layout::from_size_align(b.size, b.align).unwrap();
            let before = snapshot();
            // SAFETY: `b.p` is live with `layout`; `new_size` is non-zero and
            // far below `isize::MAX` when rounded to `align`.
            let p = unsafe { GLOBAL.realloc(b.p, layout, new_size) };
            let after = snapshot();
            let (old, align) = (b.size, b.align);
            assert!(!p.is_null(), "realloc({old} -> {new_size}, {align}) null");
            assert_eq!(
                p as usize % align,
                0,
                "realloc({old} -> {new_size}, {align})"
            );
            let kept = old.min(new_size);
            // SAFETY: `p` holds at least `kept` bytes copied from the block.
            let bad = unsafe { find_mismatch(p, kept, b.seed) };
            assert_eq!(
                bad, None,
                "realloc({old} -> {new_size}, {align}) lost the contents"
            );
            // SAFETY: `p` is a block of `new_size` writable bytes.
            unsafe { fill(p, new_size, b.seed) };
            let (out_of_birth, into_later) = if step == 0 {
                (
                    Counts::new(-(old as i64), -1),
                    Counts::new(new_size as i64, 1),
                )
            } else {
                (
                    Counts::default(),
                    Counts::new(new_size as i64 - old as i64, 0),
                )
            };
            assert_eq!(
                minus(exact(&after, birth), exact(&before, birth)),
                out_of_birth,
                "realloc({old} -> {new_size}, {align}) in epoch {later} (step {step}): \
                 birth epoch {birth} moved by the wrong amount"
            );
            assert_eq!(
                minus(exact(&after, later), exact(&before, later)),
                into_later,
                "realloc({old} -> {new_size}, {align}) (step {step}): \
                 current epoch {later} moved by the wrong amount"
            );
            assert_eq!(
                ops_delta(&before, &after),
                (0, 0, 1),
                "realloc({old} -> {new_size}, {align})"
            );
            b.p = p;
            b.size = new_size;
            tally.reallocs += 1;
        }
    }

    assert_eq!(
        exact(&snapshot(), birth),
        Counts::default(),
        "align {align}: every block left birth epoch {birth}"
    );
    // Free everything: the epoch they moved to empties exactly.
    for b in blocks.drain(..) {
        let before = snapshot();
        // SAFETY: `b.p` is live with this layout; contents were written.
        let bad = unsafe { find_mismatch(b.p, b.size, b.seed) };
        assert_eq!(bad, None, "block ({}, {}) corrupted", b.size, b.align);
        // SAFETY: `b.p` was allocated (or last reallocated) with this layout.
        unsafe { GLOBAL.dealloc(b.p, Layout::from_size_align(b.size, b.align).unwrap()) };
        let after = snapshot();
        assert_eq!(
            minus(exact(&after, later), exact(&before, later)),
            Counts::new(-(b.size as i64), -1),
            "dealloc({}, {}) in epoch {later}",
            b.size,
            b.align
        );
        assert_eq!(ops_delta(&before, &after), (0, 1, 0));
        tally.frees += 1;
    }
    let s = snapshot();
    assert_eq!(
        exact(&s, birth),
        Counts::default(),
        "align {align}: epoch {birth} not empty"
    );
    assert_eq!(
        exact(&s, later),
        Counts::default(),
        "align {align}: epoch {later} not empty"
    );
    untracked(move || drop(blocks));
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "alignment");
    let start = Instant::now();
    let mut tally = Tally::default();
    for k in 0..=16 {
        check_align(1 << k, &mut tally);
    }
    say!(
        "alignment: aligns 1..=65536: {} alloc, {} alloc_zeroed, {} realloc, {} dealloc; \
         pointers aligned, zeroed, contents kept, per-epoch counts exact ({:?})",
        tally.allocs,
        tally.zeroed,
        tally.reallocs,
        tally.frees,
        start.elapsed()
    );
}
