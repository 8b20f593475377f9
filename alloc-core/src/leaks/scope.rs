//! Opening and closing a leak scope on the current thread ([`LeakScope`]),
//! and what a realloc inside one records ([`on_realloc`]).

use super::survivors::{survivors_of, Survivors};
use crate::registry;
use crate::sampled_table::{self, Record};
use crate::slot::Slot;
use core::marker::PhantomData;
use core::sync::atomic::Ordering::Relaxed;

/// A stretch of one slot's leak-record sequence: the records with this
/// owner and `first <= seq < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) owner: u32,
    pub(super) first: u64,
    pub(super) end: u64,
}

/// A live leak scope on the current thread; see the [module docs](crate::leaks).
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
        let start_seq = s.scope.open();
        s.sampler.countdown.store(crate::slot::REDRAW, Relaxed);
        LeakScope {
            slot,
            owner,
            start_seq,
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
    pub(super) fn end_span(mut self) -> Option<Span> {
        if !self.open {
            return None;
        }
        // SAFETY: `open` means `slot` is this thread's static pool slot.
        let end = unsafe { &*self.slot }.scope.seq();
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
        if s.scope.close() {
            crate::sampler::draw::arm(s);
        }
    }
}

impl Drop for LeakScope {
    fn drop(&mut self) {
        self.close();
    }
}

/// What a realloc of a user block inside an open leak scope records, after
/// its counts: its new incarnation (`addr`, `new` bytes, in epoch `now`)
/// keeps the block's `record` if it had one, and nothing new is recorded (a
/// block allocated before the scope and resized inside it is not the
/// scope's). Returns the new block's tag: its record's with the sampled
/// bit, else `now`.
pub(crate) fn on_realloc(
    s: &Slot,
    record: Option<Record>,
    (addr, new): (usize, usize),
    now: u32,
) -> u32 {
    let Some(mut r) = record else {
        return now;
    };
    // The scope's own records weigh 1 and stay. A record sampled outside
    // the scope weighed its old size: the new incarnation gets a fresh
    // trial of its own.
    let weight = if r.owner != 0 {
        Some(r.weight)
    } else {
        crate::sampler::draw::fresh_trial(s, new)
    };
    if let Some(weight) = weight {
        r.addr = addr;
        r.size = new;
        r.epoch = now;
        r.weight = weight;
        if let Some(id) = sampled_table::insert(r).id() {
            return sampled_table::tag(id);
        }
    }
    now
}
