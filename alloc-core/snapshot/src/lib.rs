//! Plain data types of an epoch snapshot.
//!
//! This crate is the only thing the collector (`alloc-core`, which runs inside
//! the measured program as its global allocator) and the analyser
//! (`alloc-report`) share. It holds data and small pure helpers, no I/O and no
//! allocator, so the report side never links the allocation path it analyses.
//!
//! # Vocabulary
//! - **epoch**: a numbered interval of the program's life, advanced by
//!   `alloc_core::advance_epoch()`. Every heap block carries the epoch that was
//!   current when it was allocated (its *birth epoch*). This is *not*
//!   jemalloc's `epoch` mallctl, which only refreshes jemalloc's statistics.
//! - **block**: one live heap allocation.
//! - **survivor**: a block born in an epoch that has closed and still live at
//!   a snapshot.

use serde::{Deserialize, Serialize};

/// The accounting state of one process at one instant.
///
/// Counts are exact: the sum over [`Snapshot::epochs`] equals
/// [`Totals::live_bytes`] and [`Totals::live_blocks`]. A snapshot taken while
/// other threads allocate is not an atomic cut across threads (each thread's
/// counters are read one after the other); at quiescence it is exact to the
/// byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The epoch current when the snapshot was taken.
    pub epoch: u32,
    /// Wall-clock time of the snapshot, in nanoseconds since the Unix epoch.
    pub timestamp_unix_ns: u64,
    /// How many of the most recent epochs are kept exact, one entry each.
    /// Older epochs are folded into coarser buckets (see [`EpochLive`]).
    pub exact_window: u32,
    /// Totals over all birth epochs (the user's heap only).
    pub totals: Totals,
    /// Live bytes and blocks by birth epoch, oldest first. Entries of the
    /// recent window cover one epoch (`first == last`); older entries cover a
    /// range. Ranges never overlap. Epochs with nothing live are omitted.
    pub epochs: Vec<EpochLive>,
    /// Resident set size of the process from `/proc/self/statm`, in bytes
    /// (`None` where that file is unavailable).
    pub rss_bytes: Option<u64>,
    /// Statistics of the inner allocator, where it reports them (jemalloc).
    pub allocator: Option<AllocatorStats>,
    /// Memory used by the tool itself (never counted as the user's).
    pub tool: ToolUsage,
}

impl Snapshot {
    /// Live bytes and blocks born strictly before `epoch`: the survivors, when
    /// `epoch` is the first epoch that is still open.
    pub fn live_born_before(&self, epoch: u32) -> (u64, u64) {
        self.epochs
            .iter()
            .filter(|e| e.last < epoch)
            .fold((0, 0), |(b, n), e| (b + e.live_bytes, n + e.live_blocks))
    }

    /// The entry whose range contains `epoch`, if anything born then is live.
    pub fn epoch_entry(&self, epoch: u32) -> Option<&EpochLive> {
        self.epochs
            .iter()
            .find(|e| e.first <= epoch && epoch <= e.last)
    }
}

/// Exact totals of the user's heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Bytes in live blocks (as requested by the program, not rounded up).
    pub live_bytes: u64,
    /// Number of live blocks.
    pub live_blocks: u64,
    /// Allocations since start (`alloc` and `alloc_zeroed`).
    pub allocs: u64,
    /// Frees since start (`dealloc`).
    pub frees: u64,
    /// Successful reallocations since start (a realloc keeps its block's birth
    /// epoch and counts neither as an allocation nor as a free).
    pub reallocs: u64,
}

/// Live bytes and blocks born in the epochs `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochLive {
    /// First birth epoch covered.
    pub first: u32,
    /// Last birth epoch covered (equal to `first` inside the exact window).
    pub last: u32,
    /// Bytes in live blocks born in these epochs.
    pub live_bytes: u64,
    /// Live blocks born in these epochs.
    pub live_blocks: u64,
}

/// Statistics read from the inner allocator at the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatorStats {
    /// Which allocator reported them (`"jemalloc"`).
    pub name: String,
    /// jemalloc `stats.allocated`: bytes allocated by the application.
    pub allocated: u64,
    /// jemalloc `stats.resident`: bytes in physically resident data pages.
    pub resident: u64,
    /// jemalloc `stats.retained`: bytes retained (unmapped-but-kept) virtual memory.
    pub retained: u64,
}

/// What the tool itself uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolUsage {
    /// Bytes in live blocks allocated by the tool (snapshots, tables).
    pub live_bytes: u64,
    /// Live blocks allocated by the tool.
    pub live_blocks: u64,
    /// Accounting metadata in use, in bytes: the per-thread counter slots
    /// ever claimed (about 14 KiB each, reused as threads come and go) plus
    /// the page-table leaves mapped for large blocks' tags (1 MiB of address
    /// space each, one per GiB the heap reaches; only the pages where tags
    /// are written become resident).
    pub metadata_bytes: u64,
    /// Threads that currently own a counter slot.
    pub threads: u64,
}
