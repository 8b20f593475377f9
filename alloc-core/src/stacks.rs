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
//! (about 2.1 MiB of address space, resident only where written), keyed by
//! a hash of the frames, open addressing, behind one spin lock held for a
//! bounded probe (at most [`MAX_PROBE`] entries) and never while unwinding.
//! A stack that finds no place within its probe goes to the overflow stack,
//! id 0, and is counted in [`OVERFLOW`]. Entries are never removed, so an id
//! stays valid for the life of the process.

use crate::lock::lock;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
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
/// Entries probed before a stack is sent to the overflow stack.
const MAX_PROBE: usize = 64;

struct Entry {
    /// Hash of the frames; 0 marks an empty entry.
    hash: u64,
    len: u32,
    frames: [usize; MAX_DEPTH],
}

struct Table {
    used: usize,
    entries: [Entry; MAX_STACKS],
}

static TABLE: SpinMutex<Table> = SpinMutex::new(Table {
    used: 0,
    entries: [const {
        Entry {
            hash: 0,
            len: 0,
            frames: [0; MAX_DEPTH],
        }
    }; MAX_STACKS],
});

/// Samples whose stack went to the overflow stack.
pub(crate) static OVERFLOW: AtomicU64 = AtomicU64::new(0);

/// Captures the current call stack into `buf`; returns the number of frames.
#[inline(never)]
pub(crate) fn capture(buf: &mut [usize; MAX_DEPTH]) -> usize {
    #[cfg(all(fp_walk, not(miri)))]
    if let Some((fp, lo, hi)) = fp::chain() {
        // SAFETY: `chain` returns the live part of this thread's stack.
        return unsafe { capture_from(fp, lo, hi, buf) };
    }
    unwind(buf)
}

/// Walks the chain from `fp` inside `[lo, hi)` and keeps it if it is long
/// enough ([`MIN_FP_FRAMES`]); else captures with the unwinder.
///
/// # Safety
///
/// As [`walk`]: every byte of `[lo, hi)` must be readable.
#[cfg_attr(not(all(fp_walk, not(miri))), allow(dead_code))]
unsafe fn capture_from(fp: usize, lo: usize, hi: usize, buf: &mut [usize; MAX_DEPTH]) -> usize {
    // SAFETY: the caller's contract.
    let (n, _clean) = unsafe { walk(fp, lo, hi, buf) };
    // A clean end means a null link, but garbage can hold a zero too: only
    // the length says the chain was real.
    if n >= MIN_FP_FRAMES {
        n
    } else {
        unwind(buf)
    }
}

/// Whether [`capture`] walks frame pointers (else it always unwinds).
pub(crate) const FRAME_POINTERS: bool = cfg!(all(fp_walk, not(miri)));

/// Captures the current call stack with the system unwinder.
#[inline(never)]
fn unwind(buf: &mut [usize; MAX_DEPTH]) -> usize {
    #[cfg(not(miri))]
    {
        let mut n = 0;
        // `trace_unsynchronized` is unsafe only because it skips the crate's
        // global lock, which exists for Windows' non-reentrant dbghelp.
        // SAFETY: on Unix it is `_Unwind_Backtrace` (thread-safe, reentrant);
        // the closure only writes into `buf`, within bounds.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                let ip = frame.ip() as usize;
                if ip == 0 {
                    // The outermost frame of a thread.
                    return false;
                }
                buf[n] = ip;
                n += 1;
                n < MAX_DEPTH
            });
        }
        n
    }
    #[cfg(miri)]
    {
        // Miri cannot unwind through foreign code: every stack is empty.
        let _ = buf;
        0
    }
}

/// A frame-pointer walk with fewer frames than this is not trusted: the
/// capture unwinds instead. Any real allocation's chain is longer (the
/// allocator's own slow-path frames and `__rust_alloc`, the user's code,
/// the thread's start), so a shorter one means a chain broken near the
/// allocator, by code built without frame pointers.
pub(crate) const MIN_FP_FRAMES: usize = 5;

