//! The default capture policy: every allocation recorded during the
//! program's start-up, sparse sampling while nothing survives, every
//! allocation recorded while the exact counters show survivors, and graded
//! capture past the sampled-block table's dense limit.
//!
//! **Start-up.** A program makes the structures that later hold its leaks
//! (a runtime and its task lists, channels, registries, pools) when it
//! starts, before any snapshot; sampled sparsely, they would be unsampled
//! blocks to the retention scan, which cannot follow a pointer through a
//! block it has no record of (a leak held through one comes out `heap`).
//! So capture starts dense and stays so for the first [`STARTUP_RECORDS`]
//! samples (a one-time cost of that many stack captures; the records of
//! blocks freed meanwhile are freed too), then drops to sparse sampling,
//! unless a snapshot's decision (below) took charge first.
//!
//! A leak repeats every cycle, and the exact per-epoch counters see it
//! before any sample does: the epochs closed before the previous snapshot
//! still hold live bytes. So at the defaults (no [`crate::set_sampling`],
//! no `ALLOC_CORE_SAMPLE`), each [`crate::snapshot()`] looks at the epochs
//! born between the two snapshots before it, `[E(j-2), E(j-1))`, at
//! snapshot `j`:
//!
//! ```text
//!             live bytes born in [E(j-2), E(j-1)) > 0
//!   sparse ────────────────────────────────────────────► dense
//!   (Interval(DEFAULT_INTERVAL))                        (every allocation,
//!          ◄──────────────────────────────────────────   weight 1)
//!             none live at two snapshots in a row
//!                       (past the dense limit: graded, below)
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
//! leaves every countdown at [`crate::slot::REDRAW`], so the first
//! allocation after it is tested against a fresh countdown of the new mode
//! rather than sampled for certain. (A thread that misses the reset, racing
//! with it, keeps its old countdown until it runs out: at most one block
//! per thread and switch is weighed under the other mode.)
//!
//! **Past the dense limit: graded capture.** The sampled-block table is
//! bounded (8,192 records a shard at the defaults,
//! [`crate::sampled_table::DEFAULT_SHARD_SLOTS`], 4 MiB of 32-byte records), and
//! a fast leak fills it: dense capture stops once a shard holds
//! [`crate::sampled_table::HALF_FULL`] records (3,584; 57,344 over the 16
//! shards). Dropping to the default interval there (one sample per
//! 256 KiB) would leave a leak of a few hundred bytes a cycle a handful
//! of samples in the verdicts' window, rising in rare large steps, and
//! its site would be called a plateau, or a leak at half or twice its
//! rate, depending on where the steps fell (the soak's length and batch).
//! So capture thins out in steps instead: an interval of 64 bytes, doubled
//! each time a shard takes 256 more records ([`graded`]): the default
//! interval at 6,656 records a shard (106,496 in all), 2 MiB at 7,424,
//! 16 MiB at the bound (8,192), so that the policy's capture fills the
//! table (and drops samples) only after tens of GiB of leaked blocks
//! rather than at a fixed interval's pace. Each step
//! halves the records a small block leaves (a block of `s` bytes is drawn
//! with probability `1 - exp(-s / interval)` and weighs its inverse), so
//! the records grow with the logarithm of the leak, not with it, and a
//! leak keeps samples in proportion to its bytes at every soak length:
//! a million cycles of a leak of a few blocks a cycle end at a step of a
//! few KiB, with thousands of samples in the window. A shard that passes a
//! step between snapshots steps at once, from the allocation path
//! ([`shard_filled`]), so a long batch cannot fill the table; a snapshot
//! steps it too when the table's records call for a sparser step (never
//! back to a finer one while capture stays on), or switches capture off
//! when nothing survives.

use crate::counters::NEVER;
use crate::sampled_table::{HALF_FULL, SHARDS};
use alloc_snapshot::EpochLive;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Whether the policy is in charge (the defaults): cleared for good by an
/// explicit mode, from code or from the environment.
static AUTO: AtomicBool = AtomicBool::new(true);
/// What the policy captures now: 0 the configured mode (sparse), 1 every
/// allocation (dense), else a graded interval in bytes ([`graded`]). Dense
/// from the start, for the start-up's records.
static CAPTURE: AtomicU64 = AtomicU64::new(1);
/// The start-up's samples still to take before capture drops to sparse;
/// 0 once it ended (spent, or a snapshot's decision took charge).
static STARTUP_LEFT: AtomicU32 = AtomicU32::new(STARTUP_RECORDS);

/// How many allocations the start-up records (every one, with its stack)
/// before capture drops to sparse sampling: enough for a runtime, its
/// channels and registries; 256 KiB of records if every block stayed live.
pub const STARTUP_RECORDS: u32 = 8192;
/// Snapshots in a row that found no survivors in their interval.
static QUIET: AtomicU32 = AtomicU32::new(0);
/// The epochs of the last two snapshots, `E(j-2)` in the high half and
/// `E(j-1)` in the low half; [`NEVER`] before there were any.
static MARKS: AtomicU64 = AtomicU64::new(pack(NEVER, NEVER));

/// The interval of the first graded step past the dense limit, in bytes.
const FIRST_GRADED: u64 = 64;
/// Records a shard takes at each graded step before the next (256: 4,096
/// over the table).
const STEP_RECORDS: usize = 256;

const fn pack(older: u32, newer: u32) -> u64 {
    ((older as u64) << 32) | newer as u64
}

/// What the policy captures now (read on the sampling slow path): 0 the
/// configured mode, 1 every allocation, else a mean interval in bytes.
#[inline]
pub(crate) fn capture() -> u64 {
    CAPTURE.load(Relaxed)
}

