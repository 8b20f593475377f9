//! What a survivor is, in one place: live bytes and blocks ([`Live`],
//! exact; [`Estimate`], sampled) born in an epoch that is closed at the
//! snapshot and not before the series' first snapshot ([`survivors()`]),
//! and the cycles axis every slope is measured against ([`cycles_axis`]).

use alloc_snapshot::{EpochLive, Snapshot};
use serde::Serialize;

use crate::format::SnapshotFile;

/// Live bytes and blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Live {
    /// Bytes.
    pub bytes: u64,
    /// Blocks.
    pub blocks: u64,
}

impl Live {
    /// Adds an entry, saturating (a crafted file must not overflow).
    pub(crate) fn add(&mut self, e: &EpochLive) {
        self.bytes = self.bytes.saturating_add(e.live_bytes);
        self.blocks = self.blocks.saturating_add(e.live_blocks);
    }
}

/// Merges the epoch ranges of several snapshots into disjoint groups, so
/// that a range folded in one snapshot and exact in another land in one row.
pub(crate) fn merged_ranges<'a>(snaps: impl IntoIterator<Item = &'a Snapshot>) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = snaps
        .into_iter()
        .flat_map(|s| s.epochs.iter().map(|e| (e.first, e.last)))
        .collect();
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (f, l) in ranges {
        match out.last_mut() {
            Some(last) if f <= last.1 => last.1 = last.1.max(l),
            _ => out.push((f, l)),
        }
    }
    out
}

/// Live bytes and blocks of `s` inside the range `first..=last`.
pub(crate) fn live_in(s: &Snapshot, first: u32, last: u32) -> Live {
    let mut live = Live::default();
    for e in s
        .epochs
        .iter()
        .filter(|e| e.first >= first && e.last <= last)
    {
        live.add(e);
    }
    live
}

/// Estimated live bytes and blocks (from sampled call-site data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// Bytes.
    pub bytes: f64,
    /// Blocks.
    pub blocks: f64,
}

impl Estimate {
    pub(crate) fn add(&mut self, bytes: f64, blocks: f64) {
        self.bytes += bytes;
        self.blocks += blocks;
    }
}

/// Where the cycle axis came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CyclesSource {
    /// The `cycles` field of every file.
    Sidecar,
    /// One cycle per epoch advance.
    Epochs,
}

/// Cycles completed at each snapshot, counted from the first, and the source.
#[must_use]
pub(crate) fn cycles_axis(series: &[SnapshotFile]) -> (Vec<u64>, CyclesSource) {
    let cycles: Vec<Option<u64>> = series.iter().map(|f| f.cycles).collect();
    let epochs: Vec<u32> = series.iter().map(|f| f.snapshot.epoch).collect();
    axis(&cycles, &epochs)
}

/// [`cycles_axis`] from each snapshot's `cycles` field and epoch: the
/// cycles field relative to the first when every snapshot has one, else
/// one cycle per epoch advance since the first.
pub(crate) fn axis(cycles: &[Option<u64>], epochs: &[u32]) -> (Vec<u64>, CyclesSource) {
    if let Some(&Some(c0)) = cycles.first() {
        if cycles.iter().all(Option::is_some) {
            let axis = cycles
                .iter()
                .map(|c| c.unwrap_or(c0).saturating_sub(c0))
                .collect();
            return (axis, CyclesSource::Sidecar);
        }
    }
    let e0 = epochs.first().copied().unwrap_or(0);
    let axis = epochs
        .iter()
        .map(|&e| u64::from(e.saturating_sub(e0)))
        .collect();
    (axis, CyclesSource::Epochs)
}

/// Survivors of `s` for a series that started at `start_epoch`: live in
/// entries whose last epoch is closed at `s` and not before `start_epoch`.
/// With `start_epoch` 0 these are every closed epoch's blocks, what
/// `/metrics` reports as `alloc_core_survivor_*` and
/// [`Snapshot::live_born_before`] gives for the snapshot's own epoch.
#[must_use]
pub fn survivors(s: &Snapshot, start_epoch: u32) -> Live {
    let mut live = Live::default();
    for e in s
        .epochs
        .iter()
        .filter(|e| e.last >= start_epoch && e.last < s.epoch)
    {
        live.add(e);
    }
    live
}
