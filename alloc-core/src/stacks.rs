//! Raw call stacks of sampled blocks: capture and a bounded, deduplicated
//! table.
//!
//! **Capture** walks the stack with the system unwinder
//! (`_Unwind_Backtrace`, through `backtrace::trace_unsynchronized`) and keeps
//! instruction pointers only, at most [`MAX_DEPTH`] of them, in a buffer on
//! the caller's stack. It takes none of this crate's locks and allocates
//! nothing. On glibc 2.35 and later with GCC 12's unwinder, finding a
//! frame's unwind information goes through `_dl_find_object`, which takes no
//! lock either, so a sampled allocation cannot deadlock against a thread
//! that holds the dynamic loader's lock while it allocates (the deadlock
//! other tools hit with `dl_iterate_phdr`). Nothing is symbolised here.
//!
//! **The table** holds at most [`MAX_STACKS`] distinct stacks in `.bss`
//! (about 2.1 MiB of address space, resident only where written), keyed by
//! a hash of the frames, open addressing, behind one spin lock held for a
//! bounded probe (at most [`MAX_PROBE`] entries) and never while unwinding.
//! A stack that finds no place within its probe goes to the overflow stack,
//! id 0, and is counted in [`OVERFLOW`]. Entries are never removed, so an id
//! stays valid for the life of the process.

use crate::lock::lock;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
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
}
