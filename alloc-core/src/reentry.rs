//! Allocation that re-enters the tool: a signal handler that allocates or
//! frees while its thread is inside the tool's slow path or holds one of
//! the tool's locks.
//!
//! Every lock of this crate is a spin lock ([`crate::lock`]) and the slow
//! path keeps per-thread state that is not reentrant (a counter slot's fold,
//! the sampler's countdown and stack capture). A handler that interrupts its
//! own thread there and allocates would spin forever on a lock that the
//! interrupted code holds, or break that state. So the thread marks itself
//! *inside* ([`enter`], which [`crate::lock::lock`] also does for every lock
//! held), and an allocation, free or realloc that reaches the slow path
//! while its thread is inside takes no lock and samples nothing: what it
//! must count is put on the thread's small queue of [`Deferred`] work
//! ([`defer`]) and done when the outermost [`Inside`] is dropped, by the
//! interrupted code itself, once it holds nothing.
//!
//! The counts stay exact: the fast path's counter updates are single
//! read-modify-write instructions on the owner's own counters (x86-64 and
//! AArch64 compile the owner's load-add-store to one instruction), which a
//! signal cannot split, and everything else is deferred. A block the
//! handler allocates is simply not sampled. The queue holds [`CAPACITY`]
//! operations; should one interrupted slow path be followed by more
//! reentrant operations than that, the excess is dropped and counted in
//! [`lost`] (a test checks it stays 0).
//!
//! The queue is written only by its own thread, in a handler or not: a
//! slot is reserved with a compare-exchange on the tail (which a nested
//! handler cannot split), written, and read only by the drain, which runs
//! in the thread's normal flow when nothing of the tool is held.

use crate::counters::Op;
use core::cell::Cell;
use core::sync::atomic::{compiler_fence, AtomicU32, AtomicU64, Ordering::*};

/// Deferred operations a thread can hold at once.
pub(crate) const CAPACITY: usize = 32;

/// Work a reentrant allocation, free or realloc left for later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deferred {
    /// An empty queue entry.
    Nothing,
    /// Count `bytes` in `epoch` as `op` (the thread's slot, or the shared
    /// one).
    Count { epoch: u32, bytes: i64, op: Op },
    /// The free of the sampled block at `addr` tagged `tag`, of `size`
    /// bytes: its record leaves the table and the free is counted in its
    /// birth epoch.
    FreeSampled { tag: u32, addr: usize, size: usize },
    /// A sampled block at `addr` tagged `tag` resized from `old` to `new`
    /// bytes in epoch `now`: its record leaves the table and the bytes
    /// move from its birth epoch to `now` (the new block is not sampled).
    ReallocSampled {
        tag: u32,
        addr: usize,
        old: usize,
        new: usize,
        now: u32,
    },
}

/// What does a deferred operation: the slow path that deferred it says,
/// so that this module, below the allocation path, never calls up into it.
pub(crate) type Apply = fn(Deferred);

/// A deferred operation and what does it.
#[derive(Clone, Copy)]
struct Job {
    op: Deferred,
    apply: Apply,
}

/// The [`Apply`] of an empty entry.
fn nothing(_: Deferred) {}

const EMPTY: Job = Job {
    op: Deferred::Nothing,
    apply: nothing,
};

struct Queue {
    depth: Cell<u32>,
    /// Next entry to drain. Only the drain writes it.
    head: AtomicU32,
    /// Next entry to fill, reserved by compare-exchange.
    tail: AtomicU32,
    ops: [Cell<Job>; CAPACITY],
}

thread_local! {
    // A `const` initialiser and no destructor: a plain thread-local access
    // that never allocates and stays valid until the thread is gone.
    static QUEUE: Queue = const {
        Queue {
            depth: Cell::new(0),
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            ops: [const { Cell::new(EMPTY) }; CAPACITY],
        }
    };
}

static LOST: AtomicU64 = AtomicU64::new(0);

/// Deferred operations dropped because a queue was full (0 unless a signal
/// handler made more than [`CAPACITY`] reentrant slow-path operations while
/// its thread was inside the tool once).
pub(crate) fn lost() -> u64 {
    LOST.load(Relaxed)
}

/// True while this thread is inside the tool's slow path or holds one of
/// its locks: a slow-path operation now must [`defer`] its work.
#[inline(always)]
pub(crate) fn inside() -> bool {
    // During the thread's teardown the queue may be gone: then nothing of
    // the tool can be held by the thread either.
    QUEUE.try_with(|q| q.depth.get() > 0).unwrap_or(false)
}

