//! Leak assertions for tests: record every block the current thread
//! allocates inside a scope, and list the ones still live at its end.
//!
//! The Rust counterpart of checking `sys.getrefcount(obj) == 2` after a
//! connection closes: run the code, drop what it returned, and ask which of
//! its blocks are still alive and where they were allocated.
//!
//! ```no_run
//! use std::cell::RefCell;
//! use std::rc::{Rc, Weak};
//!
//! // In a test crate whose global allocator is alloc_core::EpochAlloc.
//! struct Connection { handler: RefCell<Option<Handler>> }
//! struct Handler { conn: Weak<Connection> } // `Rc<Connection>` here leaks both
//!
//! alloc_core::assert_no_leaks(|| {
//!     let conn = Rc::new(Connection { handler: RefCell::new(None) });
//!     *conn.handler.borrow_mut() = Some(Handler { conn: Rc::downgrade(&conn) });
//! });
//! ```
//!
//! # What a scope sees
//! - **Only the current thread's allocations**, made between the start and
//!   the end of the scope. Two tests running in parallel in one process (the
//!   normal test harness) each see their own blocks only.
//! - **Blocks allocated by threads the scope spawns are not recorded.** Join
//!   them inside the scope and, to check their blocks too, run their bodies
//!   in scopes of their own.
//! - A block allocated in the scope and freed anywhere (any thread, any
//!   time before the end) is not a survivor. A block allocated before the
//!   scope and resized inside it is not recorded. Scopes nest: an outer
//!   scope also sees the survivors of the scopes inside it.
//! - **What the scope's code leaves behind on purpose is a survivor too**:
//!   a value returned from the closure of [`track`], a thread-local or a
//!   `OnceLock` initialised for the first time, a buffer of `stdout`. Run
//!   the code once before the scope to warm such things up.
//! - Every allocation in a scope captures its call stack (a few
//!   microseconds each), so keep scopes to test-sized work. A scope holds at
//!   most the sampled-block table's capacity of live blocks (about 114,000
//!   across the process); beyond that [`Survivors::missed`] says how many
//!   were not recorded.
//! - **Async code on a multi-threaded runtime** moves between threads at
//!   each `.await`: use [`track_future`] (or [`assert_no_leaks_future`]),
//!   which follows the future to every thread that polls it.
//! - A scope needs `EpochAlloc` as the global allocator and a counter slot
//!   for the thread (every thread has one, up to [`crate::MAX_THREAD_SLOTS`]
//!   at once); otherwise [`Survivors::unavailable`] is set and
//!   [`assert_no_leaks`] fails rather than pass without looking.

mod future;

use future::Span;
pub use future::{assert_no_leaks_future, track_future, TrackFuture};

use crate::registry;
use crate::sampled_table::{self, Record};
use crate::slot::Slot;
use crate::stacks;
use crate::symbolize::symbolize_stack;
use alloc_snapshot::trim::is_own_frame;
use alloc_snapshot::Stack;
use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::Ordering::Relaxed;
use std::collections::HashMap;

/// A live leak scope on the current thread; see the [module docs](self).
///
/// Not `Send`: it belongs to the thread that opened it.
#[must_use = "a scope records nothing useful unless `finish` is called"]
pub struct LeakScope {
    slot: *const Slot,
    owner: u32,
    start_seq: u64,
    dropped_at_start: u64,
    open: bool,
    _not_send: PhantomData<*const ()>,
}

impl LeakScope {
    /// Starts recording every block this thread allocates.
    pub fn begin() -> LeakScope {
        // Make sure this thread has its counter slot (the first allocation
        // of a thread claims it).
        drop(core::hint::black_box(Box::new(0u8)));
        let slot = registry::current();
        let owner = registry::owner_id(slot);
        let dropped_at_start = sampled_table::DROPPED_FULL.load(Relaxed);
        if owner == 0 {
            return LeakScope {
                slot,
                owner,
                start_seq: 0,
                dropped_at_start,
                open: false,
                _not_send: PhantomData,
            };
        }
        // SAFETY: a non-zero owner id means a static pool slot owned by
        // this thread.
        let s = unsafe { &*slot };
        s.scope_depth
            .store(s.scope_depth.load(Relaxed) + 1, Relaxed);
        s.countdown.store(crate::slot::REDRAW, Relaxed);
        LeakScope {
            slot,
            owner,
            start_seq: s.scope_seq.load(Relaxed),
            dropped_at_start,
            open: true,
            _not_send: PhantomData,
        }
    }

    /// Stops recording and returns the blocks allocated in the scope that
    /// are still live, with their symbolised call sites.
    #[must_use]
    pub fn finish(mut self) -> Survivors {
        if !self.open {
            return Survivors {
                blocks: Vec::new(),
                missed: 0,
                unavailable: true,
            };
        }
        self.close();
        let (owner, start) = (self.owner, self.start_seq);
        survivors_of(self.dropped_at_start, |r| {
            r.owner == owner && r.seq >= start
        })
    }

    /// Ends the scope and returns the part of its slot's record sequence
    /// that it covered: `(owner, first, end)`, or `None` if it could not
    /// record.
    fn end_span(mut self) -> Option<Span> {
        if !self.open {
            return None;
        }
        // SAFETY: `open` means `slot` is this thread's static pool slot.
        let end = unsafe { &*self.slot }.scope_seq.load(Relaxed);
        self.close();
        Some(Span {
            owner: self.owner,
            first: self.start_seq,
            end,
        })
    }

