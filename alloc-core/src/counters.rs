//! Per-thread counter slots: live bytes and blocks by birth epoch.
//!
//! A [`Slot`] is written by one thread at a time (its owner), with plain
//! load/store pairs on atomics (`mov`, never a `lock`-prefixed instruction), and
//! read by snapshots from any thread. Frees are counted in the *freeing*
//! thread's slot, so one thread's count for an epoch can be negative; the sum
//! over all slots is exact.
//!
//! Layout of one slot:
//!
//! ```text
//! seq        even: stable; odd: the owner is moving counts (a fold)
//! ops        allocs, frees, reallocs
//! ring[256]  (epoch, bytes, blocks): the entry for epoch e is ring[e % 256]
//! coarse[256] (bytes, blocks): bucket(e) for epochs the ring no longer holds
//! ```
//!
//! When the owner meets an epoch whose ring entry holds an older epoch, it
//! folds that entry into the older epoch's coarse bucket and takes the entry
//! over (the only time counts move, under `seq`). When the entry holds a newer
//! epoch, the count goes straight to the coarse bucket. `bucket()` is a pure
//! function of the epoch, so an allocation and its free always meet in the
//! same bucket, whichever thread does either.

use core::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering::*};

/// Number of recent epochs each slot keeps exact (a power of two).
pub(crate) const WINDOW: usize = 256;
/// Number of coarse buckets (240 are reachable for `u32` epochs).
pub(crate) const COARSE: usize = 256;

/// The greatest epoch `advance_epoch` reaches; it saturates there.
pub(crate) const MAX_EPOCH: u32 = u32::MAX - 2;
/// Tag of blocks the tool allocated for itself (snapshots, `untracked`).
pub(crate) const TOOL_EPOCH: u32 = u32::MAX - 1;
/// Ring epoch of the special slots, which no tag ever equals, so every
/// access to a special slot takes the slow path.
pub(crate) const NEVER: u32 = u32::MAX;

/// Index into [`Slot::ops`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Alloc = 0,
    Free = 1,
    Realloc = 2,
}

/// One ring entry.
#[repr(C)]
pub(crate) struct Entry {
    pub(crate) epoch: AtomicU32,
    pub(crate) bytes: AtomicI64,
    pub(crate) blocks: AtomicI64,
}

/// One coarse bucket.
#[repr(C)]
pub(crate) struct Pair {
    pub(crate) bytes: AtomicI64,
    pub(crate) blocks: AtomicI64,
}

/// The counters of one thread (or of the shared fallback).
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub(crate) seq: AtomicU32,
    pub(crate) ops: [AtomicU64; 3],
    pub(crate) ring: [Entry; WINDOW],
    pub(crate) coarse: [Pair; COARSE],
}

/// Adds `v` to an atomic that only the current thread writes: a plain load
/// and a plain store, no read-modify-write instruction.
#[inline(always)]
pub(crate) fn bump(a: &AtomicI64, v: i64) {
    a.store(a.load(Relaxed).wrapping_add(v), Relaxed);
}

#[inline(always)]
fn bump_u64(a: &AtomicU64, v: u64) {
    a.store(a.load(Relaxed).wrapping_add(v), Relaxed);
}

/// The coarse bucket of an epoch: exact below 16, then 8 buckets per
/// doubling (each covers at most 1/8 of its epochs' magnitude).
#[inline]
pub(crate) const fn bucket(epoch: u32) -> usize {
    if epoch < 16 {
        epoch as usize
    } else {
        let lg = 31 - epoch.leading_zeros(); // 4..=31
        let sub = (epoch >> (lg - 3)) & 7;
        16 + (lg as usize - 4) * 8 + sub as usize
    }
}

/// The epochs `first..=last` that bucket `i` covers (inverse of [`bucket`]).
pub(crate) const fn bucket_range(i: usize) -> (u32, u32) {
    if i < 16 {
        (i as u32, i as u32)
    } else {
        let lg = ((i - 16) / 8 + 4) as u32;
        let sub = ((i - 16) % 8) as u32;
        let first = (1u32 << lg) | (sub << (lg - 3));
        let last = first + ((1u32 << (lg - 3)) - 1);
        (first, last)
    }
}

impl Entry {
    const fn new(epoch: u32) -> Self {
        Entry {
            epoch: AtomicU32::new(epoch),
            bytes: AtomicI64::new(0),
            blocks: AtomicI64::new(0),
        }
    }
}

impl Slot {
    /// An all-zero slot (lives in `.bss`; pages are touched only when used).
    pub(crate) const fn new() -> Self {
        Self::with_ring_epoch::<0>()
    }

