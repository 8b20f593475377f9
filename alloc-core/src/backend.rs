//! The inner allocators `EpochAlloc` can wrap, and what it needs to know of them.

use alloc_snapshot::AllocatorStats;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};
pub use std::alloc::System;

#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;

/// An allocator that [`EpochAlloc`](crate::EpochAlloc) can wrap.
///
/// Any `GlobalAlloc` works with the defaults (implement the trait with an
/// empty body); telling the wrapper the inner allocator's size classes lets it
/// hide the 4-byte epoch tag in a block's unused tail instead of growing the
/// block.
pub trait Backend: GlobalAlloc {
    /// The usable size the inner allocator gives to a request of `size` bytes
    /// at an alignment of 16 or less. Must be `>= size` to be useful; a wrong
    /// answer costs memory, never correctness (the wrapper always requests
    /// the size it relies on). The default, `size`, means "no slack known".
    #[inline(always)]
    fn size_class(&self, size: usize) -> usize {
        size
    }

    /// Allocates a block of `total` bytes (at most 4100) at `align`: the
    /// allocation path's common case (a small block with its tag), where an
    /// inner allocator can skip its own checks for the usual alignments.
    /// The default calls `alloc`.
    ///
    /// # Safety
    /// `total` is non-zero and `Layout::from_size_align(total, align)` is
    /// valid.
    #[inline(always)]
    unsafe fn alloc_small(&self, total: usize, align: usize) -> *mut u8 {
        // SAFETY: the caller passes a valid, non-zero layout.
        unsafe { self.alloc(Layout::from_size_align_unchecked(total, align)) }
    }

    /// [`Backend::alloc_small`], zeroed. The default calls `alloc_zeroed`.
    ///
    /// # Safety
    /// As for [`Backend::alloc_small`].
    #[inline(always)]
    unsafe fn alloc_small_zeroed(&self, total: usize, align: usize) -> *mut u8 {
        // SAFETY: the caller passes a valid, non-zero layout.
        unsafe { self.alloc_zeroed(Layout::from_size_align_unchecked(total, align)) }
    }

    /// Frees a block from [`Backend::alloc_small`] (or its zeroed form) with
    /// the same `total` and `align`. The default calls `dealloc`.
    ///
    /// # Safety
    /// `ptr` came from `alloc_small` or `alloc_small_zeroed` of this
    /// allocator with this `total` and `align`, and is freed once.
    #[inline(always)]
    unsafe fn dealloc_small(&self, ptr: *mut u8, total: usize, align: usize) {
        // SAFETY: the caller's contract: the block's own layout.
        unsafe { self.dealloc(ptr, Layout::from_size_align_unchecked(total, align)) }
    }

    /// Statistics to put into snapshots. Called outside the allocation path,
    /// in the tool's own allocation scope.
    #[must_use]
    fn stats() -> Option<AllocatorStats>
    where
        Self: Sized,
    {
        None
    }
}

impl Backend for System {}

/// jemalloc's size class for a request of `size` bytes at the default
/// alignment, below 16 KiB, for jemalloc 5 on a 64-bit target with 16-byte
/// quanta and 4 KiB pages: 8, then multiples of 16 up to 128, then four
/// classes per doubling. The `size_classes_match_nallocx` test checks it
/// against jemalloc itself; an error would cost memory, not correctness.
#[cfg(any(feature = "jemalloc", test))]
#[inline(always)]
pub(crate) const fn jemalloc_size_class(size: usize) -> usize {
    if size <= 8 {
        8
    } else if size <= 128 {
        (size + 15) & !15
    } else {
        let lg = usize::BITS - 1 - (size - 1).leading_zeros();
        let delta = 1usize << (lg - 2);
        (size + delta - 1) & !(delta - 1)
    }
}

#[cfg(feature = "jemalloc")]
impl Backend for Jemalloc {
    #[inline(always)]
    fn size_class(&self, size: usize) -> usize {
        if size < crate::tag::LARGE {
            jemalloc_size_class(size)
        } else {
            size
        }
    }

