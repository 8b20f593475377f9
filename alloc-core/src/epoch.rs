//! The current epoch: one global counter, read on every allocation.

use crate::counters::MAX_EPOCH;
use core::sync::atomic::{AtomicU32, Ordering::*};

/// The epoch new blocks are born in, alone on its cache line: every
/// allocation on every thread reads it (a relaxed load, a plain `mov`), and
/// only `advance_epoch` writes it, so no other write may share the line.
#[repr(align(128))]
pub(crate) struct Current(pub(crate) AtomicU32);

pub(crate) static EPOCH: Current = Current(AtomicU32::new(0));

/// The current epoch.
#[inline]
#[must_use]
pub fn epoch() -> u32 {
    EPOCH.0.load(Relaxed)
}

/// Closes the current epoch and opens the next one; returns the new epoch.
///
/// Blocks allocated from now on (by any thread) are born in the new epoch;
/// blocks already live keep their birth epoch. The epoch saturates at
/// [`crate::MAX_EPOCH`] (2^31 - 3, two billion advances): past that, every new block is born
/// in that last epoch.
pub fn advance_epoch() -> u32 {
    match EPOCH.0.fetch_update(AcqRel, Relaxed, |e| {
        Some(e.saturating_add(1).min(MAX_EPOCH))
    }) {
        Ok(prev) | Err(prev) => prev.saturating_add(1).min(MAX_EPOCH),
    }
}