/// Walks a frame-pointer chain from the frame at `fp`, reading only inside
/// `[lo, hi)`, into `buf`. Returns the number of return addresses written
/// and whether the chain ended cleanly (a null frame pointer or return
/// address: the outermost frame of a thread) rather than at a frame that
/// failed a check.
///
/// Each frame record is two words, `[fp]` the caller's frame pointer and
/// `[fp + 8]` the return address (x86-64 and AArch64 alike). A record is
/// read only if `lo <= fp`, `fp + 16 <= hi` and `fp` is 8-aligned, and each
/// next record must lie strictly above the last one, so the walk ends in at
/// most `(hi - lo) / 16` steps whatever the memory holds.
///
/// # Safety
///
/// Every byte of `[lo, hi)` must be readable for the whole call.
#[cfg_attr(not(all(fp_walk, not(miri))), allow(dead_code))]
pub(crate) unsafe fn walk(
    mut fp: usize,
    mut lo: usize,
    hi: usize,
    buf: &mut [usize; MAX_DEPTH],
) -> (usize, bool) {
    let mut n = 0;
    while n < MAX_DEPTH {
        if fp == 0 {
            return (n, true);
        }
        if fp < lo || !fp.is_multiple_of(8) || hi < 16 || fp > hi - 16 {
            return (n, false);
        }
        // SAFETY: `[fp, fp + 16)` lies inside `[lo, hi)`, readable by the
        // caller's contract; `fp` is aligned for `usize`.
        let (next, ret) = unsafe {
            let p = core::ptr::with_exposed_provenance::<usize>(fp);
            (p.read_volatile(), p.add(1).read_volatile())
        };
        if ret == 0 {
            return (n, true);
        }
        buf[n] = ret;
        n += 1;
        // A next record at or below this one fails `lo <= fp` at the top
        // of the loop (a null one ends the walk cleanly there).
        lo = fp + 16;
        fp = next;
    }
    (n, true)
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
        let (bottom, top) = BOUNDS
            .try_with(|b| match b.get() {
                (0, 0) => {
                    let v = super::stack_bounds(here).unwrap_or((1, 1));
                    b.set(v);
                    v
                }
                v => v,
            })
            .ok()?;
        // `here` on this thread's stack makes `[here, top)` the live part
        // of it: mapped and readable. Anywhere else (another stack below or
        // above, with unmapped memory between) nothing is walked.
        (bottom <= here && here < top).then_some((fp, here, top))
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

fn hash(frames: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ frames.len() as u64;
    for &f in frames {
        h = (h ^ f as u64).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    h | 1
}

/// The id of `frames` in the table (inserting them if new), from 1 up; 0
/// when the table has no room for them.
pub(crate) fn intern(frames: &[usize]) -> u32 {
    let frames = &frames[..frames.len().min(MAX_DEPTH)];
    let h = hash(frames);
    let mut t = lock(&TABLE);
    let mut i = (h as usize) & (MAX_STACKS - 1);
    for _ in 0..MAX_PROBE {
        let e = &mut t.entries[i];
        if e.hash == 0 {
            e.hash = h;
            e.len = frames.len() as u32;
            e.frames[..frames.len()].copy_from_slice(frames);
            t.used += 1;
            return i as u32 + 1;
        }
        if e.hash == h && &e.frames[..e.len as usize] == frames {
            return i as u32 + 1;
        }
        i = (i + 1) & (MAX_STACKS - 1);
    }
    drop(t);
    OVERFLOW.fetch_add(1, Relaxed);
    0
}

/// The last stack one thread interned and its id, kept in the thread's
/// counter slot ([`crate::counters::Slot`]): an allocation site in a loop
/// samples the same stack again and again, and finding it here costs a
/// comparison of the frames, with no hash, no lock and no table probe.
/// Written and read by the slot's owner only (relaxed loads and stores);
/// valid for whichever thread owns the slot next, since ids never change.
pub(crate) struct LastStack {
    /// The id, 0 when nothing is cached (the overflow stack never is).
    id: AtomicU32,
    len: AtomicU32,
    frames: [AtomicUsize; MAX_DEPTH],
}

impl LastStack {
    pub(crate) const fn new() -> Self {
        LastStack {
            id: AtomicU32::new(0),
            len: AtomicU32::new(0),
            frames: [const { AtomicUsize::new(0) }; MAX_DEPTH],
        }
    }

    /// [`intern`], through this cache. Owner only.
    pub(crate) fn intern(&self, frames: &[usize]) -> u32 {
        let frames = &frames[..frames.len().min(MAX_DEPTH)];
        let id = self.id.load(Relaxed);
        if id != 0
            && self.len.load(Relaxed) as usize == frames.len()
            && frames
                .iter()
                .zip(&self.frames)
                .all(|(&f, c)| c.load(Relaxed) == f)
        {
            return id;
        }
        let id = intern(frames);
        if id != 0 {
            for (&f, c) in frames.iter().zip(&self.frames) {
                c.store(f, Relaxed);
            }
            self.len.store(frames.len() as u32, Relaxed);
        }
        self.id.store(id, Relaxed);
        id
    }
}

/// Copies the frames of stack `id` into `out`; returns how many (0 for the
/// overflow stack or an unknown id).
pub(crate) fn frames(id: u32, out: &mut [usize; MAX_DEPTH]) -> usize {
    let Some(i) = (id as usize).checked_sub(1).filter(|&i| i < MAX_STACKS) else {
        return 0;
    };
    let t = lock(&TABLE);
    let e = &t.entries[i];
    let n = e.len as usize;
    out[..n].copy_from_slice(&e.frames[..n]);
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
    lock(&TABLE).used
}

/// Bytes one table entry takes.
pub(crate) const ENTRY_BYTES: usize = size_of::<Entry>();

/// Where the table lies (`.bss`, resident only where entries were written)
/// and its size, for [`crate::tool_memory`].
#[cfg_attr(miri, allow(dead_code))]
pub(crate) fn table_memory() -> (*const u8, usize) {
    (core::ptr::addr_of!(TABLE).cast(), size_of_val(&TABLE))
}

/// Fork support: the table lock, taken before `fork()` and released in both
/// processes after it.
pub(crate) mod fork {
    use super::*;

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn lock_all() {
        core::mem::forget(lock(&TABLE));
    }

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn unlock_all() {
        // SAFETY: `lock_all` took the lock in this thread (the forking
        // thread, the only thread of a fork child) and leaked the guard.
        unsafe { TABLE.force_unlock() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        fn outer(buf: &mut [usize; MAX_DEPTH]) -> usize {
            core::hint::black_box(capture(buf))
        }
        let mut buf = [0usize; MAX_DEPTH];
        let n = outer(&mut buf);
        assert!(n >= 3, "{n} frames");
        assert!(buf[..n].iter().all(|&ip| ip != 0));
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
        let mut buf = [0usize; MAX_DEPTH];
        // SAFETY: `[lo, hi)` is `mem`, alive and readable for the call.
        let (n, clean) = unsafe { walk(base + 8 * start_word, lo, hi, &mut buf) };
        (buf[..n].to_vec(), clean)
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
        let mut buf = [0usize; MAX_DEPTH];
        // SAFETY: `[lo, hi)` is `mem`.
        let (n, clean) = unsafe { walk(base, lo, hi, &mut buf) };
        assert_eq!((&buf[..n], clean), (&[0x1000, 0x2000][..], false));
        // SAFETY: as above; the start lies below `lo`, so nothing is read.
        let (n, clean) = unsafe { walk(base - 64, lo, hi, &mut buf) };
        assert_eq!((n, clean), (0, false));
        // The last record's two words must fit below `hi`.
        // SAFETY: as above; `hi - 8` is rejected before any read.
        let (n, clean) = unsafe { walk(hi - 8, lo, hi, &mut buf) };
        assert_eq!((n, clean), (0, false));
        // A link far above the stack (garbage from code without frame
        // pointers) is never followed.
        mem[0] = usize::MAX - 15;
        expose(&mut mem);
        // SAFETY: as above.
        let (n, clean) = unsafe { walk(base, lo, hi, &mut buf) };
        assert_eq!(core::hint::black_box(&mem)[0], usize::MAX - 15);
        assert_eq!((&buf[..n], clean), (&[0x1000][..], false));
    }

    #[test]
    fn a_long_chain_stops_at_the_buffer() {
        let links: Vec<Option<usize>> = (1..16).map(|k| Some(2 * k)).chain([None]).collect();
        let (f, _) = walk_fake(&links, 0);
        assert_eq!(f.len(), 16);
        let mut mem = [0usize; 32];
        let (base, lo, hi) = fake_stack(&mut mem, &links);
        let mut buf = [0usize; MAX_DEPTH];
        // SAFETY: `[lo, hi)` is `mem`.
        let (n, _) = unsafe { walk(base, lo, hi, &mut buf) };
        assert!(n <= MAX_DEPTH);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no unwinder for foreign frames")]
    fn a_chain_too_short_to_trust_falls_back_to_the_unwinder() {
        let mut mem = [0usize; 32];
        // Two records, then a link back down: a broken chain.
        let (base, lo, hi) = fake_stack(&mut mem, &[Some(2), Some(0)]);
        let mut buf = [0usize; MAX_DEPTH];
        // SAFETY: `[lo, hi)` is `mem`.
        let n = unsafe { capture_from(base, lo, hi, &mut buf) };
        assert!(n >= 3, "{n} frames");
        assert!(!buf[..n].contains(&0x1000), "the broken chain was kept");
        // The unwinder's frames are real: this test's own function is
        // among them.
        let here = a_chain_too_short_to_trust_falls_back_to_the_unwinder as *const () as usize;
        assert!(buf[..n].iter().any(|&ip| ip > here && ip < here + 4096));
    }

    /// In this workspace (`.cargo/config.toml` forces frame pointers) the
    /// walk is used, and its frames are the unwinder's: the return addresses
    /// of the same calls.
    #[test]
    #[cfg(all(fp_walk, not(miri)))]
    fn the_frame_pointer_walk_agrees_with_the_unwinder() {
        #[inline(never)]
        fn both(a: &mut [usize; MAX_DEPTH], b: &mut [usize; MAX_DEPTH]) -> (usize, usize) {
            let n = core::hint::black_box(capture(a));
            let m = core::hint::black_box(unwind(b));
            (n, m)
        }
        #[inline(never)]
        fn outer(a: &mut [usize; MAX_DEPTH], b: &mut [usize; MAX_DEPTH]) -> (usize, usize) {
            core::hint::black_box(both(a, b))
        }
        let (mut a, mut b) = ([0usize; MAX_DEPTH], [0usize; MAX_DEPTH]);
        let (n, m) = outer(&mut a, &mut b);
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