    // jemalloc's `malloc` returns blocks aligned to 8 at least (16 from 16
    // bytes on) and `sdallocx` with no flags frees them: at `align <= 8`
    // the wrapper calls them directly, without tikv-jemallocator's choice
    // between `malloc` and `mallocx` on every call.
    #[inline(always)]
    unsafe fn alloc_small(&self, total: usize, align: usize) -> *mut u8 {
        if align <= 8 {
            // SAFETY: `total` is non-zero (the caller's contract).
            unsafe { crate::sys::je_malloc(total) }
        } else {
            // SAFETY: the caller passes a valid, non-zero layout.
            unsafe { self.alloc(Layout::from_size_align_unchecked(total, align)) }
        }
    }

    #[inline(always)]
    unsafe fn alloc_small_zeroed(&self, total: usize, align: usize) -> *mut u8 {
        if align <= 8 {
            // SAFETY: as in `alloc_small`.
            unsafe { crate::sys::je_calloc(total) }
        } else {
            // SAFETY: the caller passes a valid, non-zero layout.
            unsafe { self.alloc_zeroed(Layout::from_size_align_unchecked(total, align)) }
        }
    }

    #[inline(always)]
    unsafe fn dealloc_small(&self, ptr: *mut u8, total: usize, align: usize) {
        if align <= 8 {
            // SAFETY: `ptr` came from `malloc`/`calloc` of `total` bytes
            // (`alloc_small` at the same `align`), so `total` is in its size
            // class and no flags are needed.
            unsafe { crate::sys::je_sdallocx(ptr, total) }
        } else {
            // SAFETY: the caller's contract: the block's own layout.
            unsafe { self.dealloc(ptr, Layout::from_size_align_unchecked(total, align)) }
        }
    }

    #[cfg(feature = "jemalloc-stats")]
    fn stats() -> Option<AllocatorStats> {
        use tikv_jemalloc_ctl::{epoch, stats};
        // jemalloc's `epoch` mallctl refreshes its statistics; it has nothing
        // to do with this crate's epochs.
        epoch::advance().ok()?;
        Some(AllocatorStats {
            name: "jemalloc".to_string(),
            allocated: stats::allocated::read().ok()? as u64,
            resident: stats::resident::read().ok()? as u64,
            retained: stats::retained::read().ok()? as u64,
        })
    }
}

/// Reads the inner allocator's statistics, if it has any.
type StatsReader = fn() -> Option<AllocatorStats>;

/// The statistics reader of the backend that `EpochAlloc` wraps: null
/// until [`register_stats`] sets it, once.
static STATS: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Registers `A`'s statistics reader for snapshots ([`stats`]). The first
/// registration in the process sets it, at the first thread that gets a
/// slot of its own (`alloc`'s `register`); later calls find it set and
/// leave it: one load, no allocation, no lock.
#[inline]
pub(crate) fn register_stats<A: Backend>() {
    if STATS.load(Relaxed).is_null() {
        let reader: StatsReader = A::stats;
        let _ = STATS.compare_exchange(core::ptr::null_mut(), reader as *mut (), Relaxed, Relaxed);
    }
}

/// The wrapped backend's statistics: `None` from a backend without any,
/// or before any thread registered.
pub(crate) fn stats() -> Option<AllocatorStats> {
    let p = STATS.load(Relaxed);
    if p.is_null() {
        return None;
    }
    // SAFETY: the only non-null values stored are `StatsReader` function
    // pointers (see `register_stats`), and fn pointers round-trip through
    // data pointers on every platform Rust supports with std.
    let reader = unsafe { core::mem::transmute::<*mut (), StatsReader>(p) };
    reader()
}

#[cfg(all(test, feature = "jemalloc"))]
mod tests {
    use super::*;

    #[test]
    fn size_classes_match_nallocx() {
        // Only classes below 16 KiB are ever asked for (larger blocks keep
        // their tag in the page table): the backend's answer must be
        // jemalloc's own.
        for size in 1..crate::tag::LARGE {
            let real = crate::sys::je_size_class(size);
            assert_eq!(Jemalloc.size_class(size), real, "size {size}");
        }
    }
}
