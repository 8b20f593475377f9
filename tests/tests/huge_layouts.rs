//! Layouts near `isize::MAX` (the largest a `Layout` allows) through
//! `alloc`, `alloc_zeroed` and `realloc`: the allocator returns null, does not
//! panic or abort, leaves the block of a failed realloc intact (and, for a
//! sampled block, its sample), and changes no counter (totals, per-epoch
//! entries, operation counts).
//!
//! Every request here needs at least 2^62 bytes of address space, which no
//! machine has, so the results do not depend on the overcommit policy.

use alloc_core::{advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc, Snapshot};
use alloc_tests::{exit_on_panic, fill, find_mismatch, say, watchdog};
use std::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const MAX: usize = isize::MAX as usize;

/// Asserts that nothing the user can see changed between two snapshots.
fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert_eq!(before.totals, after.totals, "{what}: totals changed");
    assert_eq!(
        before.epochs, after.epochs,
        "{what}: per-epoch entries changed"
    );
}

/// Layouts whose size, rounded up to the alignment, is at least 2^62.
fn huge_layouts() -> Vec<Layout> {
    let mut v = Vec::new();
    for lg in [0, 1, 3, 4, 6, 12, 16, 21, 30, 40, 61, 62] {
        let align = 1usize << lg;
        let biggest = MAX - align + 1;
        for size in [
            biggest,
            biggest - 1,
            biggest.saturating_sub(4096),
            biggest.saturating_sub(65536),
            MAX / 2 + 1,
            MAX / 2 - 7,
            1 << 62,
            (1 << 62) - 1,
            (1 << 62) + 1,
        ] {
            if let Ok(l) = Layout::from_size_align(size, align) {
                if l.pad_to_align().size() >= 1 << 62 {
                    v.push(l);
                }
            }
        }
    }
    // Alignments no address space can satisfy, with small sizes.
    for size in [1, 8, 64, 4096] {
        v.push(Layout::from_size_align(size, 1 << 62).unwrap());
    }
    v.sort_by_key(|l| (l.align(), l.size()));
    v.dedup();
    v
}

/// New sizes for a realloc of a block aligned to `align` that are valid per
/// `GlobalAlloc::realloc`'s contract (rounded up they fit `isize::MAX`) and
/// at least 2^62.
fn huge_new_sizes(align: usize) -> Vec<usize> {
    let biggest = MAX - align + 1;
    let mut v = vec![
        biggest,
        biggest - 1,
        biggest - 4095,
        MAX / 2 + 1,
        1 << 62,
        (1 << 62) + 3,
    ];
    v.retain(|&s| {
        Layout::from_size_align(s, align).is_ok_and(|l| l.pad_to_align().size() >= 1 << 62)
    });
    v
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(120), "huge_layouts");
    let layouts = untracked(huge_layouts);
    let epoch = advance_epoch();

    // alloc and alloc_zeroed.
    for &layout in &layouts {
        let before = snapshot();
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { GLOBAL.alloc(layout) };
        // SAFETY: as above.
        let z = unsafe { GLOBAL.alloc_zeroed(layout) };
        let after = snapshot();
        assert!(p.is_null(), "alloc({layout:?}) returned {p:p}");
        assert!(z.is_null(), "alloc_zeroed({layout:?}) returned {z:p}");
        assert_unchanged(&before, &after, &untracked(|| format!("alloc({layout:?})")));
        assert!(
            after.epoch_entry(epoch).is_none(),
            "alloc({layout:?}) left an entry"
        );
    }

    // realloc of real blocks (small ones with a trailer tag, large ones with
    // a side tag; born in an earlier epoch) to huge sizes.
    let mut reallocs = 0;
    let mut samples_kept = 0;
    for align in [1usize, 8, 16, 64, 4096, 65536] {
        for size in [1usize, 24, 100, 4096, 100_000, 3 << 20] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let born = advance_epoch();
            // Whether the block is sampled for certain, under the mode the
            // default policy is in now (only snapshots change it).
            let always = alloc_core::always_sampled_from().is_some_and(|t| size as u64 >= t);
            // SAFETY: `layout` has a non-zero size.
            let p = unsafe { GLOBAL.alloc(layout) };
            assert!(!p.is_null(), "alloc({layout:?}) failed");
            let seed = (size * 31 + align) as u64;
            // SAFETY: `p` is a fresh block of `size` bytes.
            unsafe { fill(p, size, seed) };
            advance_epoch();
            for new_size in untracked(|| huge_new_sizes(align)) {
                let before = snapshot();
                // SAFETY: `p` is live with `layout`; `new_size` is non-zero
                // and, rounded up to `align`, does not exceed `isize::MAX`.
                let q = unsafe { GLOBAL.realloc(p, layout, new_size) };
                let after = snapshot();
                assert!(
                    q.is_null(),
                    "realloc({layout:?} -> {new_size}) returned {q:p}"
                );
                let what = untracked(|| format!("realloc({layout:?} -> {new_size})"));
                assert_unchanged(&before, &after, &what);
                // SAFETY: a failed realloc leaves `p` live and unchanged.
                let bad = unsafe { find_mismatch(p, size, seed) };
                assert_eq!(bad, None, "{what}: old block changed");
                reallocs += 1;
            }
            // The block is still the allocator's and still born in `born`.
            let s = snapshot();
            let e = s.epoch_entry(born).copied();
            assert_eq!(
                e.map(|e| (e.live_bytes, e.live_blocks)),
                Some((size as u64, 1)),
                "block {layout:?} after failed reallocs"
            );
            // A block sampled for certain (64 KiB and more in the sparse
            // phase, any block in the dense one) is still sampled, whole, in
            // its birth epoch: a failed realloc leaves its record and its
            // tag (which names the record) alone.
            let sampled: (f64, u64) = s
                .sites
                .iter()
                .filter(|l| l.epoch == born)
                .fold((0.0, 0), |(b, n), l| (b + l.bytes, n + l.samples));
            if always {
                assert_eq!(sampled, (size as f64, 1), "block {layout:?}: its sample");
                samples_kept += 1;
            }
            // And it can still be resized and freed normally.
            // SAFETY: `p` is live with `layout`; 2 * size is a valid size.
            let q = unsafe { GLOBAL.realloc(p, layout, 2 * size) };
            assert!(!q.is_null(), "realloc({layout:?} -> {}) failed", 2 * size);
            // SAFETY: `q` holds the old `size` bytes.
            let bad = unsafe { find_mismatch(q, size, seed) };
            assert_eq!(bad, None, "ordinary realloc after the failures lost data");
            // SAFETY: `q` is live with size 2 * size and this alignment.
            unsafe { GLOBAL.dealloc(q, Layout::from_size_align(2 * size, align).unwrap()) };
            let s = snapshot();
            assert!(s.epoch_entry(born).is_none(), "block {layout:?} not freed");
        }
    }
    say!(
        "huge_layouts: {} alloc + {} alloc_zeroed near isize::MAX and {reallocs} reallocs to \
         near isize::MAX: all null, no counter changed, old blocks intact, \
         {samples_kept} sampled blocks still sampled",
        layouts.len(),
        layouts.len()
    );
    // The 100 KB and 3 MiB blocks at least, at every alignment.
    assert!(
        samples_kept >= 12,
        "only {samples_kept} sampled blocks checked"
    );
}
