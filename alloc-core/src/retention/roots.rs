//! The scan's roots: the writable segments of the loaded modules (statics),
//! each registered thread's stack and its static thread-local storage.

use super::graph::Blocks;
use super::reader::Reader;
use crate::modules::ModuleRoots;
use crate::registry::ScanThread;
use alloc_snapshot::Holder;

/// Where a root was found, before the blocks are renumbered.
#[derive(Clone, Copy)]
pub(super) enum Root {
    Static { module: u32, offset: u64 },
    Thread { thread: u32, tls: bool },
}

/// The holder a root names.
pub(super) fn root_holder(r: Root) -> Holder {
    match r {
        Root::Static { module, offset } => Holder::Static {
            module,
            offset,
            symbol: None,
        },
        Root::Thread { thread, tls } => Holder::Thread { thread, tls },
    }
}

/// What the roots point to.
pub(super) struct RootWords {
    /// Per sampled block, the root that points into it (a static beats a
    /// thread).
    pub(super) root: Vec<Option<Root>>,
    /// Statics' pointers into heap memory outside the sampled blocks
    /// (value, root), for the heap pass.
    pub(super) ptrs: Vec<(usize, Root)>,
}

/// Reads the roots: every loaded module's writable segments, then each
/// thread's stack (the scanning thread's from `here`, an address in the
/// caller's frame, up) and static thread-local storage.
pub(super) fn read(
    rd: &mut Reader,
    blocks: &Blocks<'_>,
    heap: &[(usize, usize)],
    roots: &ModuleRoots,
    threads: &[ScanThread],
    here: usize,
) -> RootWords {
    #[cfg(all(target_os = "linux", not(miri)))]
    let me = crate::sys::thread_id();
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let me = 0u32;
    let mut root: Vec<Option<Root>> = vec![None; blocks.r.len()];
    let mut ptrs: Vec<(usize, Root)> = Vec::new();
    let mut roots_of = Roots {
        root: &mut root,
        ptrs: &mut ptrs,
        blocks,
        heap,
    };
    for &(module, base, a, b) in &roots.data {
        rd.words(a, b, |at, w| {
            let r = Root::Static {
                module,
                offset: (at as u64).wrapping_sub(base),
            };
            roots_of.hit(w, r, true);
        });
    }
    for (ti, t) in threads.iter().enumerate() {
        let thread = ti as u32;
        let (mut lo, hi) = t.stack;
        if t.tid == me && lo <= here && here < hi {
            lo = here; // below is the scan's own frames
        }
        if lo < hi {
            let r = Root::Thread { thread, tls: false };
            rd.words(lo, hi, |_, w| roots_of.hit(w, r, false));
        }
        if t.tp != 0 {
            for &(off, len) in &roots.tls {
                let a = (t.tp as isize).wrapping_add(off) as usize;
                let r = Root::Thread { thread, tls: true };
                rd.words(a, a.saturating_add(len), |_, w| roots_of.hit(w, r, false));
            }
        }
    }
    RootWords { root, ptrs }
}

/// Where root words go: a pointer into a sampled block marks it held (a
/// static beats a thread); a static's pointer into other heap memory is
/// kept for the heap pass (at most [`MAX_ROOT_PTRS`]). Threads' pointers
/// are not: a stack holds pointers into every part of the heap (live and
/// dead frames), and thread-local storage (the allocator's own among it)
/// points into busy parts of it, so that one near a word says little about
/// what holds that word's block (with them, 1 block in 6 of the demo's
/// connection/handler cycle is attributed to the main thread's
/// thread-local storage).
struct Roots<'r, 'b> {
    root: &'r mut [Option<Root>],
    ptrs: &'r mut Vec<(usize, Root)>,
    blocks: &'r Blocks<'b>,
    heap: &'r [(usize, usize)],
}

/// At most this many root pointers into unsampled heap memory are kept
/// (16 bytes each).
const MAX_ROOT_PTRS: usize = 1 << 20;

impl Roots<'_, '_> {
    fn hit(&mut self, w: usize, r: Root, beats_thread: bool) {
        if let Some(i) = self.blocks.find(w) {
            let slot = &mut self.root[i];
            if slot.is_none() || (beats_thread && matches!(slot, Some(Root::Thread { .. }))) {
                *slot = Some(r);
            }
        } else if self.ptrs.len() < MAX_ROOT_PTRS
            && matches!(r, Root::Static { .. })
            && in_ranges(self.heap, w)
        {
            self.ptrs.push((w, r));
        }
    }
}

/// Whether `w` lies in one of `ranges` (sorted, disjoint).
fn in_ranges(ranges: &[(usize, usize)], w: usize) -> bool {
    let i = ranges.partition_point(|&(a, _)| a <= w);
    i > 0 && w < ranges[i - 1].1
}
