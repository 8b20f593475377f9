//! The sample path: what the allocation path's slow path calls when a
//! block is drawn ([`on_alloc`]: capture its stack, record it in the
//! sampled-block table, tag it) and when a sampled block is freed
//! ([`on_free`]: drop its record, count its lifetime).

use super::draw::{draw, exponential, is_redraw, weight_of, OFF_RECHECK};
use super::mode::interval;
#[cfg(doc)]
use crate::counters::SAMPLED;
use crate::sampled_table::{self, Inserted, Record};
use crate::slot::{Slot, REDRAW};
use core::sync::atomic::Ordering::*;

/// How a block came to be sampled, which sets its weight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Chance {
    /// The countdown ran out at it: weight `1 / (1 - exp(-size / mean))`,
    /// and a new countdown is drawn.
    Countdown,
    /// It is large enough to be always sampled ([`super::mode::always_sampled`]): weight
    /// 1, and the countdown is left as it was.
    Always,
}

/// Called on the slow path when `slot`'s countdown ran out at a block of
/// `size` bytes at `addr` (or the block is always sampled: `chance`),
/// already counted for `epoch`. Samples it if the mode (or a leak scope)
/// says so and returns the block's tag: `epoch`, with [`SAMPLED`] when a
/// record was made. `owner` is the slot's index + 1.
pub(crate) fn on_alloc(
    slot: &Slot,
    owner: u32,
    (addr, epoch, size): (usize, u32, usize),
    chance: Chance,
) -> u32 {
    let scoped = slot.scope.is_open();
    let mean = interval();
    if !scoped && mean == 0 {
        slot.sampler.countdown.store(OFF_RECHECK, Relaxed);
        return epoch;
    }
    let mut kept = slot.sampler.countdown.load(Relaxed);
    if is_redraw(kept) && !scoped && mean >= 2 {
        // After a reset or every-allocation capture: this allocation was
        // not drawn under the mode in force. Test it against a fresh
        // countdown, so that it is sampled with the probability its weight
        // assumes.
        let fresh = exponential(slot, mean);
        if chance == Chance::Always {
            kept = fresh;
        } else if fresh >= size as i64 {
            slot.sampler.countdown.store(fresh - size as i64, Relaxed);
            return epoch;
        }
    }
    // The record's slot is fetched while the stack is walked.
    sampled_table::prefetch_next(addr);
    // Allocations made while capturing (there should be none) must not be
    // sampled in turn.
    slot.sampler.countdown.store(i64::MAX, Relaxed);
    let weight = if scoped || mean == 1 || chance == Chance::Always {
        1.0
    } else {
        weight_of(size, mean)
    };
    let stack = slot.sampler.last_stack.capture();
    let seq = if scoped { slot.scope.take_seq() } else { 0 };
    let inserted = sampled_table::insert(Record {
        addr,
        size,
        birth_ticks: crate::clock::ticks(),
        seq,
        epoch,
        stack,
        weight: weight as f32,
        owner: if scoped { owner } else { 0 },
    });
    if !scoped {
        crate::sampler::policy::startup_sampled();
    }
    if let Inserted::HalfFull(_, len) = inserted {
        if !scoped && crate::sampler::policy::capture() != 0 {
            // The policy's capture fills the table between snapshots: step
            // to a sparser capture here rather than at the next snapshot,
            // so that later samples are not dropped.
            crate::sampler::policy::shard_filled(len as usize);
        }
    }
    crate::counters::bump_u64(&slot.sampler.sampled, 1);
    // `weight >= 1`: rounded without a call to libm's `round`.
    slot.sampler
        .hists
        .alloc_size
        .record_owned(size as u64, (weight + 0.5) as u64);
    let next = match chance {
        Chance::Always if !scoped => kept,
        // Every allocation recorded: the next one takes the slow path and
        // looks at the mode again (`draw_under` would say the same).
        _ if mean == 1 => REDRAW,
        _ => draw(slot),
    };
    slot.sampler.countdown.store(next, Relaxed);
    match inserted.id() {
        Some(id) => sampled_table::tag(id),
        None => epoch,
    }
}

/// Called when the block at `addr`, whose tag `tag` has [`SAMPLED`], is
/// freed: drops its record, counts its lifetime into `own` (the freeing
/// thread's slot) or, for a thread without a slot of its own, into the
/// shared histograms, and returns its birth epoch (`None` if the tag names
/// no record of this block, which the table's invariant rules out).
pub(crate) fn on_free(tag: u32, addr: usize, own: Option<&Slot>) -> Option<u32> {
    let r = sampled_table::remove_freed(sampled_table::id_of(tag), addr)?;
    let epochs = u64::from(crate::epoch::epoch().saturating_sub(r.epoch));
    // A leak scope's record keeps no birth time (`sampled_table::Record`).
    let ns = r
        .birth_ticks
        .map(|birth| crate::clock::elapsed_ns(birth, crate::clock::ticks()));
    match own {
        Some(s) => {
            s.sampler.hists.lifetime_epochs.record_owned(epochs, 1);
            if let Some(ns) = ns {
                s.sampler.hists.lifetime_ns.record_owned(ns, 1);
            }
        }
        None => {
            let h = &crate::histogram::SHARED;
            h.lifetime_epochs.record(epochs, 1);
            if let Some(ns) = ns {
                h.lifetime_ns.record(ns, 1);
            }
        }
    }
    Some(r.epoch)
}
