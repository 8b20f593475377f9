//! Birth-epoch tags of page-sized and large blocks, keyed by address.
//!
//! Two blocks of at least 4096 bytes that are both live never start in the
//! same 4 KiB page (the later one starts at least 4096 bytes after the
//! earlier), so `address >> 12` identifies such a block. The table is a
//! two-level radix tree over 48-bit addresses: a root of 2^18 leaf pointers
//! (2 MiB of `.bss`, touched only where used) and leaves of 2^18 `u32` tags
//! (1 MiB each, one per GiB of address space in use, mapped with `mmap` the
//! first time a block lands in that GiB; the kernel provides zero pages
//! lazily, so a leaf costs resident memory only where tags are written).
//!
//! Setting and reading a tag are a plain store and a plain load. A stale
//! entry is never read: every block that uses the table writes its entry when
//! it is allocated, before any free can read it.
//!
//! If a leaf cannot be allocated (the system allocator failed), or an address
//! lies above 2^48, the tag goes to one shared fallback leaf: totals stay
//! exact but two such blocks can share an entry and swap birth epochs.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};

const PAGE_BITS: u32 = 12;
#[cfg(not(miri))]
const LEAF_BITS: u32 = 18;
#[cfg(not(miri))]
const ROOT_BITS: u32 = 18;
// Miri is slow with megabyte statics: a root of 4,096 leaves of 16 KiB
// covers 2^36 bytes (64 GiB), where Miri's addresses lie (they start low and
// grow with what the tests allocate), so no block uses the fallback leaf,
// whose shared entries would let two blocks swap birth epochs and make the
// per-epoch checks of `alloc`'s tests fail now and then.
#[cfg(miri)]
const LEAF_BITS: u32 = 12;
#[cfg(miri)]
const ROOT_BITS: u32 = 12;

const LEAF_LEN: usize = 1 << LEAF_BITS;
const ROOT_LEN: usize = 1 << ROOT_BITS;

#[repr(transparent)]
struct Leaf([AtomicU32; LEAF_LEN]);

static ROOT: [AtomicPtr<Leaf>; ROOT_LEN] = [const { AtomicPtr::new(null_mut()) }; ROOT_LEN];
static FALLBACK: Leaf = Leaf([const { AtomicU32::new(0) }; LEAF_LEN]);
static LEAVES: AtomicUsize = AtomicUsize::new(0);
/// The first leaves mapped, in order, so that [`leaf_resident_bytes`] can
/// ask which of their pages are resident without scanning the root.
const LISTED: usize = 64;
static LISTED_LEAVES: [AtomicPtr<Leaf>; LISTED] = [const { AtomicPtr::new(null_mut()) }; LISTED];

#[inline(always)]
fn split(addr: usize) -> (usize, usize) {
    let page = addr >> PAGE_BITS;
    (page >> LEAF_BITS, page & (LEAF_LEN - 1))
}

/// Whether `addr` lies beyond the root's reach, where tags share the
/// fallback leaf.
#[cfg(test)]
pub(crate) fn beyond_root(addr: usize) -> bool {
    split(addr).0 >= ROOT_LEN
}

/// The leaf for root index `r`, allocating it if `create`.
#[inline(always)]
fn leaf(r: usize, create: bool) -> &'static Leaf {
    let Some(cell) = ROOT.get(r) else {
        return &FALLBACK;
    };
    let p = cell.load(Acquire);
    if !p.is_null() {
        // SAFETY: non-null root entries point to leaves that are never freed
        // (see `new_leaf`), so a shared 'static reference is valid.
        return unsafe { &*p };
    }
    if create {
        new_leaf(cell)
    } else {
        &FALLBACK
    }
}

/// Zeroed memory for a leaf (see [`crate::os_mem`]).
fn map_leaf() -> *mut Leaf {
    crate::os_mem::map_zeroed(size_of::<Leaf>()).cast()
}

fn unmap_leaf(p: *mut Leaf) {
    // SAFETY: `p` was mapped by `map_leaf` with this length and never shared.
    unsafe { crate::os_mem::unmap(p.cast(), size_of::<Leaf>()) };
}

#[cold]
fn new_leaf(cell: &'static AtomicPtr<Leaf>) -> &'static Leaf {
    let fresh = map_leaf();
    if fresh.is_null() {
        return &FALLBACK;
    }
    match cell.compare_exchange(null_mut(), fresh, AcqRel, Acquire) {
        Ok(_) => {
            let n = LEAVES.fetch_add(1, Relaxed);
            if let Some(listed) = LISTED_LEAVES.get(n) {
                listed.store(fresh, Release);
            }
            // SAFETY: `fresh` is zeroed, page-aligned memory the size of a
            // Leaf (all atomics, valid when zero), never freed from now on.
            unsafe { &*fresh }
        }
        Err(winner) => {
            unmap_leaf(fresh);
            // SAFETY: as in `leaf`: a published leaf lives forever.
            unsafe { &*winner }
        }
    }
}

/// Stores the tag of the block at `addr` (at least 4096 bytes). Never fails
/// (see the fallback in the module docs).
#[inline(always)]
pub(crate) fn set(addr: usize, tag: u32) {
    let (r, i) = split(addr);
    leaf(r, true).0[i].store(tag, Relaxed);
}

/// The tag of the live block at `addr`.
#[inline(always)]
pub(crate) fn get(addr: usize) -> u32 {
    let (r, i) = split(addr);
    leaf(r, false).0[i].load(Relaxed)
}

/// Resident bytes of the leaves mapped so far (the root and the fallback
/// are static): the pages where tags were written, usually a few per leaf.
/// A leaf whose residency cannot be asked (past the first [`LISTED`], or
/// under Miri) counts whole.
pub(crate) fn leaf_resident_bytes() -> usize {
    let leaves = LEAVES.load(Relaxed);
    let listed = LISTED_LEAVES[..leaves.min(LISTED)]
        .iter()
        .map(|l| resident(l.load(Acquire)))
        .sum::<usize>();
    listed + leaves.saturating_sub(LISTED) * size_of::<Leaf>()
}

/// Resident bytes of one leaf (all of it when that cannot be asked).
fn resident(leaf: *const Leaf) -> usize {
    #[cfg(not(miri))]
    if !leaf.is_null() {
        if let Some(bytes) = crate::sys::resident_in(leaf.cast(), size_of::<Leaf>()) {
            return bytes;
        }
    }
    let _ = leaf;
    size_of::<Leaf>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_pages_keep_their_own_tags() {
        let base = 0x7f00_0000_0000usize & ((1usize << 47) - 1);
        for k in 0..64usize {
            set(base + k * 4096, k as u32 + 1);
        }
        for k in 0..64usize {
            assert_eq!(get(base + k * 4096 + 17), k as u32 + 1);
        }
    }

    #[test]
    fn addresses_beyond_the_table_use_the_fallback_without_panicking() {
        let high = usize::MAX - 4095;
        set(high, 42);
        assert_eq!(get(high), 42);
    }
}
