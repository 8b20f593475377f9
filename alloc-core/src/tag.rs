//! Where a block's birth-epoch tag lives, decided from its `Layout` alone.
//!
//! The tag is a `u32` (the birth epoch). It must be found again at `dealloc`
//! and `realloc` from nothing but the pointer and the layout, and it should
//! cost no memory:
//!
//! - **Trailer right after the data.** A small block (under 4 KiB, at any
//!   alignment) is requested as its size rounded up to 4, plus 4, and the tag
//!   goes into those last 4 bytes, next to the data the program last wrote.
//!   Most sizes are smaller than their size class (a 100-byte request gets a
//!   112-byte block from jemalloc), so the request lands in the same class:
//!   no extra memory, and no size-class lookup on the allocation path. Sizes
//!   that fill their class exactly (or nearly) take the next class.
//! - **Trailer in the slack, for 4-16 KiB.** Blocks of 4 KiB up to 16 KiB
//!   whose class has 4 bytes of slack keep the tag in the class's last 4 bytes.
//! - **Page table.** Blocks of 4096 bytes and more whose class has no slack
//!   (a 4 KiB buffer, page-multiple sizes) and every block of 16 KiB and more
//!   keep their tag in [`crate::page_table`], keyed by address: a block that
//!   size cannot move into the next class (+25% for 4096 -> 5120), and a large
//!   block's last page is not touched just to hold a tag.

use crate::page_table;

/// Bytes a trailer tag takes.
pub(crate) const TAG: usize = 4;
/// Blocks at least this large may keep their tag in the page table.
pub(crate) const SIDE_MIN: usize = 4096;
/// Blocks at least this large always keep their tag in the page table.
pub(crate) const LARGE: usize = 16384;
/// The alignment jemalloc (and every mainstream malloc) gives by default.
const MIN_ALIGN: usize = 16;

/// Where the tag of a block is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Place {
    /// In the last `TAG` bytes of the `total` bytes requested from the inner allocator.
    Trailer,
    /// In the page table, keyed by the block's address.
    Side,
}

/// The size to request from the inner allocator for a user block of `size`
/// bytes at `align`, and where its tag lives. `class` is the inner
/// allocator's size class for a default-aligned request.
///
/// The result is a valid layout size at `align` whenever `(size, align)` is
/// a valid, non-zero `Layout`: a small block grows to at most 4100 bytes,
/// and a non-zero size at an alignment above 2^62 is not a valid `Layout`,
/// so rounding 4100 up to `align` stays within `isize::MAX`; larger blocks
/// keep their size or take their (default-aligned) size class below 16 KiB.
#[inline(always)]
pub(crate) fn place(
    size: usize,
    align: usize,
    class: impl FnOnce(usize) -> usize,
) -> (usize, Place) {
    if is_small(size) {
        return (small_total(size), Place::Trailer);
    }
    place_other(size, align, class)
}

/// The common case: a block under 4 KiB, whose tag is a trailer at
/// `small_total - TAG`. Alignment does not matter: the inner allocator
/// aligns the block, and the trailer's offset depends on the size alone,
/// so the allocation path tests one number (the backend's `alloc_small`
/// sees the alignment and picks its own entry point).
#[inline(always)]
pub(crate) fn is_small(size: usize) -> bool {
    size < SIDE_MIN
}

/// The size to request for a small block: its size rounded up to 4, plus
/// the tag. Size classes are multiples of 8, so this lands in the block's own
/// class exactly when that class has 4 bytes to spare.
#[inline(always)]
pub(crate) const fn small_total(size: usize) -> usize {
    ((size + 3) & !3) + TAG
}

/// `place` for blocks of 4 KiB and more.
#[inline]
fn place_other(size: usize, align: usize, class: impl FnOnce(usize) -> usize) -> (usize, Place) {
    if size < LARGE && align <= MIN_ALIGN {
        let c = class(size);
        if c >= size + TAG && c < LARGE {
            return (c, Place::Trailer);
        }
    }
    (size, Place::Side)
}