    fn close(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        // SAFETY: `open` means `slot` is this thread's static pool slot.
        let s = unsafe { &*self.slot };
        let depth = s.scope_depth.load(Relaxed).saturating_sub(1);
        s.scope_depth.store(depth, Relaxed);
        if depth == 0 {
            crate::sampler::draw::arm(s);
        }
    }
}

/// The live records that `keep` selects, symbolised, as [`Survivors`];
/// `dropped_at_start` is [`sampled_table::DROPPED_FULL`] when recording began.
fn survivors_of(dropped_at_start: u64, keep: impl Fn(&Record) -> bool) -> Survivors {
    crate::untracked(|| {
        let mut records: Vec<Record> = Vec::new();
        sampled_table::collect(&mut records, |r| r.owner != 0 && keep(r));
        records.sort_by_key(|r| (r.owner, r.seq));
        let missed = sampled_table::DROPPED_FULL
            .load(Relaxed)
            .saturating_sub(dropped_at_start);
        let mut cache = HashMap::new();
        let mut stacks_by_id: HashMap<u32, Stack> = HashMap::new();
        let blocks = records
            .iter()
            .map(|r| {
                let stack = stacks_by_id
                    .entry(r.stack)
                    .or_insert_with(|| {
                        let mut s = stacks::unsymbolised(r.stack);
                        symbolize_stack(&mut s, &mut cache);
                        s
                    })
                    .clone();
                SurvivingBlock {
                    size: r.size,
                    epoch: r.epoch,
                    stack,
                }
            })
            .collect();
        Survivors {
            blocks,
            missed,
            unavailable: false,
        }
    })
}

impl Drop for LeakScope {
    fn drop(&mut self) {
        self.close();
    }
}

/// A block allocated inside a leak scope and still live at its end.
#[derive(Clone, Debug)]
pub struct SurvivingBlock {
    /// Its size in bytes (as requested; the latest size if resized).
    pub size: usize,
    /// Its birth epoch.
    pub epoch: u32,
    /// Where it was allocated, symbolised; [`Stack::label`] names the line.
    pub stack: Stack,
}

/// What a leak scope found.
#[derive(Clone, Debug)]
pub struct Survivors {
    /// The surviving blocks, in allocation order (per thread, for a
    /// [`track_future`]).
    pub blocks: Vec<SurvivingBlock>,
    /// Allocations that could not be recorded because the sampled-block
    /// table was full (counted process-wide while the scope was open). When
    /// non-zero, survivors may be missing from [`Survivors::blocks`].
    pub missed: u64,
    /// The scope could not record anything: the global allocator is not
    /// `EpochAlloc`, or this thread has no counter slot.
    pub unavailable: bool,
}

impl Survivors {
    /// Whether nothing survived (and the scope could look).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.missed == 0 && !self.unavailable
    }

    /// Bytes in surviving blocks.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.size).sum()
    }

    /// Survivors grouped by call site (`alloc_snapshot::site`: the user
    /// frame's [`SiteKey`](alloc_snapshot::SiteKey), named by its label):
    /// `(site, bytes, blocks)`, most bytes first.
    #[must_use]
    pub fn by_site(&self) -> Vec<(String, usize, usize)> {
        let mut keys: Vec<alloc_snapshot::SiteKey<'_>> = Vec::new();
        let mut sites: Vec<(String, usize, usize)> = Vec::new();
        for b in &self.blocks {
            let key = b.stack.site_key();
            match keys.iter().position(|k| *k == key) {
                Some(i) => {
                    sites[i].1 += b.size;
                    sites[i].2 += 1;
                }
                None => {
                    keys.push(key);
                    sites.push((key.label(), b.size, 1));
                }
            }
        }
        sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sites
    }
}

impl fmt::Display for Survivors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unavailable {
            return write!(
                f,
                "alloc-core could not watch this scope: the global allocator is not \
                 alloc_core::EpochAlloc, or this thread has no counter slot"
            );
        }
        writeln!(
            f,
            "{} block(s), {} bytes, allocated in the scope are still live:",
            self.blocks.len(),
            self.bytes()
        )?;
        for (site, bytes, blocks) in self.by_site() {
            writeln!(f, "  {bytes} bytes in {blocks} block(s) at {site}")?;
            if let Some(b) = self.blocks.iter().find(|b| b.stack.label() == site) {
                let start = b.stack.user_frame.unwrap_or(0) as usize;
                let callers = b
                    .stack
                    .frames
                    .iter()
                    .skip(start + 1)
                    .filter(|fr| is_own_frame(fr));
                for fr in callers.take(4) {
                    writeln!(f, "      called from {}", fr.label())?;
                }
            }
        }
        if self.missed > 0 {
            writeln!(
                f,
                "  and {} allocation(s) not recorded: the sampled-block table was full",
                self.missed
            )?;
        }
        Ok(())
    }
}

/// Runs `f` in a [`LeakScope`] and returns its result with the blocks it
/// allocated on this thread that are still live, the result's own blocks
/// included.
pub fn track<R>(f: impl FnOnce() -> R) -> (R, Survivors) {
    let scope = LeakScope::begin();
    let r = f();
    (r, scope.finish())
}

/// Runs `f` in a [`LeakScope`] and panics, listing each surviving block's
/// size and symbolised call site, if anything it allocated on this thread
/// is still live when it returns.
#[track_caller]
pub fn assert_no_leaks(f: impl FnOnce()) {
    let ((), survivors) = track(f);
    if !survivors.is_empty() {
        panic!("leak check failed: {survivors}");
    }
}