/// Whether the policy decides (no explicit mode was set).
pub(crate) fn auto() -> bool {
    AUTO.load(Relaxed)
}

/// An explicit mode was set: the policy steps aside for good.
pub(crate) fn disable() {
    AUTO.store(false, Relaxed);
    STARTUP_LEFT.store(0, Relaxed);
    crate::sampled_table::lift_limit();
    CAPTURE.store(0, Relaxed);
}

/// A sample of the policy's capture was recorded (from the allocation
/// path): during the start-up, one fewer to take; the last one drops
/// capture to sparse sampling.
#[inline]
pub(crate) fn startup_sampled() {
    if STARTUP_LEFT.load(Relaxed) == 0 {
        return;
    }
    let left = STARTUP_LEFT.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    if left == Ok(1) && CAPTURE.compare_exchange(1, 0, Relaxed, Relaxed).is_ok() {
        crate::registry::reset_countdowns();
    }
}

/// The longest graded interval (1 TiB): past it a shard would need more
/// records than it has to step again.
const LAST_GRADED: u64 = 1 << 40;

/// The capture for a table whose shards hold `per_shard` records each:
/// every allocation below [`HALF_FULL`]; past it, an interval of
/// [`FIRST_GRADED`] bytes doubled every [`STEP_RECORDS`] records (beyond
/// the default interval too, up to [`LAST_GRADED`], so that the policy's
/// capture never fills the table). A block of `s` bytes is sampled with
/// probability `1 - exp(-s / interval)` and weighs its inverse, so each
/// step halves the records a small block leaves while estimates stay
/// unbiased.
fn graded(per_shard: usize) -> u64 {
    let Some(past) = per_shard.checked_sub(HALF_FULL) else {
        return 1;
    };
    let step = (past / STEP_RECORDS).min(40) as u32;
    (FIRST_GRADED << step).min(LAST_GRADED)
}

/// Orders captures from densest to sparsest (0, the configured mode, is
/// the sparsest).
fn sparseness(capture: u64) -> u64 {
    if capture == 0 {
        u64::MAX
    } else {
        capture
    }
}

/// The policy's step after a snapshot: every snapshot
/// ([`crate::snapshot()`], [`crate::snapshot_with_retention`]) calls it, in
/// the tool's scope, with its epoch and live bytes per birth epoch, once
/// the slots are summed and before the sampled blocks are read. It
/// switches dense or graded capture on or off (and resets every thread's
/// countdown when the capture changes); it does nothing once a mode was
/// set. `older` and `newer` below are the epochs of the two snapshots
/// before this one.
pub(crate) fn after_snapshot(epoch: u32, epochs: &[EpochLive]) {
    let marks = match MARKS.fetch_update(Relaxed, Relaxed, |m| Some(pack(m as u32, epoch))) {
        Ok(m) | Err(m) => m,
    };
    let (older, newer) = ((marks >> 32) as u32, marks as u32);
    if !auto() || older == NEVER || newer == NEVER || older >= newer {
        return;
    }
    // The snapshots decide from here on; the start-up's end must not undo
    // their decision.
    STARTUP_LEFT.store(0, Relaxed);
    let survivors: u64 = epochs
        .iter()
        .filter(|e| e.first < newer && e.last >= older)
        .map(|e| e.live_bytes)
        .sum();
    let quiet = if survivors > 0 {
        QUIET.store(0, Relaxed);
        0
    } else {
        QUIET.fetch_add(1, Relaxed).saturating_add(1)
    };
    // Off only after two quiet snapshots in a row: one interval without
    // cycles (two snapshots with nothing run between them) proves nothing.
    let on = quiet < 2 && (survivors > 0 || capture() != 0);
    let per_shard = crate::sampled_table::live() as usize / SHARDS;
    // While capture stays on it only ever thins out: the shards' average
    // is below the fullest shard's count, which stepped it between
    // snapshots, and going back and forth at every snapshot would reset
    // every thread's countdown each time.
    let current = capture();
    let want = match graded(per_shard) {
        g if current != 0 && sparseness(current) > sparseness(g) => current,
        g => g,
    };
    set_capture(if on { want } else { 0 });
}

/// A sample of the policy's capture went into a shard that now holds
/// `len` records (at least half full): capture more sparsely now, from
/// the allocation path, when the shard passed the next step, rather than
/// at the next snapshot, so that a long batch does not fill the table.
pub(crate) fn shard_filled(len: usize) {
    let want = graded(len);
    let stepped = CAPTURE.fetch_update(Relaxed, Relaxed, |c| {
        (c != 0 && sparseness(want) > sparseness(c)).then_some(want)
    });
    if stepped.is_ok() {
        crate::registry::reset_countdowns();
    }
}

fn set_capture(c: u64) {
    if CAPTURE.swap(c, Relaxed) != c {
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

    #[test]
    fn graded_capture_halves_at_each_step() {
        assert_eq!(graded(0), 1);
        assert_eq!(graded(HALF_FULL - 1), 1);
        assert_eq!(graded(HALF_FULL), 64);
        assert_eq!(graded(HALF_FULL + STEP_RECORDS - 1), 64);
        assert_eq!(graded(HALF_FULL + STEP_RECORDS), 128);
        assert_eq!(graded(HALF_FULL + 11 * STEP_RECORDS), 128 * 1024);
        // Past the default interval too, to the last step.
        assert_eq!(graded(HALF_FULL + 12 * STEP_RECORDS), 256 * 1024);
        assert_eq!(graded(HALF_FULL + 15 * STEP_RECORDS), 2 << 20);
        assert_eq!(graded(usize::MAX), LAST_GRADED);
        assert!(sparseness(0) > sparseness(LAST_GRADED));
        assert!(sparseness(64) > sparseness(1));
    }
}
