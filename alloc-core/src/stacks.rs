//! Raw call stacks of sampled blocks: capture and a bounded, deduplicated
//! table.
//!
//! **Capture** keeps return addresses only, at most [`MAX_DEPTH`] of them,
//! in a buffer on the caller's stack, innermost first; it takes none of
//! this crate's locks and allocates nothing through this allocator. Two
//! ways, chosen per capture:
//!
//! - **The frame-pointer chain** (about 50 ns for 20 frames), when the
//!   build has frame pointers (`-C force-frame-pointers=yes` in the
//!   rustflags, seen by `build.rs`; the standard library has them since
//!   2024). Every frame is checked before it is read: its address lies
//!   in the live part of this thread's stack (from the capture's own
//!   frame up to the stack's top; the stack's bounds, [`stack_bounds`], are
//!   found once per thread and kept in a `const`-initialised thread-local,
//!   and a capture running on another stack is not walked), is 8-aligned,
//!   and is above the previous frame. So every read is of mapped memory whatever
//!   the chain holds: a broken chain (C code without frame pointers, a
//!   corrupted frame) ends the walk, it cannot fault. A walk that ends
//!   early with fewer than [`MIN_FP_FRAMES`] frames is not trusted, and
//!   the capture falls back to the unwinder.
//! - **The system unwinder** (`_Unwind_Backtrace`, through
//!   `backtrace::trace_unsynchronized`; about 3 µs), in builds without
//!   frame pointers and as the fallback. On glibc 2.35 and later with GCC
//!   12's unwinder, finding a frame's unwind information goes through
//!   `_dl_find_object`, which takes no lock, so a sampled allocation cannot
//!   deadlock against a thread that holds the dynamic loader's lock while it
//!   allocates (the deadlock other tools hit with `dl_iterate_phdr`).
//!
//! Nothing is symbolised here.
//!
//! **The table** holds at most [`MAX_STACKS`] distinct stacks in `.bss`
//! (about 2.1 MiB of address space), in the order they were first seen:
//! stack `id` is entry `id - 1`, so the entries in use are one run at the
//! start and only their pages become resident (272 bytes a stack, where
//! entries placed by hash had touched a page of their own each). An index
//! of `2 * MAX_STACKS` ids (64 KiB), open addressing by a hash of the
//! frames, finds them; it is probed (at most [`MAX_PROBE`] slots) without a
//! lock: an entry is written once before its id is published in the index
//! and never changes, so only adding a stack takes the table's spin lock
//! (held for that probe and copy, never while unwinding).
//! A stack that finds no place (the table full, or no empty index slot
//! within the probe) goes to the overflow stack, id 0, and is counted in
//! [`OVERFLOW`]. Entries are never removed, so an id stays valid for the
//! life of the process.

use crate::lock::lock;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use spin::mutex::SpinMutex;

/// Frames captured per stack at most (innermost first, the tool's own
/// frames included; symbolisation trims those).
pub(crate) const MAX_DEPTH: usize = 32;
/// Distinct stacks the table holds at most.
#[cfg(not(miri))]
pub(crate) const MAX_STACKS: usize = 8192;
/// Distinct stacks the table holds at most (Miri is slow with large statics).
#[cfg(miri)]
pub(crate) const MAX_STACKS: usize = 64;
/// Index slots probed before a stack is sent to the overflow stack.
const MAX_PROBE: usize = 64;
/// Slots of the index (a power of two): at most half of them hold an id.
const INDEX_LEN: usize = 2 * MAX_STACKS;

struct Entry {
    /// Hash of the frames; 0 while the entry is empty. Written once, with
    /// `len` and `frames`, under [`FILL`], before the entry's id is
    /// published in [`INDEX`] (with `Release`): an entry whose id a reader
    /// found there (with `Acquire`) is complete and never changes again.
    hash: AtomicU64,
    len: AtomicU32,
    frames: [AtomicUsize; MAX_DEPTH],
}

impl Entry {
    /// Whether this filled entry holds exactly `frames`.
    fn holds(&self, frames: &[usize]) -> bool {
        self.len.load(Relaxed) as usize == frames.len()
            && frames
                .iter()
                .zip(&self.frames)
                .all(|(&f, e)| e.load(Relaxed) == f)
    }
}

