//! Plain data types of an epoch snapshot.
//!
//! It also owns the snapshot file format ([`mod@file`]): the collector's
//! admin endpoint writes it and the analyser reads it. Its only I/O is that
//! format's on disk: reading files and series directories, appending to a
//! series, and [`file::write_atomic`], the one atomic file writer of the
//! workspace. Everything else here (the types, [`file::encode`] and
//! [`file::decode`], `pprof`) works on memory.
//!
//! This crate is the only thing the collector (`alloc-core`, which runs inside
//! the measured program as its global allocator) and the analyser
//! (`alloc-report`) share. It holds data, small pure helpers and the file format, and no
//! allocator, so the report side never links the allocation path it analyses.
//!
//! # Vocabulary
//! - **epoch**: a numbered interval of the program's life, advanced by
//!   `alloc_core::advance_epoch()`. Every heap block carries the epoch that was
//!   current when it was allocated (its *birth epoch*). This is *not*
//!   jemalloc's `epoch` mallctl, which only refreshes jemalloc's statistics.
//! - **block**: one live heap allocation.
//! - **survivor**: a block born in an epoch that has closed and still live at
//!   a snapshot. With no other word, every closed epoch counts (what
//!   `/metrics` and [`Snapshot::live_born_before`] report); a report over a
//!   series counts the epochs closed since its first snapshot (see
//!   `alloc_report::analysis::survivors`).
//! - **site**: the frame a call stack is shown by; stacks with one
//!   [`SiteKey`] are one site ([`mod@site`]).

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

pub mod file;
#[cfg(feature = "pprof")]
pub mod pprof;
pub mod retention;
pub mod sampling;
pub mod short_path;
pub mod site;
pub mod trim;
pub use file::{
    read_path, read_series, read_snapshot_file, write_snapshot_file, ReadError, SeriesReader,
    SeriesWriter, SnapshotFile,
};
pub use retention::{Holder, RetainedBlock, Retention, RetentionScan, RetentionThread};
pub use sampling::{SampleMode, Sampling};
pub use short_path::{short_path, Workspaces};
pub use site::{SiteKey, SiteSurvivors};

/// The accounting state of one process at one instant.
///
/// Counts are exact: the sum over [`Snapshot::epochs`] equals
/// [`Totals::live_bytes`] and [`Totals::live_blocks`]. A snapshot taken while
/// other threads allocate is not an atomic cut across threads (each thread's
/// counters are read one after the other); at quiescence it is exact to the
/// byte.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// How allocation sites were sampled for [`Snapshot::sites`].
    #[serde(default)]
    pub sampling: Sampling,
    /// The call stacks that [`Snapshot::sites`] refer to, by [`Stack::id`].
    #[serde(default)]
    pub stacks: Vec<Stack>,
    /// Estimated live bytes and blocks per call stack and birth epoch, from
    /// sampled blocks scaled by their sampling weight. Sorted by stack, then
    /// epoch. Empty when sampling is off.
    #[serde(default)]
    pub sites: Vec<SiteLive>,
    /// Distributions of allocation sizes and of the lifetimes of freed
    /// sampled blocks.
    #[serde(default)]
    pub histograms: Histograms,
    /// The objects loaded in the process (the executable and its shared
    /// libraries): what an offline symboliser needs to turn the raw
    /// instruction pointers of [`Snapshot::stacks`] into function, file and
    /// line from the files on disk. Empty in files written before format
    /// version 3 and where the platform cannot list them.
    #[serde(default)]
    pub modules: Vec<Module>,
    /// The process run the snapshot was taken in ([`RunIdentity`]): a
    /// series holds the snapshots of one run, and its readers refuse a
    /// file of another. `None` in files written before format version 4
    /// and in snapshots made up by programs (tests, examples).
    #[serde(default)]
    pub run: Option<RunIdentity>,
    /// What holds the sampled survivors, when the snapshot was taken with a
    /// retention scan (see [`retention`]); `None` otherwise, and in files
    /// written before format version 5.
    #[serde(default)]
    pub retention: Option<Retention>,
}