/// Writes the tag of a block just allocated (or reallocated) at `ptr`.
///
/// # Safety
/// `ptr` points to a live block of at least `total` bytes from the inner
/// allocator, obtained for a request that `place` mapped to `(total, at)`.
#[inline(always)]
pub(crate) unsafe fn write(ptr: *mut u8, total: usize, at: Place, tag: u32) {
    match at {
        Place::Trailer => {
            // SAFETY: `total >= TAG` for a trailer placement, and the block
            // holds `total` bytes, so the 4 bytes at `total - TAG` are inside
            // it and past the user's `size` bytes. The write is unaligned.
            unsafe { ptr.add(total - TAG).cast::<u32>().write_unaligned(tag) };
        }
        Place::Side => page_table::set(ptr.addr(), tag),
    }
}

/// Reads the tag of a live block.
///
/// # Safety
/// As for [`write()`], and the tag was written when the block was allocated.
#[inline(always)]
pub(crate) unsafe fn read(ptr: *const u8, total: usize, at: Place) -> u32 {
    match at {
        // SAFETY: as in `write`; the 4 bytes were written by `write`.
        Place::Trailer => unsafe { ptr.add(total - TAG).cast::<u32>().read_unaligned() },
        Place::Side => page_table::get(ptr.addr()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jemalloc_like(size: usize) -> usize {
        crate::backend::jemalloc_size_class(size)
    }

    #[test]
    fn small_tags_follow_the_data_rounded_to_four() {
        assert_eq!(place(100, 8, jemalloc_like), (104, Place::Trailer));
        assert_eq!(place(1, 1, jemalloc_like), (8, Place::Trailer));
        assert_eq!(place(62, 8, jemalloc_like), (68, Place::Trailer));
        assert_eq!(place(4095, 16, jemalloc_like), (4100, Place::Trailer));
        assert_eq!(place(5000, 8, jemalloc_like), (5120, Place::Trailer));
    }

    #[test]
    fn a_small_tag_changes_the_class_only_without_slack() {
        for size in 1..SIDE_MIN {
            let (total, _) = place(size, 8, jemalloc_like);
            assert!(
                total - TAG >= size,
                "size {size}: the tag overlaps the data"
            );
            let (own, got) = (jemalloc_like(size), jemalloc_like(total));
            if own >= size + TAG {
                assert_eq!(got, own, "size {size} has slack but moved class");
            } else {
                assert_eq!(got, jemalloc_like(size + TAG), "size {size}");
            }
        }
    }

    #[test]
    fn page_sized_and_large_blocks_use_the_page_table() {
        assert_eq!(place(4096, 16, jemalloc_like), (4096, Place::Side));
        assert_eq!(place(8192, 16, jemalloc_like), (8192, Place::Side));
        assert_eq!(place(16384, 16, jemalloc_like), (16384, Place::Side));
        assert_eq!(place(100_000, 16, jemalloc_like), (100_000, Place::Side));
        assert_eq!(place(4096, 4096, jemalloc_like), (4096, Place::Side));
    }

    #[test]
    fn over_aligned_small_blocks_grow_by_a_tag() {
        assert_eq!(place(64, 64, jemalloc_like), (68, Place::Trailer));
        assert_eq!(place(100, 32, jemalloc_like), (104, Place::Trailer));
    }

    #[test]
    fn huge_sizes_and_alignments_stay_valid_layouts() {
        let max = isize::MAX as usize;
        assert_eq!(place(max, 1, jemalloc_like), (max, Place::Side));
        let align = 1usize << 62;
        let size = max - (align - 1);
        assert_eq!(place(size, align, jemalloc_like), (size, Place::Side));
        assert_eq!(place(10, align, |s| s), (16, Place::Trailer));
    }

    #[test]
    fn trailer_round_trips_unaligned() {
        let mut buf = [0u8; 19];
        // SAFETY: `buf` has 19 bytes; the tag goes to bytes 15..19.
        unsafe {
            write(buf.as_mut_ptr(), 19, Place::Trailer, 0xdead_beef);
            assert_eq!(read(buf.as_ptr(), 19, Place::Trailer), 0xdead_beef);
        }
        assert_eq!(&buf[..15], &[0u8; 15]);
    }
}