/// The entries, stack `id` at `id - 1`; all zero (empty) at start: in
/// `.bss`.
static TABLE: [Entry; MAX_STACKS] = [const {
    Entry {
        hash: AtomicU64::new(0),
        len: AtomicU32::new(0),
        frames: [const { AtomicUsize::new(0) }; MAX_DEPTH],
    }
}; MAX_STACKS];

/// Ids by a hash of their frames (open addressing, linear probing); 0
/// marks an empty slot.
static INDEX: [AtomicU32; INDEX_LEN] = [const { AtomicU32::new(0) }; INDEX_LEN];

/// Held to fill an entry (never to look one up); the number of entries
/// filled, which is also the next entry to fill.
static FILL: SpinMutex<usize> = SpinMutex::new(0);

/// Samples whose stack went to the overflow stack.
pub(crate) static OVERFLOW: AtomicU64 = AtomicU64::new(0);

/// The frames of one capture, innermost first, in a buffer on the
/// capturing function's stack that is never zeroed, compared as they are
/// written with the frames of a stack seen before (`like`, the thread's
/// [`LastStack`]): a site sampled again is known when the walk ends, with
/// no second pass over the frames.
pub(crate) struct Capture<'a> {
    buf: [MaybeUninit<usize>; MAX_DEPTH],
    n: usize,
    like: &'a [AtomicUsize; MAX_DEPTH],
    /// The OR of each frame XOR its counterpart in `like`: 0 while every
    /// frame so far matches.
    diff: usize,
}

impl<'a> Capture<'a> {
    /// An empty capture that will compare its frames with `like`.
    pub(crate) fn new(like: &'a [AtomicUsize; MAX_DEPTH]) -> Self {
        Capture {
            buf: [const { MaybeUninit::uninit() }; MAX_DEPTH],
            n: 0,
            like,
            diff: 0,
        }
    }

    /// Appends a return address; false once the buffer is full.
    #[inline(always)]
    fn push(&mut self, ret: usize) -> bool {
        let Some(slot) = self.buf.get_mut(self.n) else {
            return false;
        };
        slot.write(ret);
        self.diff |= ret ^ self.like[self.n].load(Relaxed);
        self.n += 1;
        self.n < MAX_DEPTH
    }

    /// Forgets the frames (a walk that is not trusted).
    fn clear(&mut self) {
        self.n = 0;
        self.diff = 0;
    }

    /// The frames captured.
    pub(crate) fn frames(&self) -> &[usize] {
        // SAFETY: `push` initialised `buf[..n]`, and `n <= MAX_DEPTH`;
        // `MaybeUninit<usize>` has the layout of `usize`.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<usize>(), self.n) }
    }

    /// Whether the frames are exactly the first `len` of `like`.
    fn is_like(&self, len: usize) -> bool {
        self.diff == 0 && self.n == len
    }
}

/// Captures the current call stack into `cap` (which must be empty).
#[inline(never)]
pub(crate) fn capture(cap: &mut Capture<'_>) {
    #[cfg(all(fp_walk, not(miri)))]
    if let Some((fp, lo, hi)) = fp::chain() {
        // SAFETY: `chain` returns the live part of this thread's stack.
        return unsafe { capture_from(fp, lo, hi, cap) };
    }
    unwind(cap)
}

/// Walks the chain from `fp` inside `[lo, hi)` into `cap` and keeps it if
/// it is long enough ([`MIN_FP_FRAMES`]); else captures with the unwinder.
///
/// # Safety
///
/// As [`walk`]: every byte of `[lo, hi)` must be readable.
#[cfg_attr(not(all(fp_walk, not(miri))), allow(dead_code))]
unsafe fn capture_from(fp: usize, lo: usize, hi: usize, cap: &mut Capture<'_>) {
    // SAFETY: the caller's contract.
    let _clean = unsafe { walk(fp, lo, hi, cap) };
    // A clean end means a null link, but garbage can hold a zero too: only
    // the length says the chain was real.
    if cap.n < MIN_FP_FRAMES {
        cap.clear();
        unwind(cap)
    }
}

/// Whether [`capture`] walks frame pointers (else it always unwinds).
pub(crate) const FRAME_POINTERS: bool = cfg!(all(fp_walk, not(miri)));

