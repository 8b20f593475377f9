//! Pure analysis of snapshots: diffs, the survivor matrix, verdicts.
//!
//! No I/O here but the source lines a report quotes ([`crate::source`]). Everything takes [`SnapshotFile`](crate::SnapshotFile)s (a snapshot plus the
//! optional cycle count of its file) and returns plain data that the
//! renderers print.
//!
//! Its files (private modules; everything public is re-exported here):
//!
//! | file | owns |
//! |---|---|
//! | `survivors.rs` | what a survivor is ([`survivors()`]), [`Live`]/[`Estimate`], the cycles axis |
//! | `site.rs` | grouping a snapshot's stacks into sites (the site table over [`alloc_snapshot::SiteKey`]) |
//! | `diff.rs` | [`diff()`] of two snapshots, by birth epoch and per site ([`diff_in`]: sites named relative to their workspace) |
//! | `matrix.rs` | [`survivor_matrix`] and [`site_survivor_matrix`] ([`site_survivor_matrix_in`]) |
//! | `verdict.rs` | the verdict rules: [`classify`], [`SiteSeries`], the false-discovery control |
//! | `report.rs` | [`Report`] and the types it holds |
//! | `analyzer.rs` | the streaming [`Analyzer`] (and [`analyze`]) |
//! | `detail.rs` | what a report shows beyond verdicts: survivors by birth epoch ([`HeapBirths`], [`SiteBirth`]), each site's source lines ([`SiteDetail`]) |
//! | `cause.rs` | why a leak site's survivors are alive ([`Cause`], [`CauseKind`]), from a retention scan |
//!
//! # Sites
//!
//! A *site* is a symbolised call site: a stack's user frame (the innermost
//! frame of the program's own code, `alloc_snapshot::trim`), named by its
//! label ([`Stack::label`](alloc_snapshot::Stack::label), `file:line
//! function`, with `-> library::call` when it called a dependency). A leak
//! verdict lists the site's stacks ([`Verdict::stacks`]). Stacks of one site
//! (one [`alloc_snapshot::SiteKey`]: the same line reached through
//! different callers, or the same line in another snapshot or process,
//! where stack ids differ) are added together, so that sites match across
//! a series; [`alloc_snapshot::site`] is the one definition. The full stacks are kept for the
//! pprof and folded-stack renderers ([`SurvivorProfile`]).
//!
//! Per-site figures are the snapshot's sampled estimates
//! ([`Snapshot::sites`](alloc_snapshot::Snapshot::sites)); the whole heap (the report's `overall` verdict)
//! comes from the exact epoch counters. A series without call-site data
//! (sampling off, or version 1 files) has one site, [`ALL_SITES`], the whole
//! heap.
//!
//! # Verdicts per site
//!
//! Each site gets [`classify`]'s verdict; with many sites, a fixed level
//! would call about `alpha` of the stationary ones leaks by chance, so
//! [`analyze`] also applies the Benjamini–Hochberg false-discovery control
//! at level `alpha` across the sites, and a leak needs survivors from at
//! least [`ClassifyOptions::min_leak_epochs`] birth epochs inside the
//! trend window (one late allocation that stays is not a leak).
//!
//! # Cycles
//!
//! The x axis of every slope is soak cycles. When every file of a series has
//! a `cycles` field (written by the soak driver), that is used, relative to
//! the first file. Otherwise each epoch advance counts as one cycle.
//!
//! # Survivors
//!
//! Survivors at snapshot *k* are the live bytes and blocks born in epochs
//! that are closed at *k* (`epoch < snapshot.epoch`) and not before the
//! first snapshot's epoch, so what the program allocated before the series
//! started is left out ([`survivors()`]). A folded bucket that reaches the
//! start epoch counts whole (its pre-series part is constant, so it shifts
//! survivors but not their slope). This is narrower than the survivors of
//! one snapshot on its own (`/metrics`, [`Snapshot::live_born_before`](alloc_snapshot::Snapshot::live_born_before):
//! every closed epoch); what the series started with is *held* memory
//! ([`crate::growth`]).

mod analyzer;
mod cause;
mod detail;
mod diff;
mod matrix;
mod report;
mod site;
mod survivors;
mod verdict;

pub use analyzer::{analyze, Analyzer};
pub use cause::{Cause, CauseKind};
pub use detail::{HeapBirths, SiteBirth, SiteDetail};
pub use diff::{diff, diff_in, Change, DiffRow, SiteDiff, SiteEpochDiff, SnapshotDiff};
pub use matrix::{
    site_survivor_matrix, site_survivor_matrix_in, survivor_matrix, MatrixRow, SiteMatrix,
    SiteMatrixRow, SurvivorMatrix,
};
pub use report::{
    FrameOwner, HistogramSummary, ProfileEntry, Quantiles, Report, ReportPoint, ResourceGrowth,
    SamplingSummary, SiteCurve, SiteStack, StackFrame, SurvivorProfile, SITE_CURVES, SITE_STACKS,
};
pub use site::ALL_SITES;
pub use survivors::{cycles_axis, survivors, CyclesSource, Estimate, Live};
pub use verdict::{classify, ClassifyOptions, SiteSeries, Verdict, VerdictKind, DENSE_SAMPLES};

/// A `HashMap` with the analyser's hasher (`rustc_hash`'s `FxHasher`: its
/// tables of labels and stack ids hash hundreds of thousands of short keys
/// per report; the input is the user's own files, so resistance to crafted
/// collisions is not needed).
pub(crate) type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;
