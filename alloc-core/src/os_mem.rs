//! Zeroed memory for the crate's own tables, straight from the operating
//! system: never from this crate's allocator (no recursion), never from a
//! user-space lock. Pages are resident only once written.
//!
//! Under Miri, which has no `mmap`, the memory comes from `System` instead.

use core::ptr::null_mut;
#[cfg(miri)]
use {
    core::alloc::{GlobalAlloc, Layout},
    std::alloc::System,
};

/// `bytes` (non-zero) of zeroed, page-aligned memory, or null if the system
/// refused.
#[cfg(not(miri))]
pub(crate) fn map_zeroed(bytes: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no
    // preconditions; the result is checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        null_mut()
    } else {
        p.cast()
    }
}

/// Returns memory from [`map_zeroed`].
///
/// # Safety
/// `p` came from `map_zeroed(bytes)` and is not used afterwards.
#[cfg(not(miri))]
pub(crate) unsafe fn unmap(p: *mut u8, bytes: usize) {
    // SAFETY: the caller passes a mapping of exactly this length.
    unsafe { libc::munmap(p.cast(), bytes) };
}

#[cfg(miri)]
fn layout(bytes: usize) -> Option<Layout> {
    Layout::from_size_align(bytes, 4096).ok()
}

/// `bytes` (non-zero) of zeroed, page-aligned memory, or null.
#[cfg(miri)]
pub(crate) fn map_zeroed(bytes: usize) -> *mut u8 {
    match layout(bytes) {
        // SAFETY: a non-zero size; System is not this crate's allocator.
        Some(l) => unsafe { System.alloc_zeroed(l) },
        None => null_mut(),
    }
}

/// Returns memory from [`map_zeroed`].
///
/// # Safety
/// `p` came from `map_zeroed(bytes)` and is not used afterwards.
#[cfg(miri)]
pub(crate) unsafe fn unmap(p: *mut u8, bytes: usize) {
    if let Some(l) = layout(bytes) {
        // SAFETY: `p` came from System with this layout.
        unsafe { System.dealloc(p, l) };
    }
}
