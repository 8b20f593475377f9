//! Per-thread slots: live bytes and blocks by birth epoch, and the
//! owner's sampling and leak-scope state.
//!
//! A [`Slot`] is written by one thread at a time (its owner), with plain
//! load/store pairs on atomics (`mov`, never a `lock`-prefixed instruction), and
//! read by snapshots from any thread. Frees are counted in the *freeing*
//! thread's slot, so one thread's count for an epoch can be negative; the sum
//! over all slots is exact.
//!
//! Layout of one slot (`#[repr(C)]` throughout):
//!
//! ```text
//! counters   EpochCounters: the epoch counters
//!   ring[256]   (epoch, bytes, allocs, frees), 32 bytes, one cache line each:
//!               the entry for epoch e is ring[e % 256]
//!   cur_epoch,  the owner's current epoch and its ring entry's offset: the
//!   cur_at      fast path's one test (see `EpochCounters::cur_epoch`)
//!   seq         even: stable; odd: the owner is moving counts (a fold)
//!   reallocs    successful reallocations counted here
//! sampler    SamplerState: the countdown (bytes to the next sample, in the
//!            same cache line as cur_epoch), the generator, samples taken,
//!            the last stack, the histograms
//! scope      ScopeState: leak scopes open, their records' numbering
//! coarse[256] (bytes, allocs, frees): bucket(e) for epochs the ring no longer holds
//! ```
//!
//! Live blocks of an epoch are its allocations minus its frees; an
//! allocation touches `bytes` and `allocs`, a free `bytes` and `frees`, all in
//! the one ring entry. A realloc in a later epoch than the block's moves it
//! ([`Op::MoveOut`] of the old size, [`Op::MoveIn`] of the new): one
//! allocation leaves the old epoch's count and joins the current one's, so
//! the totals of allocations and frees stay the program's calls.
//!
//! When the owner meets an epoch whose ring entry holds an older epoch, it
//! folds that entry into the older epoch's coarse bucket and takes the entry
//! over (the only time counts move, under `seq`). When the entry holds a newer
//! epoch, the count goes straight to the coarse bucket. `bucket()` is a pure
//! function of the epoch, so an allocation and its free always meet in the
//! same bucket, whichever thread does either.

use crate::counters::{bucket, bump, bump_u64, Counts, Entry, Op, Plain, COARSE, NEVER, WINDOW};
use core::sync::atomic::{compiler_fence, fence, AtomicI64, AtomicU32, AtomicU64, Ordering::*};

/// The countdown that means "test the next allocation against a fresh
/// countdown drawn under the mode in force then". A reset (a mode, seed or
/// policy switch), every-allocation capture and a leak scope leave it, so
/// that no allocation is sampled with a probability other than the one its
/// weight assumes (a plain 0 would sample the next allocation for certain
/// and weigh it `1 / p`). It is far below any size, so the fast path always
/// takes the slow path on it and `REDRAW - size` is still recognised
/// (`is_redraw` in `crate::sampler::draw`).
pub(crate) const REDRAW: i64 = i64::MIN / 2;

/// The state of one thread (or of the shared fallback): its epoch
/// counters, its sampler's state and its leak scopes' state, each a struct
/// of its own. The fast path's fields (the cached current epoch, the
/// countdown) share the cache line right after the ring; the coarse buckets,
/// which only folds and snapshots touch, come last.
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// First, so an entry's address is the slot's plus the index scaled,
    /// with no constant offset to add on the fast path.
    pub(crate) counters: EpochCounters,
    pub(crate) sampler: SamplerState,
    pub(crate) scope: ScopeState,
    /// The epoch counters' coarse buckets: [`bucket`] of each epoch the
    /// ring no longer holds.
    pub(crate) coarse: [Counts; COARSE],
}

/// One slot's exact window of epoch counters, with the fast path's cache of
/// the owner's current entry.
#[repr(C)]
pub(crate) struct EpochCounters {
    pub(crate) ring: [Entry; WINDOW],
    /// The owner's current epoch, a cache of its ring entry: unless it is
    /// [`NEVER`], the ring entry [`EpochCounters::cur_at`] bytes into the
    /// ring holds this epoch. Set by the owner's slow path
    /// ([`Slot::make_current`]), cleared before that entry changes hands (a
    /// fold or a drain), read only by the owner: the fast path tests one
    /// field at a fixed offset instead of indexing the ring. A fresh slot's
    /// zeros are consistent (ring entry 0 holds epoch 0), so the pool stays
    /// in `.bss`.
    cur_epoch: AtomicU32,
    /// See [`EpochCounters::cur_epoch`]: a multiple of `size_of::<Entry>()`.
    cur_at: AtomicU32,
    pub(crate) seq: AtomicU32,
    pub(crate) reallocs: AtomicU64,
}

