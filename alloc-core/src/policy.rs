//! The default capture policy: sparse sampling while nothing survives,
//! every allocation recorded while the exact counters show survivors.
//!
//! A leak repeats every cycle, and the exact per-epoch counters see it
//! before any sample does: the epochs closed before the previous snapshot
//! still hold live bytes. So at the defaults (no [`crate::set_sampling`],
//! no `ALLOC_CORE_SAMPLE`), each [`crate::snapshot`] looks at the epochs
//! born between the two snapshots before it, `[E(j-2), E(j-1))`, at
//! snapshot `j`:
//!
//! ```text
//!             live bytes born in [E(j-2), E(j-1)) > 0
//!   sparse ────────────────────────────────────────────► dense
//!   (Interval(DEFAULT_INTERVAL))                        (every allocation,
//!          ◄──────────────────────────────────────────   weight 1)
//!             none live at two snapshots in a row,
//!             or the sampled-block table at its dense limit
//! ```
//!
//! A program that never takes a snapshot (or whose epochs hold nothing once
//! they are a snapshot interval old: request-scoped memory, churn) never
//! leaves the sparse mode, so it pays what [`crate::DEFAULT_INTERVAL`]
//! costs. A soak of a leaky program records every allocation from its third
//! snapshot on, so each leak's site is exact in the window the report's
//! verdicts look at (its second half). A cache that keeps turning over also
//! keeps capture dense (its entries are survivors); that costs time, not
//! accuracy.
//!
//! Switching does not bias an estimate: each sampled block keeps the weight
//! of the probability with which it was drawn (1 when dense), and a switch
//! leaves every countdown at [`crate::sampling::REDRAW`], so the first
//! allocation after it is tested against a fresh countdown of the new mode
//! rather than sampled for certain. (A thread that misses the reset, racing
//! with it, keeps its old countdown until it runs out: at most one block
//! per thread and switch is weighed under the other mode.) Dense capture
//! stops while the sampled-block table holds [`crate::sampled::DENSE_LIMIT`]
//! records (57,344: 3,584 a shard, under half of the 8,192 slots a shard
//! may use at the defaults, [`crate::sampled::DEFAULT_SHARD_SLOTS`], 4 MiB
//! of 32-byte records in all). A very long leaky soak thus keeps sampling
//! (sparsely) instead of dropping samples: its sparse samples fill the
//! shards on towards their bound (about 73,700 more records, one per
//! 256 KiB leaked). Half that limit would lose leaks of two blocks a cycle
//! in a 20,000-cycle soak (see `crate::sampled`).

use crate::counters::NEVER;
use alloc_snapshot::EpochLive;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Whether the policy is in charge (the defaults): cleared for good by an
/// explicit mode, from code or from the environment.
static AUTO: AtomicBool = AtomicBool::new(true);
/// Whether every allocation is recorded now.
static DENSE: AtomicBool = AtomicBool::new(false);
/// Snapshots in a row that found no survivors in their interval.
static QUIET: AtomicU32 = AtomicU32::new(0);
/// The epochs of the last two snapshots, `E(j-2)` in the high half and
/// `E(j-1)` in the low half; [`NEVER`] before there were any.
static MARKS: AtomicU64 = AtomicU64::new(pack(NEVER, NEVER));

const fn pack(older: u32, newer: u32) -> u64 {
    ((older as u64) << 32) | newer as u64
}

/// Whether every allocation is recorded now (read on the sampling slow
/// path).
#[inline]
pub(crate) fn dense() -> bool {
    DENSE.load(Relaxed)
}

/// Whether the policy decides (no explicit mode was set).
pub(crate) fn auto() -> bool {
    AUTO.load(Relaxed)
}

/// An explicit mode was set: the policy steps aside for good.
pub(crate) fn disable() {
    AUTO.store(false, Relaxed);
    DENSE.store(false, Relaxed);
}

/// Called by each snapshot (in the tool's scope) with its epoch and live
/// bytes per birth epoch; switches dense capture on or off. `older` and
/// `newer` below are the epochs of the two snapshots before this one.
pub(crate) fn observe(epoch: u32, epochs: &[EpochLive]) {
    let marks = match MARKS.fetch_update(Relaxed, Relaxed, |m| Some(pack(m as u32, epoch))) {
        Ok(m) | Err(m) => m,
    };
    let (older, newer) = ((marks >> 32) as u32, marks as u32);
    if !auto() || older == NEVER || newer == NEVER || older >= newer {
        return;
    }
    let survivors: u64 = epochs
        .iter()
        .filter(|e| e.first < newer && e.last >= older)
        .map(|e| e.live_bytes)
        .sum();
    let room = !table_half_full();
    let quiet = if survivors > 0 {
        QUIET.store(0, Relaxed);
        0
    } else {
        QUIET.fetch_add(1, Relaxed).saturating_add(1)
    };
    // Off only after two quiet snapshots in a row: one interval without
    // cycles (two snapshots with nothing run between them) proves nothing.
    set_dense(room && quiet < 2 && (survivors > 0 || dense()));
}

/// Whether the sampled-block table holds the records at which dense
/// capture stops ([`crate::sampled::DENSE_LIMIT`]).
pub(crate) fn table_half_full() -> bool {
    crate::sampled::live() >= crate::sampled::DENSE_LIMIT as u64
}

/// Dense capture stops now (from the allocation path, when the table
/// reached half full between snapshots); the next snapshot decides again.
pub(crate) fn pause_dense() {
    set_dense(false);
}

fn set_dense(on: bool) {
    if DENSE.swap(on, Relaxed) != on {
        crate::registry::reset_countdowns();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_pack_two_epochs() {
        let m = pack(7, 9);
        assert_eq!(((m >> 32) as u32, m as u32), (7, 9));
        assert_eq!(pack(NEVER, NEVER) as u32, NEVER);
    }
}