/// Captures the current call stack with the system unwinder into `cap`.
#[inline(never)]
fn unwind(cap: &mut Capture<'_>) {
    #[cfg(not(miri))]
    {
        // `trace_unsynchronized` is unsafe only because it skips the crate's
        // global lock, which exists for Windows' non-reentrant dbghelp.
        // SAFETY: on Unix it is `_Unwind_Backtrace` (thread-safe, reentrant);
        // the closure only writes into `cap`, within bounds.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                let ip = frame.ip() as usize;
                // A null ip is the outermost frame of a thread.
                ip != 0 && cap.push(ip)
            });
        }
    }
    #[cfg(miri)]
    {
        // Miri cannot unwind through foreign code: every stack is empty.
        let _ = cap;
    }
}

/// A frame-pointer walk with fewer frames than this is not trusted: the
/// capture unwinds instead. Any real allocation's chain is longer (the
/// allocator's own slow-path frames and `__rust_alloc`, the user's code,
/// the thread's start), so a shorter one means a chain broken near the
/// allocator, by code built without frame pointers.
pub(crate) const MIN_FP_FRAMES: usize = 5;

/// Walks a frame-pointer chain from the frame at `fp`, reading only inside
/// `[lo, hi)`, into `cap`. Returns whether the chain ended cleanly (a null
/// frame pointer or return address: the outermost frame of a thread, or a
/// full buffer) rather than at a frame that failed a check.
///
/// Each frame record is two words, `[fp]` the caller's frame pointer and
/// `[fp + 8]` the return address (x86-64 and AArch64 alike). A record is
/// read only if `lo <= fp`, `fp + 16 <= hi` and `fp` is 8-aligned, and each
/// next record must lie strictly above the last one, so the walk ends in at
/// most `(hi - lo) / 16` steps whatever the memory holds.
///
/// # Safety
///
/// Every byte of `[lo, hi)` must be readable for the whole call (so `lo`
/// is not 0, and a null link fails `lo <= fp`).
#[cfg_attr(not(all(fp_walk, not(miri))), allow(dead_code))]
pub(crate) unsafe fn walk(mut fp: usize, mut lo: usize, hi: usize, cap: &mut Capture<'_>) -> bool {
    // In locals, not through `cap`: the buffer's stores cannot alias them.
    let (mut n, mut diff, like) = (cap.n, cap.diff, cap.like);
    let mut clean = true;
    while n < MAX_DEPTH {
        if fp < lo || !fp.is_multiple_of(8) || hi < 16 || fp > hi - 16 {
            // A null link (below any `lo`) is the clean end of a chain.
            clean = fp == 0;
            break;
        }
        // SAFETY: `[fp, fp + 16)` lies inside `[lo, hi)`, readable by the
        // caller's contract; `fp` is aligned for `usize`.
        let (next, ret) = unsafe {
            let p = core::ptr::with_exposed_provenance::<usize>(fp);
            (p.read_volatile(), p.add(1).read_volatile())
        };
        if ret == 0 {
            break;
        }
        cap.buf[n].write(ret);
        diff |= ret ^ like[n].load(Relaxed);
        n += 1;
        // A next record at or below this one fails `lo <= fp` at the top
        // of the loop (a null one ends the walk cleanly there).
        lo = fp + 16;
        fp = next;
    }
    (cap.n, cap.diff) = (n, diff);
    clean
}

/// Frame-pointer capture: the thread's stack bounds and the walk.
#[cfg(all(fp_walk, not(miri)))]
mod fp {
    use core::cell::Cell;