/// The owner's sampling state ([`crate::sampler`]).
#[repr(C)]
pub(crate) struct SamplerState {
    /// Bytes still to allocate before the next sample; the allocation that
    /// takes it below zero goes to the slow path.
    pub(crate) countdown: AtomicI64,
    /// State of the owner's random number generator (sampling intervals).
    pub(crate) rng: AtomicU64,
    /// Samples recorded by this slot's owners, ever.
    pub(crate) sampled: AtomicU64,
    /// The owner's last sampled stack and its guesses of the next (see
    /// [`crate::stacks::LastStack`]).
    pub(crate) last_stack: crate::stacks::LastStack,
    /// The owners' share of the sampling histograms.
    pub(crate) hists: crate::histogram::Hists,
}

/// The owner's leak scopes ([`crate::leaks`]): how many are open, and the
/// numbering of the blocks they record. Owner only.
#[repr(C)]
pub(crate) struct ScopeState {
    /// Leak scopes open on the owner thread.
    depth: AtomicU32,
    /// Allocations recorded inside leak scopes by this slot's owners, ever:
    /// a scope collects the records numbered from its start on.
    seq: AtomicU64,
}

impl ScopeState {
    /// Whether a leak scope is open on the owner thread: every allocation
    /// is then recorded, with weight 1 and a sequence number.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.depth.load(Relaxed) > 0
    }

    /// Opens a scope (they nest); returns the number its records start at.
    pub(crate) fn open(&self) -> u64 {
        self.depth.store(self.depth.load(Relaxed) + 1, Relaxed);
        self.seq.load(Relaxed)
    }

    /// Closes a scope; returns whether it was the outermost.
    pub(crate) fn close(&self) -> bool {
        let depth = self.depth.load(Relaxed).saturating_sub(1);
        self.depth.store(depth, Relaxed);
        depth == 0
    }

    /// The number the next record of a scope gets (the end of the
    /// numbers taken so far).
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Relaxed)
    }

    /// Takes the next record's number.
    pub(crate) fn take_seq(&self) -> u64 {
        let s = self.seq.load(Relaxed);
        self.seq.store(s + 1, Relaxed);
        s
    }

    /// No scope open: a slot's new owner starts outside any.
    pub(crate) fn reset(&self) {
        self.depth.store(0, Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn set_depth(&self, depth: u32) {
        self.depth.store(depth, Relaxed);
    }
}

impl Slot {
    /// An all-zero slot (lives in `.bss`; pages are touched only when used).
    /// Keep every field's initial value zero: one non-zero field moves the
    /// whole pool of [`crate::registry::MAX_THREAD_SLOTS`] slots (26 MiB)
    /// into `.data`, into the binary's file.
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
            counters: EpochCounters {
                ring: [const {
                    Entry {
                        epoch: AtomicU32::new(EPOCH),
                        counts: Counts::new(),
                    }
                }; WINDOW],
                cur_epoch: AtomicU32::new(EPOCH),
                cur_at: AtomicU32::new(0),
                seq: AtomicU32::new(0),
                reallocs: AtomicU64::new(0),
            },
            sampler: SamplerState {
                countdown: AtomicI64::new(0),
                rng: AtomicU64::new(0),
                sampled: AtomicU64::new(0),
                last_stack: crate::stacks::LastStack::new(),
                hists: crate::histogram::Hists::new(),
            },
            scope: ScopeState {
                depth: AtomicU32::new(0),
                seq: AtomicU64::new(0),
            },
            coarse: [const { Counts::new() }; COARSE],
        }
    }

    /// The fast path: counts one operation for `epoch` if its ring entry
    /// holds that epoch; returns false (nothing counted) otherwise. Owner only.
    #[inline(always)]
    pub(crate) fn try_record(&self, epoch: u32, bytes: i64, op: Op) -> bool {
        let e = &self.counters.ring[epoch as usize & (WINDOW - 1)];
        if e.epoch.load(Relaxed) == epoch {
            e.counts.count(bytes, op);
            if matches!(op, Op::Realloc | Op::MoveIn) {
                bump_u64(&self.counters.reallocs, 1);
            }
            true
        } else {
            false
        }
    }

    /// The counts of `epoch` if it is the owner's cached current epoch
    /// ([`EpochCounters::cur_epoch`]). Owner only.
    #[inline(always)]
    fn current(&self, epoch: u32) -> Option<&Counts> {
        // Owner only: program order alone orders this with `make_current`
        // and `forget_current`; a signal handler on this thread sees the
        // cache name no epoch or a consistent one (`make_current`'s order).
        if self.counters.cur_epoch.load(Relaxed) == epoch {
            // `make_current` stores only `i * size_of::<Entry>()`, `i <
            // WINDOW` (and a fresh slot's 0 is entry 0).
            let at = self.counters.cur_at.load(Relaxed) as usize;
            // SAFETY: `at` is a whole entry's offset in this slot's ring.
            let e = unsafe {
                &*self
                    .counters
                    .ring
                    .as_ptr()
                    .cast::<u8>()
                    .add(at)
                    .cast::<Entry>()
            };
            Some(&e.counts)
        } else {
            None
        }
    }

    /// Caches the ring entry of `epoch` as the owner's current one, if the
    /// ring holds it. Owner only; called by the slow path after counting.
    pub(crate) fn make_current(&self, epoch: u32) {
        let i = epoch as usize & (WINDOW - 1);
        if self.counters.ring[i].epoch.load(Relaxed) == epoch && epoch != NEVER {
            // The cache names no epoch while its offset changes, so that a
            // signal handler's fast path on this thread never pairs the old
            // epoch with the new offset.
            self.counters.cur_epoch.store(NEVER, Relaxed);
            compiler_fence(SeqCst);
            // `i * 32 < 8192`: the cast is exact.
            self.counters
                .cur_at
                .store((i * size_of::<Entry>()) as u32, Relaxed);
            compiler_fence(SeqCst);
            self.counters.cur_epoch.store(epoch, Relaxed);
        }
    }

    /// Clears the current-epoch cache if it names `epoch`, before its ring
    /// entry changes hands.
    fn forget_current(&self, epoch: u32) {
        if self.counters.cur_epoch.load(Relaxed) == epoch {
            self.counters.cur_epoch.store(NEVER, Relaxed);
        }
    }

    /// The fast path of a free: counts it if the block's epoch is the
    /// owner's current one or its ring entry holds it; returns false
    /// (nothing counted) otherwise. Owner only.
    #[inline(always)]
    pub(crate) fn try_free(&self, epoch: u32, bytes: i64) -> bool {
        if let Some(c) = self.current(epoch) {
            // The block count first, the other order from `Counts::count`
            // (which the ring path below uses): with the two tails alike,
            // LLVM merged them behind an extra add and jump.
            bump_u64(&c.frees, 1);
            bump(&c.bytes, bytes);
            return true;
        }
        self.try_record(epoch, bytes, Op::Free)
    }

    /// The fast path of a realloc inside the block's epoch: takes
    /// `new_size` off the sampling countdown (a realloc is a sampling
    /// opportunity for the new size) and counts `delta` bytes if `epoch` is
    /// the owner's current epoch and the countdown has not run out. Returns
    /// false (nothing counted, countdown already taken) otherwise. Owner
    /// only.
    #[inline(always)]
    pub(crate) fn try_realloc(&self, epoch: u32, delta: i64, new_size: i64) -> bool {
        let left = self.sampler.countdown.load(Relaxed).wrapping_sub(new_size);
        self.sampler.countdown.store(left, Relaxed);
        match self.current(epoch) {
            Some(c) if left >= 0 => {
                c.count(delta, Op::Realloc);
                bump_u64(&self.counters.reallocs, 1);
                true
            }
            _ => false,
        }
    }

    /// The fast path of an allocation: takes `bytes` off the sampling
    /// countdown and counts the block if `epoch` is the owner's current
    /// epoch and the countdown has not run out. Returns false (nothing
    /// counted, countdown already taken) otherwise. Owner only.
    #[inline(always)]
    pub(crate) fn try_alloc(&self, epoch: u32, bytes: i64) -> bool {
        let left = self.sampler.countdown.load(Relaxed).wrapping_sub(bytes);
        self.sampler.countdown.store(left, Relaxed);
        match self.current(epoch) {
            Some(c) if left >= 0 => {
                c.count(bytes, Op::Alloc);
                true
            }
            _ => false,
        }
    }

    /// Counts one operation whatever the ring holds: folds or redirects to a
    /// coarse bucket when the ring entry holds another epoch. Owner only (or
    /// the holder of the lock that stands for the owner). `epoch` must not
    /// be a sentinel.
    pub(crate) fn record(&self, epoch: u32, bytes: i64, op: Op) {
        if !self.try_record(epoch, bytes, op) {
            self.counts_for(epoch).count(bytes, op);
            if matches!(op, Op::Realloc | Op::MoveIn) {
                bump_u64(&self.counters.reallocs, 1);
            }
        }
    }

    /// Where counts of `epoch` go when its ring entry holds another epoch.
    #[cold]
    fn counts_for(&self, epoch: u32) -> &Counts {
        let e = &self.counters.ring[epoch as usize & (WINDOW - 1)];
        let held = e.epoch.load(Relaxed);
        if held == epoch {
            &e.counts
        } else if held < epoch {
            // The entry holds an epoch at least WINDOW older: fold it into
            // its coarse bucket and take the entry over.
            self.forget_current(held);
            self.begin_write();
            // The entry holds no epoch while its counts move: a signal
            // handler's fast path on this thread then misses it and defers
            // its count ([`crate::reentry`]) instead of counting into
            // counts that are about to change epochs.
            e.epoch.store(NEVER, Relaxed);
            compiler_fence(SeqCst);
            let old = e.counts.take();
            if !old.is_zero() {
                self.coarse[bucket(held) & (COARSE - 1)].add(old);
            }
            e.epoch.store(epoch, Relaxed);
            self.end_write();
            &e.counts
        } else {
            // The epoch is older than what the ring holds at its place.
            &self.coarse[bucket(epoch) & (COARSE - 1)]
        }
    }

    fn begin_write(&self) {
        self.counters
            .seq
            .store(self.counters.seq.load(Relaxed).wrapping_add(1), Relaxed);
        fence(Release);
    }

    fn end_write(&self) {
        self.counters
            .seq
            .store(self.counters.seq.load(Relaxed).wrapping_add(1), Release);
    }

    /// Moves all of `self`'s counts into `into` and zeroes `self`. The caller
    /// owns both (the dying thread owns `self`; the shared lock owns `into`).
    pub(crate) fn drain_into(&self, into: &Slot) {
        self.counters.cur_epoch.store(NEVER, Relaxed);
        self.begin_write();
        into.begin_write();
        for e in &self.counters.ring {
            let v = e.counts.take();
            let epoch = e.epoch.swap(0, Relaxed);
            if !v.is_zero() {
                into.counts_for(epoch).add(v);
            }
        }
        for (c, d) in self.coarse.iter().zip(into.coarse.iter()) {
            d.add(c.take());
        }
        bump_u64(
            &into.counters.reallocs,
            self.counters.reallocs.swap(0, Relaxed),
        );
        bump_u64(&into.sampler.sampled, self.sampler.sampled.swap(0, Relaxed));
        self.sampler.hists.drain_into(&into.sampler.hists);
        into.end_write();
        self.end_write();
    }

    /// Marks a slot whose owner vanished mid-write (in a fork child) stable.
    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn settle(&self) {
        let s = self.counters.seq.load(Relaxed);
        if s & 1 == 1 {
            self.counters.seq.store(s.wrapping_add(1), Release);
        }
    }

    /// Copies the slot's counts into `out`, retrying while its owner folds.
    pub(crate) fn read_into(&self, out: &mut SlotCopy) {
        let mut tries = 0u32;
        loop {
            let s1 = self.counters.seq.load(Acquire);
            if s1 & 1 == 0 || tries > 1_000_000 {
                for (o, e) in out.ring.iter_mut().zip(self.counters.ring.iter()) {
                    *o = (e.epoch.load(Relaxed), e.counts.load());
                }
                for (o, c) in out.coarse.iter_mut().zip(self.coarse.iter()) {
                    *o = c.load();
                }
                out.reallocs = self.counters.reallocs.load(Relaxed);
                out.sampled = self.sampler.sampled.load(Relaxed);
                fence(Acquire);
                if self.counters.seq.load(Relaxed) == s1 || tries > 1_000_000 {
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
    pub(crate) reallocs: u64,
    pub(crate) sampled: u64,
    pub(crate) ring: [(u32, Plain); WINDOW],
    pub(crate) coarse: [Plain; COARSE],
}

impl SlotCopy {
    pub(crate) const fn new() -> Self {
        const Z: Plain = Plain {
            bytes: 0,
            allocs: 0,
            frees: 0,
        };
        SlotCopy {
            reallocs: 0,
            sampled: 0,
            ring: [(0, Z); WINDOW],
            coarse: [Z; COARSE],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(s: &Slot) -> (i64, i64) {
        let mut c = SlotCopy::new();
        s.read_into(&mut c);
        let mut all = Plain::default();
        c.ring.iter().for_each(|e| all.add(e.1));
        c.coarse.iter().for_each(|e| all.add(*e));
        (all.bytes, all.blocks())
    }

    #[test]
    fn counts_meet_in_the_same_place_across_folds() {
        let s = Box::new(Slot::new());
        // Born in epoch 3, freed after the ring has wrapped twice.
        s.record(3, 100, Op::Alloc);
        s.record(3 + WINDOW as u32, 7, Op::Alloc);
        s.record(3 + 2 * WINDOW as u32, 9, Op::Alloc);
        assert_eq!(totals(&s), (116, 3));
        s.record(3, -100, Op::Free);
        s.record(3 + WINDOW as u32, -7, Op::Free);
        assert_eq!(totals(&s), (9, 1));
        let e = &s.counters.ring[3];
        assert_eq!(e.epoch.load(Relaxed), 3 + 2 * WINDOW as u32);
        assert_eq!(e.counts.bytes.load(Relaxed), 9);
        assert_eq!(s.counters.seq.load(Relaxed) % 2, 0);
        s.record(3, 5, Op::Realloc);
        assert_eq!(totals(&s), (14, 1));
        assert_eq!(s.counters.reallocs.load(Relaxed), 1);
        // A move: the 14-byte block of epoch 3 (folded) becomes 20 bytes of
        // the current epoch; allocations summed over epochs do not change.
        let now = 3 + 2 * WINDOW as u32;
        s.record(3, -14, Op::MoveOut);
        s.record(now, 20, Op::MoveIn);
        assert_eq!(totals(&s), (20, 1));
        assert_eq!(s.counters.reallocs.load(Relaxed), 2);
        let mut c = SlotCopy::new();
        s.read_into(&mut c);
        let mut all = Plain::default();
        c.ring.iter().for_each(|e| all.add(e.1));
        c.coarse.iter().for_each(|e| all.add(*e));
        assert_eq!((all.allocs, all.frees), (3, 2));
    }

    #[test]
    fn the_current_epoch_cache_follows_the_ring() {
        let s = Box::new(Slot::new());
        s.sampler.countdown.store(1 << 40, Relaxed);
        assert!(
            !s.try_alloc(5, 10),
            "nothing is cached before the slow path"
        );
        s.record(5, 10, Op::Alloc);
        s.make_current(5);
        assert!(s.try_alloc(5, 20));
        assert!(s.try_free(5, -20));
        assert!(!s.try_alloc(6, 1), "another epoch takes the slow path");
        assert_eq!(totals(&s), (10, 1));
        // Epoch 5 + WINDOW takes epoch 5's entry over: the cache must go,
        // while a free of epoch 5 still lands in its coarse bucket.
        let later = 5 + WINDOW as u32;
        s.record(later, 1, Op::Alloc);
        assert!(!s.try_alloc(5, 1));
        assert!(!s.try_free(5, -10));
        s.record(5, -10, Op::Free);
        assert_eq!(totals(&s), (1, 1));
        s.make_current(later);
        assert!(s.try_alloc(later, 2));
        let into = Box::new(Slot::new());
        s.drain_into(&into);
        assert!(!s.try_alloc(later, 1), "a drained slot caches nothing");
        assert!(!s.try_free(later, -1));
        assert_eq!(totals(&into), (3, 2));
    }

    #[test]
    fn drain_moves_everything_and_leaves_zero() {
        let a = Box::new(Slot::new());
        let b = Box::new(Slot::new());
        for i in 0..1000u32 {
            a.record(i, i as i64, Op::Alloc);
            b.record(i / 2, 1, Op::Alloc);
        }
        let (ta, tb) = (totals(&a), totals(&b));
        a.drain_into(&b);
        assert_eq!(totals(&a), (0, 0));
        assert_eq!(totals(&b), (ta.0 + tb.0, ta.1 + tb.1));
    }

    #[test]
    fn the_fast_paths_fields_share_the_line_after_the_ring() {
        use core::mem::offset_of;
        let ring = size_of::<[Entry; WINDOW]>();
        assert_eq!(offset_of!(Slot, counters.ring), 0);
        for (name, at) in [
            ("cur_epoch", offset_of!(Slot, counters.cur_epoch)),
            ("cur_at", offset_of!(Slot, counters.cur_at)),
            ("reallocs", offset_of!(Slot, counters.reallocs)),
            ("countdown", offset_of!(Slot, sampler.countdown)),
        ] {
            assert!((ring..ring + 64).contains(&at), "{name} at {at}");
        }
        assert_eq!(align_of::<Slot>(), 64);
    }
}