/// Marks the thread inside the tool until the guard is dropped; nests.
#[inline(always)]
pub(crate) fn enter() -> Inside {
    let _ = QUEUE.try_with(|q| q.depth.set(q.depth.get() + 1));
    // The mark is set before anything the guard protects happens.
    compiler_fence(SeqCst);
    Inside(())
}

/// The mark of [`enter`]; dropping the outermost one does the deferred work.
#[must_use]
pub(crate) struct Inside(());

impl Inside {
    /// Keeps the thread inside past this guard's scope (fork's `prepare`
    /// takes every lock and releases them in another callback): [`resume`]
    /// ends it.
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }
}

impl Drop for Inside {
    #[inline(always)]
    fn drop(&mut self) {
        leave();
    }
}

/// Ends an [`Inside`] that was [`Inside::keep`]t.
pub(crate) fn resume() {
    leave();
}

#[inline(always)]
fn leave() {
    compiler_fence(SeqCst);
    let _ = QUEUE.try_with(|q| {
        let depth = q.depth.get().saturating_sub(1);
        q.depth.set(depth);
        compiler_fence(SeqCst);
        // Outermost, and a handler deferred work (before the unmark, or
        // between it and this look): do it.
        if depth == 0 && !q.is_empty() {
            drain(q);
        }
    });
}

/// Does the deferred work while marked inside (a handler that runs
/// meanwhile defers again), then unmarks, and drains again if a handler
/// queued something between the last look and the unmark.
#[cold]
#[inline(never)]
fn drain(q: &Queue) {
    loop {
        q.depth.set(1);
        compiler_fence(SeqCst);
        while let Some(job) = q.pop() {
            (job.apply)(job.op);
        }
        q.depth.set(0);
        compiler_fence(SeqCst);
        if q.is_empty() {
            return;
        }
    }
}

/// Queues `op` for the thread's outermost [`Inside`] to do. Call only when
/// [`inside`] (a handler interrupted the tool).
pub(crate) fn defer(op: Deferred, apply: Apply) {
    let queued = QUEUE
        .try_with(|q| q.push(Job { op, apply }))
        .unwrap_or(false);
    if !queued {
        LOST.fetch_add(1, Relaxed);
    }
}

impl Queue {
    fn push(&self, job: Job) -> bool {
        let mut tail = self.tail.load(Relaxed);
        loop {
            if tail.wrapping_sub(self.head.load(Relaxed)) as usize >= CAPACITY {
                return false;
            }
            // A nested handler that pushes between the load and here moves
            // the tail: the exchange fails and this push takes the next.
            match self
                .tail
                .compare_exchange(tail, tail.wrapping_add(1), Relaxed, Relaxed)
            {
                Ok(_) => break,
                Err(now) => tail = now,
            }
        }
        self.ops[tail as usize % CAPACITY].set(job);
        true
    }

    fn pop(&self) -> Option<Job> {
        let head = self.head.load(Relaxed);
        if head == self.tail.load(Relaxed) {
            return None;
        }
        // Every reserved entry was written before its handler returned to
        // this thread's normal flow, where the drain runs.
        let job = self.ops[head as usize % CAPACITY].replace(EMPTY);
        compiler_fence(SeqCst);
        self.head.store(head.wrapping_add(1), Relaxed);
        Some(job)
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.head.load(Relaxed) == self.tail.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_guards_mark_the_thread_until_the_outermost_drops() {
        assert!(!inside());
        {
            let _a = enter();
            assert!(inside());
            {
                let _b = enter();
                assert!(inside());
            }
            assert!(inside());
        }
        assert!(!inside());
    }

    #[test]
    fn a_full_queue_refuses_and_a_drained_one_takes_again() {
        QUEUE.with(|q| {
            let op = Deferred::Count {
                epoch: 3,
                bytes: 8,
                op: Op::Alloc,
            };
            let job = Job { op, apply: nothing };
            for _ in 0..CAPACITY {
                assert!(q.push(job));
            }
            assert!(!q.push(job));
            let mut n = 0;
            while let Some(got) = q.pop() {
                assert_eq!(got.op, op);
                n += 1;
            }
            assert_eq!(n, CAPACITY);
            assert!(q.is_empty());
            assert!(q.push(job));
            assert_eq!(q.pop().map(|j| j.op), Some(op));
        });
    }
}