    /// A special slot whose ring never matches a tag: every access to it
    /// goes to the slow path, which recognises it by address.
    pub(crate) const fn special() -> Self {
        Self::with_ring_epoch::<NEVER>()
    }

    const fn with_ring_epoch<const EPOCH: u32>() -> Self {
        Slot {
            seq: AtomicU32::new(0),
            ops: [const { AtomicU64::new(0) }; 3],
            ring: [const { Entry::new(EPOCH) }; WINDOW],
            coarse: [const {
                Pair {
                    bytes: AtomicI64::new(0),
                    blocks: AtomicI64::new(0),
                }
            }; COARSE],
        }
    }

    /// The fast path: counts `bytes`/`blocks` for `epoch` if its ring entry
    /// holds that epoch. Returns false (nothing counted) otherwise. Owner only.
    #[inline(always)]
    pub(crate) fn try_record(&self, epoch: u32, bytes: i64, blocks: i64, op: Op) -> bool {
        let e = &self.ring[epoch as usize & (WINDOW - 1)];
        if e.epoch.load(Relaxed) == epoch {
            bump(&e.bytes, bytes);
            bump(&e.blocks, blocks);
            bump_u64(&self.ops[op as usize], 1);
            true
        } else {
            false
        }
    }

    /// Counts whatever the ring holds: folds or redirects to a coarse bucket
    /// when the ring entry holds another epoch. Owner only (or the holder of
    /// the lock that stands for the owner). `epoch` must not be a sentinel.
    pub(crate) fn record(&self, epoch: u32, bytes: i64, blocks: i64, op: Op) {
        if self.try_record(epoch, bytes, blocks, op) {
            return;
        }
        self.record_counts(epoch, bytes, blocks);
        bump_u64(&self.ops[op as usize], 1);
    }

    #[cold]
    fn record_counts(&self, epoch: u32, bytes: i64, blocks: i64) {
        let e = &self.ring[epoch as usize & (WINDOW - 1)];
        let held = e.epoch.load(Relaxed);
        if held == epoch {
            bump(&e.bytes, bytes);
            bump(&e.blocks, blocks);
        } else if held < epoch {
            // The entry holds an epoch at least WINDOW older: fold it into
            // its coarse bucket and take the entry over.
            self.begin_write();
            let (b, n) = (e.bytes.load(Relaxed), e.blocks.load(Relaxed));
            if b != 0 || n != 0 {
                let c = &self.coarse[bucket(held) & (COARSE - 1)];
                bump(&c.bytes, b);
                bump(&c.blocks, n);
            }
            e.epoch.store(epoch, Relaxed);
            e.bytes.store(bytes, Relaxed);
            e.blocks.store(blocks, Relaxed);
            self.end_write();
        } else {
            // The epoch is older than what the ring holds at its place.
            let c = &self.coarse[bucket(epoch) & (COARSE - 1)];
            bump(&c.bytes, bytes);
            bump(&c.blocks, blocks);
        }
    }

    fn begin_write(&self) {
        self.seq
            .store(self.seq.load(Relaxed).wrapping_add(1), Relaxed);
        fence(Release);
    }

    fn end_write(&self) {
        self.seq
            .store(self.seq.load(Relaxed).wrapping_add(1), Release);
    }

    /// Moves all of `self`'s counts into `into` and zeroes `self`. The caller
    /// owns both (the dying thread owns `self`; the shared lock owns `into`).
    pub(crate) fn drain_into(&self, into: &Slot) {
        self.begin_write();
        into.begin_write();
        for e in &self.ring {
            let (b, n) = (e.bytes.swap(0, Relaxed), e.blocks.swap(0, Relaxed));
            let epoch = e.epoch.swap(0, Relaxed);
            if b != 0 || n != 0 {
                into.record_counts(epoch, b, n);
            }
        }
        for (c, d) in self.coarse.iter().zip(into.coarse.iter()) {
            bump(&d.bytes, c.bytes.swap(0, Relaxed));
            bump(&d.blocks, c.blocks.swap(0, Relaxed));
        }
        for (o, d) in self.ops.iter().zip(into.ops.iter()) {
            bump_u64(d, o.swap(0, Relaxed));
        }
        into.end_write();
        self.end_write();
    }

    /// Marks a slot whose owner vanished mid-write (in a fork child) stable.
    pub(crate) fn settle(&self) {
        let s = self.seq.load(Relaxed);
        if s & 1 == 1 {
            self.seq.store(s.wrapping_add(1), Release);
        }
    }

