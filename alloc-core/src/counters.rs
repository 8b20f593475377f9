//! The epoch counters: what one count is ([`Op`], [`Counts`]), a ring
//! entry ([`Entry`]), the coarse buckets of older epochs ([`bucket`]),
//! and [`bump`], the owner-only add that the fast path counts with.
//! [`crate::slot::Slot`] lays them out per thread and keeps them exact.

use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::*};

/// Number of recent epochs each slot keeps exact (a power of two).
pub(crate) const WINDOW: usize = 256;
/// Number of coarse buckets (240 are reachable for `u32` epochs).
pub(crate) const COARSE: usize = 256;

/// The greatest epoch `advance_epoch` reaches; it saturates there.
pub(crate) const MAX_EPOCH: u32 = 0x7fff_fffd;
/// Tag of blocks the tool allocated for itself (snapshots, `untracked`).
pub(crate) const TOOL_EPOCH: u32 = 0x7fff_fffe;
/// The tag bit of a block that was sampled: the rest of its tag is the id
/// of its record in [`crate::sampled_table`] (which keeps the birth epoch), not
/// an epoch. No ring entry ever holds an epoch with this bit, so freeing or
/// resizing a sampled block always takes the slow path, and an unsampled
/// block is known to be unsampled without a table look-up.
pub(crate) const SAMPLED: u32 = 0x8000_0000;
/// Ring epoch of the special slots, which no tag ever equals, so every
/// access to a special slot takes the slow path.
pub(crate) const NEVER: u32 = u32::MAX;

/// What is being counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// A new block of `bytes`.
    Alloc,
    /// A block of `-bytes` freed.
    Free,
    /// A block grown (or shrunk, negative) by `bytes` in the epoch it
    /// already belongs to.
    Realloc,
    /// A block of `-bytes` leaving its epoch because a realloc moved it to
    /// the current one: one allocation fewer (not one free more), so the
    /// sum of allocations over all epochs stays the number of `alloc`s.
    MoveOut,
    /// The same block arriving, with its new size `bytes`, in the current
    /// epoch: one allocation more; counts as the realloc.
    MoveIn,
}

/// Counts of one epoch (or one coarse bucket). Blocks = allocs - frees.
#[repr(C)]
pub(crate) struct Counts {
    pub(crate) bytes: AtomicI64,
    pub(crate) allocs: AtomicU64,
    pub(crate) frees: AtomicU64,
}

/// One ring entry: an epoch and its counts, in one 32-byte aligned unit.
#[repr(C, align(32))]
pub(crate) struct Entry {
    pub(crate) epoch: AtomicU32,
    pub(crate) counts: Counts,
}

/// Adds `v` to an atomic that only the current thread writes, with no
/// locked read-modify-write: other threads only read it.
///
/// On x86-64 it is one `add` (or `inc`, `sub`) instruction with a memory
/// operand, so that a signal handler that allocates on this thread cannot
/// land between the load and the store and have its own count overwritten
/// ([`crate::reentry`]): an optimised build folds the relaxed load and
/// store into that one instruction (`objdump -d` of `__rust_dealloc` in a
/// release binary shows it), and an unoptimised one, which would not,
/// uses the instruction itself (`asm!`; an `asm!` in an optimised build
/// would cost the compiler's freedom around it: about 7% more
/// instructions per allocation). Elsewhere, and under Miri, it is a plain
/// load and store: there a handler's count can be lost if it interrupts
/// this very update.
#[inline(always)]
pub(crate) fn bump(a: &AtomicI64, v: i64) {
    #[cfg(all(target_arch = "x86_64", debug_assertions, not(miri)))]
    // SAFETY: `a.as_ptr()` is a valid, aligned `i64` for as long as `a` is
    // borrowed; only this thread writes it, and an aligned 8-byte store is
    // atomic for the threads that read it.
    unsafe {
        core::arch::asm!("add qword ptr [{p}], {v}", p = in(reg) a.as_ptr(), v = in(reg) v,
            options(nostack));
    }
    #[cfg(not(all(target_arch = "x86_64", debug_assertions, not(miri))))]
    a.store(a.load(Relaxed).wrapping_add(v), Relaxed);
}

/// [`bump`] for an unsigned counter.
#[inline(always)]
pub(crate) fn bump_u64(a: &AtomicU64, v: u64) {
    #[cfg(all(target_arch = "x86_64", debug_assertions, not(miri)))]
    // SAFETY: as in `bump`.
    unsafe {
        core::arch::asm!("add qword ptr [{p}], {v}", p = in(reg) a.as_ptr(), v = in(reg) v,
            options(nostack));
    }
    #[cfg(not(all(target_arch = "x86_64", debug_assertions, not(miri))))]
    a.store(a.load(Relaxed).wrapping_add(v), Relaxed);
}

/// The coarse bucket of an epoch: exact below 16, then 8 buckets per
/// doubling (each covers at most 1/8 of its epochs' magnitude).
#[inline]
pub(crate) const fn bucket(epoch: u32) -> usize {
    crate::histogram::index(epoch as u64)
}

/// The epochs `first..=last` that bucket `i` covers (inverse of [`bucket`]).
pub(crate) const fn bucket_range(i: usize) -> (u32, u32) {
    // Below bucket 240 the range lies within `u32` (bucket 239 ends at
    // `u32::MAX`), so the casts are exact.
    let (first, last) = crate::histogram::range(i);
    (first as u32, last as u32)
}

/// A plain copy of one `Counts`.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Plain {
    pub(crate) bytes: i64,
    pub(crate) allocs: u64,
    pub(crate) frees: u64,
}

impl Plain {
    pub(crate) fn is_zero(&self) -> bool {
        self.bytes == 0 && self.allocs == 0 && self.frees == 0
    }

    pub(crate) fn add(&mut self, o: Plain) {
        self.bytes = self.bytes.wrapping_add(o.bytes);
        self.allocs = self.allocs.wrapping_add(o.allocs);
        self.frees = self.frees.wrapping_add(o.frees);
    }

    /// Live blocks: allocations minus frees (negative only mid-flight).
    pub(crate) fn blocks(&self) -> i64 {
        self.allocs.wrapping_sub(self.frees) as i64
    }
}

impl Counts {
    pub(crate) const fn new() -> Self {
        Counts {
            bytes: AtomicI64::new(0),
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
        }
    }

    /// Counts one operation; owner only.
    #[inline(always)]
    pub(crate) fn count(&self, bytes: i64, op: Op) {
        bump(&self.bytes, bytes);
        match op {
            Op::Alloc | Op::MoveIn => bump_u64(&self.allocs, 1),
            Op::Free => bump_u64(&self.frees, 1),
            Op::MoveOut => bump_u64(&self.allocs, u64::MAX),
            Op::Realloc => {}
        }
    }

    pub(crate) fn load(&self) -> Plain {
        Plain {
            bytes: self.bytes.load(Relaxed),
            allocs: self.allocs.load(Relaxed),
            frees: self.frees.load(Relaxed),
        }
    }

    pub(crate) fn take(&self) -> Plain {
        Plain {
            bytes: self.bytes.swap(0, Relaxed),
            allocs: self.allocs.swap(0, Relaxed),
            frees: self.frees.swap(0, Relaxed),
        }
    }

    pub(crate) fn add(&self, v: Plain) {
        bump(&self.bytes, v.bytes);
        bump_u64(&self.allocs, v.allocs);
        bump_u64(&self.frees, v.frees);
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
    #[test]
    fn an_entry_is_one_aligned_half_cache_line() {
        assert_eq!(size_of::<Entry>(), 32);
        assert_eq!(align_of::<Entry>(), 32);
    }
}