/// Which process run a snapshot belongs to. Two snapshots are of one run
/// exactly when their identities are equal; `alloc-core` computes it once
/// per process, at its first snapshot (again in a forked child, whose pid
/// differs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The process id.
    pub pid: u32,
    /// When the process started, in nanoseconds since the Unix epoch, as
    /// the kernel records it (clock-tick resolution); 0 where unknown.
    pub started_unix_ns: u64,
    /// 128 random bits drawn once per process, as 32 lowercase hex digits:
    /// tells apart runs that share a pid and a start time (a pid reused in
    /// another container).
    pub id: String,
}

impl std::fmt::Display for RunIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} run {}", self.pid, self.id)
    }
}

impl Snapshot {
    /// Live bytes and blocks born strictly before `epoch`: the survivors, when
    /// `epoch` is the first epoch that is still open.
    #[must_use]
    pub fn live_born_before(&self, epoch: u32) -> (u64, u64) {
        self.epochs
            .iter()
            .filter(|e| e.last < epoch)
            .fold((0, 0), |(b, n), e| (b + e.live_bytes, n + e.live_blocks))
    }

    /// The entry whose range contains `epoch`, if anything born then is live.
    #[must_use]
    pub fn epoch_entry(&self, epoch: u32) -> Option<&EpochLive> {
        self.epochs
            .iter()
            .find(|e| e.first <= epoch && epoch <= e.last)
    }

    /// The loaded module whose code holds `ip`, if the snapshot lists one.
    #[must_use]
    pub fn module_of(&self, ip: u64) -> Option<&Module> {
        self.modules.iter().find(|m| m.contains(ip))
    }

    /// The stack with this id.
    #[must_use]
    pub fn stack(&self, id: u32) -> Option<&Stack> {
        // Stacks are written sorted by id; fall back to a scan if not.
        match self.stacks.binary_search_by_key(&id, |s| s.id) {
            Ok(i) => Some(&self.stacks[i]),
            Err(_) => self.stacks.iter().find(|s| s.id == id),
        }
    }
}

/// One captured call stack, innermost frame first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// The id that [`SiteLive::stack`] refers to. Id 0 is the overflow stack
    /// (no frames) that collects samples once the stack table is full.
    pub id: u32,
    /// Frames, innermost first. An instruction pointer that covers inlined
    /// calls gives one frame per inlined function, all with the same `ip`.
    pub frames: Vec<Frame>,
    /// Index into `frames` of the stack's site frame: by the default rule
    /// the innermost frame of the program's own code, past the tool's own
    /// frames, the allocator machinery of `alloc`, `core` and `std` and
    /// the dependencies' frames ([`trim::user_frame`], [`trim::SiteRule`]).
    /// `None` before symbolisation or when no frame qualifies.
    pub user_frame: Option<u32>,
}

impl Stack {
    /// The frame to show for this stack: the user frame if known, else
    /// the innermost frame.
    #[must_use]
    pub fn site(&self) -> Option<&Frame> {
        match self.user_frame {
            Some(i) => self.frames.get(i as usize),
            None => self.frames.first(),
        }
    }

    /// The frames a profile shows: from the user frame outwards (the
    /// allocator machinery, the tool's capture frames and the library
    /// calls inside it are left out, so that a profile's leaf is the site;
    /// [`Stack::library_call`] names the library call); all frames when
    /// the user frame is unknown.
    #[must_use]
    pub fn shown_frames(&self) -> &[Frame] {
        match self.user_frame {
            Some(i) if (i as usize) < self.frames.len() => &self.frames[i as usize..],
            _ => &self.frames,
        }
    }

    /// A one-line label for this stack's site ([`SiteKey::label`]):
    /// `file:line function` of its site frame, with the file's short form,
    /// or the raw address when not symbolised. Stacks with one label are
    /// one site ([`mod@site`]).
    #[must_use]
    pub fn label(&self) -> String {
        self.site_key().label()
    }
}

/// One frame of a call stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The instruction pointer (a return address, as captured).
    pub ip: u64,
    /// The demangled function name, once symbolised.
    pub function: Option<String>,
    /// The source file, once symbolised (and when debug info has it).
    pub file: Option<String>,
    /// The source line, once symbolised (and when debug info has it).
    pub line: Option<u32>,
}

impl Frame {
    /// `file:line function`, with the parts that are known; the address in
    /// hex when nothing is. The file is in its short form
    /// ([`short_path()`]): `demo-server/src/patterns/cycle.rs`,
    /// `tokio-1.54.1/src/runtime/task/mod.rs`.
    #[must_use]
    pub fn label(&self) -> String {
        SiteKey::of_frame(self).label()
    }
}