    /// Copies the slot's counts into `out`, retrying while its owner folds.
    pub(crate) fn read_into(&self, out: &mut SlotCopy) {
        let mut tries = 0u32;
        loop {
            let s1 = self.seq.load(Acquire);
            if s1 & 1 == 0 || tries > 1_000_000 {
                for (o, e) in out.ring.iter_mut().zip(self.ring.iter()) {
                    *o = (
                        e.epoch.load(Relaxed),
                        e.bytes.load(Relaxed),
                        e.blocks.load(Relaxed),
                    );
                }
                for (o, c) in out.coarse.iter_mut().zip(self.coarse.iter()) {
                    *o = (c.bytes.load(Relaxed), c.blocks.load(Relaxed));
                }
                for (o, c) in out.ops.iter_mut().zip(self.ops.iter()) {
                    *o = c.load(Relaxed);
                }
                fence(Acquire);
                if self.seq.load(Relaxed) == s1 || tries > 1_000_000 {
                    return;
                }
            }
            tries += 1;
            core::hint::spin_loop();
        }
    }
}

/// A plain copy of one slot, read by a snapshot.
pub(crate) struct SlotCopy {
    pub(crate) ops: [u64; 3],
    pub(crate) ring: [(u32, i64, i64); WINDOW],
    pub(crate) coarse: [(i64, i64); COARSE],
}

impl SlotCopy {
    pub(crate) const fn new() -> Self {
        SlotCopy {
            ops: [0; 3],
            ring: [(0, 0, 0); WINDOW],
            coarse: [(0, 0); COARSE],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_invert_and_cover_every_epoch_once() {
        let mut expect_first = 0u32;
        for i in 0..240 {
            let (first, last) = bucket_range(i);
            assert_eq!(first, expect_first, "bucket {i}");
            assert!(last >= first);
            assert_eq!(bucket(first), i);
            assert_eq!(bucket(last), i);
            expect_first = last.wrapping_add(1);
        }
        assert_eq!(expect_first, 0, "the buckets end exactly at u32::MAX");
        assert_eq!(bucket(u32::MAX), 239);
    }

    #[test]
    fn a_bucket_spans_at_most_an_eighth_of_its_epochs() {
        for i in 16..240 {
            let (first, last) = bucket_range(i);
            assert!((last - first + 1) as u64 * 8 <= first as u64, "bucket {i}");
        }
    }

    fn totals(s: &Slot) -> (i64, i64) {
        let mut c = SlotCopy::new();
        s.read_into(&mut c);
        let r = c.ring.iter().fold((0, 0), |a, e| (a.0 + e.1, a.1 + e.2));
        c.coarse.iter().fold(r, |a, e| (a.0 + e.0, a.1 + e.1))
    }

    #[test]
    fn counts_meet_in_the_same_place_across_folds() {
        let s = Box::new(Slot::new());
        // Born in epoch 3, freed after the ring has wrapped twice.
        s.record(3, 100, 1, Op::Alloc);
        s.record(3 + WINDOW as u32, 7, 1, Op::Alloc);
        s.record(3 + 2 * WINDOW as u32, 9, 1, Op::Alloc);
        assert_eq!(totals(&s), (116, 3));
        s.record(3, -100, -1, Op::Free);
        s.record(3 + WINDOW as u32, -7, -1, Op::Free);
        assert_eq!(totals(&s), (9, 1));
        let e = &s.ring[3];
        assert_eq!(e.epoch.load(Relaxed), 3 + 2 * WINDOW as u32);
        assert_eq!(e.bytes.load(Relaxed), 9);
        assert_eq!(s.ops[Op::Alloc as usize].load(Relaxed), 3);
        assert_eq!(s.ops[Op::Free as usize].load(Relaxed), 2);
        assert_eq!(s.seq.load(Relaxed) % 2, 0);
    }

    #[test]
    fn drain_moves_everything_and_leaves_zero() {
        let a = Box::new(Slot::new());
        let b = Box::new(Slot::new());
        for i in 0..1000u32 {
            a.record(i, i as i64, 1, Op::Alloc);
            b.record(i / 2, 1, 1, Op::Alloc);
        }
        let (ta, tb) = (totals(&a), totals(&b));
        a.drain_into(&b);
        assert_eq!(totals(&a), (0, 0));
        assert_eq!(totals(&b), (ta.0 + tb.0, ta.1 + tb.1));
        assert_eq!(b.ops[0].load(Relaxed), 2000);
    }
}