    thread_local! {
        // This thread's stack, `[bottom, top)`: (0, 0) until the first
        // capture, (1, 1) if it could not be found. A `const` initialiser
        // and no destructor: a plain thread-local access, valid while the
        // thread runs its `thread_local!` destructors.
        static BOUNDS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// The frame-pointer register of the caller (inlined into
    /// [`super::capture`]: its own frame) and the live part of this thread's
    /// stack, from a local of the caller's frame to the stack's top; `None`
    /// when the bounds are unknown or the caller is not on this thread's
    /// stack (a signal stack, a coroutine's stack).
    #[inline(always)]
    pub(super) fn chain() -> Option<(usize, usize, usize)> {
        let fp: usize;
        // SAFETY: reads the frame-pointer register; no memory is touched.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        // SAFETY: as above, for AArch64's frame pointer.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        // The address of a local: inside the caller's frame, so below every
        // frame record of the chain and above the stack pointer.
        let here = core::ptr::addr_of!(fp).addr();
        let (bottom, top) = bounds(here)?;
        // `here` on this thread's stack makes `[here, top)` the live part
        // of it: mapped and readable. Anywhere else (another stack below or
        // above, with unmapped memory between) nothing is walked.
        (bottom <= here && here < top).then_some((fp, here, top))
    }

    /// This thread's stack bounds, found at the first call (`here` is a
    /// local of the caller); (1, 1) if they could not be found.
    #[inline(always)]
    pub(super) fn bounds(here: usize) -> Option<(usize, usize)> {
        BOUNDS
            .try_with(|b| match b.get() {
                (0, 0) => {
                    let v = super::stack_bounds(here).unwrap_or((1, 1));
                    b.set(v);
                    v
                }
                v => v,
            })
            .ok()
    }
}

/// The calling thread's stack, `[bottom, top)` (the bounds the
/// frame-pointer walk uses, found once per thread), for the retention
/// scan's roots; `None` where unknown (no frame-pointer walk on this
/// build, or not found).
pub(crate) fn this_thread_stack() -> Option<(usize, usize)> {
    #[cfg(all(fp_walk, not(miri)))]
    {
        let here = 0u8;
        fp::bounds(core::ptr::addr_of!(here).addr()).filter(|&(lo, hi)| lo < hi && hi > 1)
    }
    #[cfg(not(all(fp_walk, not(miri))))]
    {
        None
    }
}

/// The current thread's stack, `[bottom, top)`; `None` if it cannot be
/// found. Called once per thread, at its first frame-pointer capture
/// (`here` is a local of that capture), never with a lock of ours held.
///
/// The main thread's stack ends at glibc's `__libc_stack_end` (the stack
/// pointer at process start; every frame is below it) and reaches down at
/// most the stack size limit, recognised by `here` lying in that range.
/// This is the case where `pthread_getattr_np` would read
/// `/proc/self/maps` through `fopen` (glibc's `malloc` and stdio lock), so
/// it is avoided there. Other threads' stacks come from
/// `pthread_getattr_np`, which for a thread created by `pthread_create`
/// copies the stack block glibc recorded (taking only that thread's
/// descriptor lock, and allocating a CPU set with glibc's own `malloc`,
/// never this allocator). (Only a main thread whose first sample is taken
/// on another stack, a coroutine's, gets the `/proc` path: glibc's
/// `malloc` and `fopen`, still never this allocator.)
#[cfg(all(fp_walk, not(miri)))]
fn stack_bounds(here: usize) -> Option<(usize, usize)> {
    let main_end = crate::sys::main_stack_end();
    let limit = crate::sys::stack_size_limit().map_or(1 << 32, |l| l.min(1 << 32));
    if here < main_end && main_end - here <= limit {
        return Some((main_end.saturating_sub(limit), main_end));
    }
    crate::sys::thread_stack()
}

/// The table's hash of `frames`: a rotate and an exclusive or per frame
/// (one cycle each, where a multiply per frame made a chain of dependent
/// multiplies), then splitmix64's finaliser to spread the bits over the
/// index. Never 0 (the empty entry's mark).
fn hash(frames: &[usize]) -> u64 {
    let mut h = frames.len() as u64;
    for &f in frames {
        h = h.rotate_left(5) ^ f as u64;
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (h ^ (h >> 31)) | 1
}

/// Where the probe for `frames` (hash `h`) ended.
enum Probe {
    /// The stack with this id holds them.
    Found(u32),
    /// They are not in the table; this empty index slot is where their id
    /// goes.
    Empty(usize),
    /// Not in the table, and no empty index slot within [`MAX_PROBE`].
    Full,
}

/// Looks `frames` up without a lock: filled entries never change, and an
/// entry being filled meanwhile is not in the index until it is complete.
fn probe(h: u64, frames: &[usize]) -> Probe {
    let mut i = (h as usize) & (INDEX_LEN - 1);
    for _ in 0..MAX_PROBE {
        let id = INDEX[i].load(Acquire);
        if id == 0 {
            return Probe::Empty(i);
        }
        // Only `intern` publishes ids, of entries (`id - 1 < MAX_STACKS`):
        // `get` cannot miss, and keeps a panic off the allocation path.
        let Some(e) = TABLE.get(id as usize - 1) else {
            return Probe::Full;
        };
        if e.hash.load(Relaxed) == h && e.holds(frames) {
            return Probe::Found(id);
        }
        i = (i + 1) & (INDEX_LEN - 1);
    }
    Probe::Full
}

/// The id of `frames` in the table (inserting them if new), from 1 up; 0
/// when the table has no room for them. A stack already in the table is
/// found without a lock; a new one is added under [`FILL`].
pub(crate) fn intern(frames: &[usize]) -> u32 {
    let frames = &frames[..frames.len().min(MAX_DEPTH)];
    let h = hash(frames);
    let found = match probe(h, frames) {
        Probe::Empty(_) => {
            let mut filled = lock(&FILL);
            // Again under the lock: another thread may have added entries.
            match probe(h, frames) {
                Probe::Empty(i) if *filled < MAX_STACKS => {
                    let e = &TABLE[*filled];
                    for (&f, slot) in frames.iter().zip(&e.frames) {
                        slot.store(f, Relaxed);
                    }
                    e.len.store(frames.len() as u32, Relaxed);
                    e.hash.store(h, Relaxed);
                    *filled += 1;
                    // `filled <= MAX_STACKS`: the cast is exact.
                    let id = *filled as u32;
                    INDEX[i].store(id, Release);
                    Some(id)
                }
                Probe::Found(id) => Some(id),
                Probe::Empty(_) | Probe::Full => None,
            }
        }
        Probe::Found(id) => Some(id),
        Probe::Full => None,
    };
    found.unwrap_or_else(|| {
        OVERFLOW.fetch_add(1, Relaxed);
        0
    })
}

/// Stacks a thread samples repeat in patterns, kept in the thread's
/// counter slot ([`crate::slot::Slot`]) to guess the next one: an
/// allocation site in a loop samples the same stack again and again, and a
/// request's handler allocates at the same sites in the same order each
/// time. The guess is the stack that followed the last one the time before
/// (the last one itself, for a site in a loop); the walk compares its
/// frames with the guess's entry in the table (filled entries never
/// change) as it goes, so a right guess costs no hash, no probe and no
/// second pass over the frames. Written and read by the slot's owner only;
/// valid for whichever thread owns the slot next, since ids never change.
pub(crate) struct LastStack {
    /// The id of the last stack, 0 when there is none (the overflow stack
    /// never is one).
    id: AtomicU32,
    /// `next[id % NEXT]`: the stack that followed stack `id` last time (0
    /// for none; ids that share an index share a guess).
    next: [AtomicU32; NEXT],
}

/// Guesses kept per thread (a power of two): 256 bytes in each slot.
const NEXT: usize = 64;

impl LastStack {
    pub(crate) const fn new() -> Self {
        LastStack {
            id: AtomicU32::new(0),
            next: [const { AtomicU32::new(0) }; NEXT],
        }
    }

    /// Captures the current call stack and returns its id ([`intern`]),
    /// through this cache. Owner only.
    #[inline]
    pub(crate) fn capture(&self) -> u32 {
        self.through(|cap| capture(cap))
    }

    /// [`intern`], through this cache. Owner only.
    #[cfg(test)]
    fn intern(&self, frames: &[usize]) -> u32 {
        self.through(|cap| {
            frames.iter().take(MAX_DEPTH).all(|&f| cap.push(f));
        })
    }

    /// The id of the frames `fill` puts into a capture that compares them
    /// with the guess's.
    #[inline(always)]
    fn through(&self, fill: impl FnOnce(&mut Capture<'static>)) -> u32 {
        let last = self.id.load(Relaxed);
        let follows = &self.next[last as usize % NEXT];
        let guess = follows.load(Relaxed);
        // Any entry when there is no guess (`guess` 0 is never right).
        let entry = &TABLE[(guess as usize).wrapping_sub(1).min(MAX_STACKS - 1)];
        let mut cap = Capture::new(&entry.frames);
        fill(&mut cap);
        let id = if guess != 0 && cap.is_like(entry.len.load(Relaxed) as usize) {
            guess
        } else {
            let id = intern(cap.frames());
            follows.store(id, Relaxed);
            id
        };
        self.id.store(id, Relaxed);
        id
    }
}

/// Copies the frames of stack `id` into `out`; returns how many (0 for the
/// overflow stack or an unknown id).
pub(crate) fn frames(id: u32, out: &mut [usize; MAX_DEPTH]) -> usize {
    let Some(e) = (id as usize).checked_sub(1).and_then(|i| TABLE.get(i)) else {
        return 0;
    };
    if e.hash.load(Acquire) == 0 {
        return 0;
    }
    let n = e.len.load(Relaxed) as usize;
    for (o, f) in out.iter_mut().zip(&e.frames[..n]) {
        *o = f.load(Relaxed);
    }
    n
}

/// Stack `id` as snapshot data: its instruction pointers, not symbolised.
/// Allocates (call in the tool's scope).
pub(crate) fn unsymbolised(id: u32) -> alloc_snapshot::Stack {
    let mut buf = [0usize; MAX_DEPTH];
    let n = frames(id, &mut buf);
    alloc_snapshot::Stack {
        id,
        frames: buf[..n]
            .iter()
            .map(|&ip| alloc_snapshot::Frame {
                ip: ip as u64,
                function: None,
                file: None,
                line: None,
            })
            .collect(),
        user_frame: None,
    }
}

/// Distinct stacks in the table.
pub(crate) fn used() -> usize {
    *lock(&FILL)
}

/// Bytes one table entry takes.
pub(crate) const ENTRY_BYTES: usize = size_of::<Entry>();

/// Where the table and its index lie (`.bss`, resident only where written)
/// and their sizes, for [`crate::tool_memory`].
#[cfg_attr(miri, allow(dead_code))]
pub(crate) fn table_memory() -> [(*const u8, usize); 2] {
    [
        (core::ptr::addr_of!(TABLE).cast(), size_of_val(&TABLE)),
        (core::ptr::addr_of!(INDEX).cast(), size_of_val(&INDEX)),
    ]
}

/// Fork support: the table lock, taken before `fork()` and released in both
/// processes after it.
pub(crate) mod fork {
    use super::*;

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn lock_all() {
        core::mem::forget(crate::lock::spin(&FILL));
    }

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn unlock_all() {
        // SAFETY: `lock_all` took the lock in this thread (the forking
        // thread, the only thread of a fork child) and leaked the guard.
        unsafe { FILL.force_unlock() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_stacks_take_the_next_entries() {
        let before = used() as u32;
        let ids: Vec<u32> = (0..5usize)
            .map(|k| intern(&[0x7a00_0000 + k, 0x7b00_0000, 0x7c00_0000]))
            .collect();
        // Filled in order, one entry each: the entries in use are one run
        // at the start of the table (other tests may intern meanwhile).
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[0] > before && ids[4] as usize <= used(), "{ids:?}");
        let mut buf = [0usize; MAX_DEPTH];
        assert_eq!(frames(ids[3], &mut buf), 3);
        assert_eq!(buf[..3], [0x7a00_0003, 0x7b00_0000, 0x7c00_0000]);
    }

    #[test]
    fn the_last_stack_cache_gives_the_tables_ids() {
        let cache = LastStack::new();
        let a = [0x5100usize, 0x5200, 0x5300];
        let b = [0x5100usize, 0x5200, 0x5301];
        let ia = cache.intern(&a);
        assert_eq!(cache.intern(&a), ia, "a hit");
        let ib = cache.intern(&b);
        assert_ne!(ia, ib, "the same length, another frame: a miss");
        assert_eq!(
            cache.intern(&a[..2]),
            intern(&a[..2]),
            "a prefix is another stack"
        );
        assert_eq!(cache.intern(&a), ia);
        assert_eq!(intern(&b), ib, "the table agrees");
    }

    #[test]
    fn interning_deduplicates_and_round_trips() {
        let a = [0x1000usize, 0x2000, 0x3000];
        let b = [0x1000usize, 0x2000, 0x3001];
        let ia = intern(&a);
        let ib = intern(&b);
        assert!(ia != 0 && ib != 0 && ia != ib);
        assert_eq!(intern(&a), ia);
        let mut out = [0usize; MAX_DEPTH];
        assert_eq!(frames(ia, &mut out), 3);
        assert_eq!(&out[..3], &a);
        assert_eq!(frames(0, &mut out), 0);
        assert_eq!(frames(u32::MAX, &mut out), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no unwinder for foreign frames")]
    fn capture_sees_its_callers() {
        #[inline(never)]
        fn outer() -> Vec<usize> {
            core::hint::black_box(captured())
        }
        let frames = outer();
        assert!(frames.len() >= 3, "{frames:x?}");
        assert!(frames.iter().all(|&ip| ip != 0));
    }

    /// Nothing to compare with: every capture differs from it.
    static NO_LIKE: [AtomicUsize; MAX_DEPTH] = [const { AtomicUsize::new(0) }; MAX_DEPTH];

    /// The frames of a capture here.
    #[inline(always)]
    fn captured() -> Vec<usize> {
        let mut cap = Capture::new(&NO_LIKE);
        capture(&mut cap);
        cap.frames().to_vec()
    }

    /// [`walk`] into a fresh capture: its frames and whether it ended
    /// cleanly.
    ///
    /// # Safety
    /// As [`walk`].
    unsafe fn walked(fp: usize, lo: usize, hi: usize) -> (Vec<usize>, bool) {
        let mut cap = Capture::new(&NO_LIKE);
        // SAFETY: the caller's contract.
        let clean = unsafe { walk(fp, lo, hi, &mut cap) };
        (cap.frames().to_vec(), clean)
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no unwinder for foreign frames")]
    fn a_site_captured_again_is_its_last_stack_and_another_is_not() {
        #[inline(never)]
        fn here(cache: &LastStack) -> u32 {
            core::hint::black_box(cache.capture())
        }
        #[inline(never)]
        fn there(cache: &LastStack) -> u32 {
            core::hint::black_box(cache.capture())
        }
        let cache = LastStack::new();
        // One call site each for `here` and `there`, whatever the order.
        let ids: Vec<u32> = [true, true, false, false, true]
            .iter()
            .map(|&h| if h { here(&cache) } else { there(&cache) })
            .collect();
        let (a, b) = (ids[0], ids[2]);
        assert!(a != 0 && b != 0);
        assert_eq!(ids[1], a, "the same site, found through the cache");
        assert_ne!(b, a, "another caller: another stack");
        assert_eq!(ids[3], b);
        assert_eq!(ids[4], a, "and back: the table's id");
    }

    /// A fake stack of frame records in `mem`: record `k` at word `2 * k`
    /// links to `links[k]` (a word index, or `None` for a null link) and
    /// returns to `0x1000 + k`.
    fn fake_stack(mem: &mut [usize; 32], links: &[Option<usize>]) -> (usize, usize, usize) {
        let base = mem.as_ptr().addr();
        for (k, link) in links.iter().enumerate() {
            mem[2 * k] = link.map_or(0, |w| base + 8 * w);
            mem[2 * k + 1] = 0x1000 + k;
        }
        (expose(mem), base, base + 8 * mem.len())
    }

    /// Exposes `mem`'s provenance after its last write, so that the walk's
    /// reads through integer addresses are allowed (Miri checks this).
    fn expose(mem: &mut [usize; 32]) -> usize {
        mem.as_mut_ptr().expose_provenance()
    }

    fn walk_fake(links: &[Option<usize>], start_word: usize) -> (Vec<usize>, bool) {
        let mut mem = [0usize; 32];
        let (base, lo, hi) = fake_stack(&mut mem, links);
        // SAFETY: `[lo, hi)` is `mem`, alive and readable for the call.
        unsafe { walked(base + 8 * start_word, lo, hi) }
    }

    #[test]
    fn a_sane_chain_is_walked_to_its_null_link() {
        let (frames, clean) = walk_fake(&[Some(2), Some(4), Some(6), None], 0);
        assert_eq!(frames, [0x1000, 0x1001, 0x1002, 0x1003]);
        assert!(clean);
    }

    #[test]
    fn a_broken_chain_ends_the_walk_without_reading_outside_the_bounds() {
        // A link back down (a cycle), to itself, misaligned, below the
        // bounds and above them: each ends the walk at that record.
        let (f, clean) = walk_fake(&[Some(2), Some(0)], 0);
        assert_eq!((f.len(), clean), (2, false));
        let (f, clean) = walk_fake(&[Some(0)], 0);
        assert_eq!((f.len(), clean), (1, false));
        let mut mem = [0usize; 32];
        let (base, lo, hi) = fake_stack(&mut mem, &[Some(2), Some(4)]);
        mem[2] = base + 8 * 4 + 3;
        mem[3] = 0x2000;
        expose(&mut mem);
        // SAFETY: `[lo, hi)` is `mem`.
        let (f, clean) = unsafe { walked(base, lo, hi) };
        assert_eq!((&f[..], clean), (&[0x1000, 0x2000][..], false));
        // SAFETY: as above; the start lies below `lo`, so nothing is read.
        let (f, clean) = unsafe { walked(base - 64, lo, hi) };
        assert_eq!((f.len(), clean), (0, false));
        // The last record's two words must fit below `hi`.
        // SAFETY: as above; `hi - 8` is rejected before any read.
        let (f, clean) = unsafe { walked(hi - 8, lo, hi) };
        assert_eq!((f.len(), clean), (0, false));
        // A link far above the stack (garbage from code without frame
        // pointers) is never followed.
        mem[0] = usize::MAX - 15;
        expose(&mut mem);
        // SAFETY: as above.
        let (f, clean) = unsafe { walked(base, lo, hi) };
        assert_eq!(core::hint::black_box(&mem)[0], usize::MAX - 15);
        assert_eq!((&f[..], clean), (&[0x1000][..], false));
    }

    #[test]
    fn a_long_chain_stops_at_the_buffer() {
        let links: Vec<Option<usize>> = (1..16).map(|k| Some(2 * k)).chain([None]).collect();
        let (f, _) = walk_fake(&links, 0);
        assert_eq!(f.len(), 16);
        let mut mem = [0usize; 32];
        let (base, lo, hi) = fake_stack(&mut mem, &links);
        // SAFETY: `[lo, hi)` is `mem`.
        let (f, _) = unsafe { walked(base, lo, hi) };
        assert!(f.len() <= MAX_DEPTH);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no unwinder for foreign frames")]
    fn a_chain_too_short_to_trust_falls_back_to_the_unwinder() {
        let mut mem = [0usize; 32];
        // Two records, then a link back down: a broken chain.
        let (base, lo, hi) = fake_stack(&mut mem, &[Some(2), Some(0)]);
        let mut cap = Capture::new(&NO_LIKE);
        // SAFETY: `[lo, hi)` is `mem`.
        unsafe { capture_from(base, lo, hi, &mut cap) };
        let f = cap.frames();
        assert!(f.len() >= 3, "{f:x?}");
        assert!(!f.contains(&0x1000), "the broken chain was kept");
        // The unwinder's frames are real: this test's own function is
        // among them.
        let here = a_chain_too_short_to_trust_falls_back_to_the_unwinder as *const () as usize;
        assert!(f.iter().any(|&ip| ip > here && ip < here + 4096));
    }

    /// In this workspace (`.cargo/config.toml` forces frame pointers) the
    /// walk is used, and its frames are the unwinder's: the return addresses
    /// of the same calls.
    #[test]
    #[cfg(all(fp_walk, not(miri)))]
    fn the_frame_pointer_walk_agrees_with_the_unwinder() {
        #[inline(never)]
        fn both() -> (Vec<usize>, Vec<usize>) {
            let mut a = Capture::new(&NO_LIKE);
            capture(core::hint::black_box(&mut a));
            let mut b = Capture::new(&NO_LIKE);
            unwind(core::hint::black_box(&mut b));
            (a.frames().to_vec(), b.frames().to_vec())
        }
        #[inline(never)]
        fn outer() -> (Vec<usize>, Vec<usize>) {
            core::hint::black_box(both())
        }
        let (a, b) = outer();
        let (n, m) = (a.len(), b.len());
        assert!(n >= MIN_FP_FRAMES, "{n} frames");
        // `a[0]` returns into `both` after `capture`, the unwinder's frame
        // for `both` returns elsewhere in it; from `a[1]` (into `outer`)
        // on, the two lists are the same addresses.
        let at = b[..m].iter().position(|&ip| ip == a[1]);
        let at = at.unwrap_or_else(|| panic!("{:x?} not in {:x?}", &a[..n], &b[..m]));
        let k = (n - 1).min(m - at).min(4);
        assert!(k >= 3, "{k}");
        assert_eq!(&a[1..1 + k], &b[at..at + k]);
    }

    #[test]
    #[cfg(all(fp_walk, not(miri)))]
    fn stack_bounds_hold_this_threads_frames_and_know_the_main_stack() {
        let local = 0u64;
        let here = core::ptr::addr_of!(local).addr();
        // A test runs on a thread of the harness: pthread_getattr_np's bounds.
        let (bottom, top) = stack_bounds(here).expect("bounds of a pthread");
        assert!(
            bottom <= here && here < top,
            "{bottom:#x} {here:#x} {top:#x}"
        );
        // A heap address lies on no stack: the bounds found from it do not
        // hold it, so a capture there would not be walked.
        let heap = Box::new(0u64);
        let h = core::ptr::addr_of!(*heap).addr();
        assert!(stack_bounds(h).is_none_or(|(b, t)| !(b <= h && h < t)));
        // An address just under `__libc_stack_end` is the main thread's.
        let end = crate::sys::main_stack_end();
        let (b, t) = stack_bounds(end - 64).expect("the main stack");
        assert_eq!(t, end);
        assert!(b < end - 64);
    }
}