/// One object loaded in the measured process (the executable or a shared
/// library), as found by `dl_iterate_phdr` when the snapshot was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// The file the process loaded, as the loader names it (for the
    /// executable, the target of `/proc/self/exe`, which ends in
    /// ` (deleted)` once the file was replaced). Not a file for the vDSO
    /// (`linux-vdso.so.1`).
    pub path: String,
    /// The load bias: what was added to the file's virtual addresses to
    /// place it in memory (0 for an executable that is not
    /// position-independent). A file address is `ip - base`.
    pub base: u64,
    /// The module's executable segments in the process's memory, sorted and
    /// disjoint: the instruction pointers of its code fall in one of them.
    pub ranges: Vec<AddrRange>,
    /// The GNU build id (`NT_GNU_BUILD_ID` note) in lowercase hex, `None`
    /// when the file has none. A file on disk is the one that ran only if
    /// its build id is this one.
    pub build_id: Option<String>,
}

impl Module {
    /// Whether `ip` falls in one of the module's ranges.
    #[must_use]
    pub fn contains(&self, ip: u64) -> bool {
        self.ranges.iter().any(|r| r.start <= ip && ip < r.end)
    }
}

/// Addresses `start..end` (end excluded) in the process's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrRange {
    /// The first address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

/// Estimated live memory of one call stack born in one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteLive {
    /// The [`Stack::id`].
    pub stack: u32,
    /// The birth epoch (exact: sampled blocks remember their own epoch).
    pub epoch: u32,
    /// Estimated live bytes: the sum over live sampled blocks of size times
    /// sampling weight. Exact in [`SampleMode::All`].
    pub bytes: f64,
    /// Estimated live blocks: the sum of the sampling weights.
    pub blocks: f64,
    /// How many live sampled blocks the estimate rests on.
    pub samples: u64,
}

/// The histograms a snapshot carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histograms {
    /// Sizes of allocated blocks in bytes, since start (sampled blocks,
    /// each counted with its sampling weight rounded to a whole number).
    pub alloc_size: Histogram,
    /// Lifetimes of freed sampled blocks, in epochs (free epoch minus birth
    /// epoch).
    pub lifetime_epochs: Histogram,
    /// Lifetimes of freed sampled blocks, in nanoseconds.
    pub lifetime_ns: Histogram,
}

/// A log-linear histogram: counts of values in `[low, high]` per bucket,
/// buckets sorted and disjoint, empty buckets omitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// The non-empty buckets, lowest first.
    pub buckets: Vec<Bucket>,
}

/// One histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The lowest value counted here.
    pub low: u64,
    /// The highest value counted here.
    pub high: u64,
    /// How many values fell in `low..=high`.
    pub count: u64,
}

impl Histogram {
    /// The total count.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// The same counts as an [`hdrhistogram::Histogram`] (each bucket's
    /// values recorded at its upper bound), for quantiles and merging.
    #[must_use]
    pub fn to_hdr(&self) -> hdrhistogram::Histogram<u64> {
        let mut h = hdrhistogram::Histogram::<u64>::new(3)
            .expect("3 significant figures is a valid precision");
        for b in &self.buckets {
            // Values beyond hdrhistogram's range (above 2^63) are clamped.
            let v = b.high.min(u64::MAX >> 1);
            // Auto-resizing histograms only fail on overflow of the count.
            let _ = h.record_n(v, b.count);
        }
        h
    }

    /// The value at quantile `q` (0.0 to 1.0), or `None` when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.buckets.is_empty() {
            return None;
        }
        Some(self.to_hdr().value_at_quantile(q.clamp(0.0, 1.0)))
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
    /// Successful reallocations since start. A realloc moves its block to
    /// the current epoch (its old size leaves the birth epoch, its new size
    /// joins the current one) and counts neither as an allocation nor as a
    /// free.
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
    /// ever claimed (about 26 KiB each, reused as threads come and go) plus
    /// the resident pages of the page-table leaves for large blocks' tags
    /// (1 MiB of address space each, one per GiB the heap reaches, resident
    /// only where tags are written) and of the stack table, plus the
    /// sampled-block records mapped. `alloc_core::tool_metadata` gives the
    /// parts.
    pub metadata_bytes: u64,
    /// Threads that currently own a counter slot.
    pub threads: u64,
}
