//! Pure analysis of snapshots: diffs, the survivor matrix, verdicts.
//!
//! No I/O here but the source lines a report quotes ([`Source`]). Everything takes [`SnapshotFile`](crate::SnapshotFile)s (a snapshot plus the
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
//! | `verdict.rs` | the verdict rules ([`VerdictKind`]): a site's series, its trend, the false-discovery control |
//! | `report.rs` | [`Report`] and the types it holds |
//! | `analyzer.rs` | the streaming [`Analyzer`] (and [`analyze`]) |
//! | `detail.rs` | what a report shows beyond verdicts: survivors by birth epoch ([`HeapBirths`], [`SiteBirth`]), each site's source lines ([`SiteDetail`]) |
//! | `stack.rs` | the stacks a report shows ([`SiteStack`]), each frame marked by whose code it is ([`FrameOwner`]) |
//! | `growth.rs` | growth of existing blocks (held memory rising in steps: [below](#growth-of-existing-blocks)) |
//! | `confidence.rs` | a sampled site's confidence capped by its samples ([`sample_floor`]), the "uncertain" words |
//! | `agreement.rs` | whether the `leak` sites explain the whole heap's leak ([`SiteAgreement`], in [`Report::agreement`]) |
//! | `source.rs` | the source lines a report quotes ([`Source`]): the analysis's only reading of anything but snapshots |
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
//! Each site gets a verdict by the rules of [`VerdictKind`]; with many sites, a fixed level
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
//! ([growth of existing blocks](#growth-of-existing-blocks)).
//!
//! # Growth of existing blocks
//!
//! Growth of blocks that already exist is the leak of a collection that
//! only grows (a `Vec` pushed to, a `HashMap` inserted into, a `String`
//! appended to), which the survivor rule of [`VerdictKind`] does not see.
//!
//! alloc-core counts a `realloc` as the block leaving its epoch and joining
//! the current one, and a hash table grows by allocating a bigger table and
//! freeing the old one. So a collection that only grows shows as *held*
//! memory (live, born in any closed epoch, including before the series
//! started) that rises in steps while the number of held blocks does not:
//! each doubling of its capacity replaces one block by a bigger one. It
//! has one birth epoch at any time (that of its last growth), so the
//! survivor rule, which wants survivors born in several epochs of the
//! window, calls it a plateau.
//!
//! ## The rule
//!
//! Over the whole run the held bytes `y` and blocks `n` at each snapshot,
//! and the same trend window as the survivor rule (the later part of the
//! run). Growth of existing blocks is a leak when all of these hold:
//!
//! - **it keeps growing in the later part of the run**: the held bytes at
//!   the end of the window exceed those at its start by at least
//!   one page (4 KiB), and the window gives back at most an eighth of
//!   what it gained (falls between snapshots sum to at most 1/8 of the
//!   rises): a buffer released after a burst (`shrink_to_fit`) gives it
//!   all back;
//! - **it grew before, at a rate it keeps**: at least two steps of at least
//!   1/8 of that rise over the run, so one buffer allocated once, late, is
//!   not growth (a collection that doubles makes steps of half its size
//!   each time); and the last step's size over the cycles since the step
//!   before is at least a quarter of that of the step before (a collection
//!   that doubles at a steady rate waits twice as long for each step twice
//!   as large: the same rate; a capped hash table that doubles once more,
//!   long after it filled, when deletions have left tombstones, does not);
//! - **no new blocks carry it**: the held blocks at the end of the window
//!   are at most those at its start plus one (plus 1% for exact counts of
//!   a whole program), so this is existing blocks that grow; new blocks
//!   that survive are the survivor rule's business.
//!
//! A cache or buffer that reached its size before the window (a `Vec`
//! cleared and reused, a map capped at N entries) makes no rise in it. A
//! collection that doubled only before the window and not inside it cannot
//! be told from one that stopped; a soak long enough to double it again
//! shows it.
//!
//! The reported bytes per cycle is the rise over the window divided by its
//! cycles: for a collection that doubles, the growth of its capacity,
//! between one and two times (over the load factor, for a hash table) the
//! bytes the program adds per cycle. The verdict names the kind of growth
//! ([`GrowthKind`]).
//!
//! Sites: the same rule on a site's estimates. Blocks of 64 KiB and more are
//! always sampled (weight 1) and a realloc is sampled at the line that
//! resized the block, so a collection past that size is seen, exactly, at
//! the `push` or `insert` that grows it. A small block sampled with a large
//! weight adds many estimated blocks at once and is never taken for growth.

mod agreement;
mod analyzer;
mod cause;
mod confidence;
mod detail;
mod diff;
mod growth;
mod matrix;
mod report;
mod site;
mod source;
mod stack;
mod survivors;
mod verdict;

pub use agreement::EXPLAINED;

pub use analyzer::{analyze, Analyzer};
pub use cause::{Cause, CauseKind};
pub use confidence::sample_floor;
pub use detail::{BirthLayers, HeapBirths, SiteBirth, SiteDetail};
pub use diff::{diff, diff_in, Change, DiffRow, SiteDiff, SiteEpochDiff, SnapshotDiff};
pub use matrix::{
    site_survivor_matrix, site_survivor_matrix_in, survivor_matrix, MatrixRow, SiteMatrix,
    SiteMatrixRow, SurvivorMatrix,
};
pub use report::{
    HistogramSummary, ProfileEntry, Quantiles, Report, ReportPoint, ResourceGrowth,
    SamplingSummary, SiteAgreement, SiteCurve, SurvivorProfile, SITE_CURVES,
};
pub use site::ALL_SITES;
pub use source::Source;
pub use stack::{FrameOwner, SiteStack, StackFrame, SITE_STACKS};
pub use survivors::{survivors, CyclesSource, Estimate, Live};
pub use verdict::{ClassifyOptions, Growth, GrowthKind, Verdict, VerdictKind};

/// A `HashMap` with the analyser's hasher (`rustc_hash`'s `FxHasher`: its
/// tables of labels and stack ids hash hundreds of thousands of short keys
/// per report; the input is the user's own files, so resistance to crafted
/// collisions is not needed).
pub(crate) type HashMap<K, V> = rustc_hash::FxHashMap<K, V>;
