//! Zeroed memory for the crate's own tables, straight from the operating
//! system: never from this crate's allocator (no recursion), never from a
//! user-space lock. Pages are resident only once written.
//!
//! Under Miri, which has no `mmap`, the memory comes from `System` instead.

#[cfg(miri)]
use {
    core::alloc::{GlobalAlloc, Layout},
    core::ptr::null_mut,
    std::alloc::System,
};

/// `bytes` (non-zero) of zeroed, page-aligned memory, or null if the system
/// refused.
#[cfg(not(miri))]
pub(crate) fn map_zeroed(bytes: usize) -> *mut u8 {
    crate::sys::map_anon(bytes)
}

/// Returns memory from [`map_zeroed`].
///
/// # Safety
/// `p` came from `map_zeroed(bytes)` and is not used afterwards.
#[cfg(not(miri))]
pub(crate) unsafe fn unmap(p: *mut u8, bytes: usize) {
    // SAFETY: the caller's contract: a mapping of exactly this length.
    unsafe { crate::sys::unmap(p, bytes) };
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
