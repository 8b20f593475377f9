//! Turns a series of `alloc-core` snapshots into survivors, trends and
//! verdicts: is memory that outlives its cycle growing (a leak), holding (a
//! cache or pool), or only left from warm-up?
//!
//! This crate depends on [`alloc_snapshot`], never on `alloc-core`, and
//! never installs a global allocator: it reads files (snapshots, and the
//! measured program's binaries for their debug information) and does
//! arithmetic.
//!
//! # Vocabulary
//!
//! - **epoch**: a numbered interval of the measured program's life; every
//!   block carries its *birth epoch*. (Not jemalloc's `epoch` mallctl, which
//!   only refreshes jemalloc's statistics.)
//! - **snapshot**: live bytes and blocks by birth epoch at one instant, and
//!   (when alloc-core samples call sites) estimated live bytes per call
//!   stack and birth epoch.
//! - **site**: a symbolised call site, `file:line function` of a stack's
//!   innermost frame of the program's own code (not the standard
//!   library, not a dependency from a registry, a git checkout or a
//!   `vendor/` directory), with `-> library::call` when it called a
//!   dependency ([`SiteRule`]); stacks with the same site are added
//!   together.
//! - **survivor**: a block born in an epoch that has closed, still live.
//! - **cycle**: one connect/use/disconnect round of a soak test.
//! - **verdict**: `leak`, `plateau`, `warmup` or `ok`; see
//!   [`analysis::VerdictKind`].
//!
//! # Files
//!
//! One snapshot is one file of versioned, self-describing JSON
//! (`{"format":"alloc-snapshot","version":4,"cycles":N,"snapshot":{...},"checksum":"..."}`;
//! version 3 files, without the run identity, version 2 files, without
//! the loaded modules, and version 1 files, without call sites, still
//! read); a series (one process run) is a directory of `000000.json`,
//! `000001.json`, ... written by [`SeriesWriter`], numbered without a gap,
//! every file of the first file's run. Writes are atomic; reads are strict,
//! of regular files of at most [`format::MAX_FILE_BYTES`], and every
//! failure names the file and the problem. See [`mod@format`].
//!
//! The optional `cycles` field is the soak driver's count of cycles done at
//! the snapshot. If every file of a series has it, slopes are per those
//! cycles; otherwise one epoch advance counts as one cycle.
//!
//! # Analysis
//!
//! [`analysis`] holds pure functions: [`analysis::diff()`] of two snapshots
//! (by birth epoch, and by call site and birth epoch), the
//! [`analysis::survivor_matrix`] of a series (and
//! [`analysis::site_survivor_matrix`] per site), and [`analyze`], which
//! gives the whole heap a verdict from the exact epoch counters
//! ([`Report::overall`]) and every call site one from its sampled estimates
//! ([`Report::sites`], leaks first): a robust slope and a Mann–Kendall
//! trend test over the later part of the run, with a
//! false-discovery control across sites; and a collection that only grows
//! (existing blocks that grow, in steps, while no new blocks survive) is a
//! leak too ([`analysis::GrowthKind`]). A series without call-site data
//! has one site, [`analysis::ALL_SITES`], the whole heap. [`Analyzer`] does
//! the same one snapshot at a time, for series too long to hold in memory.
//!
//! # Symbolisation
//!
//! A snapshot from `alloc_core::snapshot()` or the admin endpoint carries
//! raw call stacks and the modules the process had loaded. A [`Symbolizer`]
//! resolves them offline from the binaries on disk (checked by GNU build
//! id; [`Symbolizer::use_file`] for a binary that moved or was rebuilt):
//! function, file and line, one frame per inlined function, and each
//! stack's site frame by the same rules as `alloc_core::symbolize`
//! ([`alloc_snapshot::trim`]; [`Symbolizer::set_site_rule`] for the first
//! frame past the standard library, whatever its crate). Symbolise before [`Analyzer::push`]: a
//! site is a symbolised label. The CLI does this for every file it reads
//! (`--binary FILE`). See [`mod@symbolize`].
//!
//! A site's file is named relative to its workspace
//! (`alloc-core/admin/src/routes.rs`, as `cargo`'s diagnostics name it)
//! when its root is known: a [`WorkspaceFinder`] looks the roots up on disk
//! and [`Analyzer::push_in`] names sites with them, as the CLI and
//! `alloc-soak` do; without them, [`mod@alloc_snapshot::short_path`]'s form.
//!
//! # Renderers
//!
//! [`render`]: a terminal table, JSON, a self-contained HTML page with SVG
//! plots, folded stacks, and a gzipped pprof profile of the survivors with
//! the birth epoch as the numeric label `birth_epoch` ([`mod@pprof`]).
//!
//! # Example
//!
//! ```
//! use alloc_report::analysis::{analyze, ClassifyOptions, VerdictKind};
//! use alloc_report::{read_series, SeriesWriter};
//! use alloc_snapshot::{EpochLive, Snapshot, ToolUsage, Totals};
//!
//! // A program that leaks one 64-byte block in every epoch.
//! let dir = std::env::temp_dir().join(format!("alloc-report-doc-{}", std::process::id()));
//! let _ = std::fs::remove_dir_all(&dir);
//! let mut writer = SeriesWriter::create(&dir).unwrap();
//! for epoch in 0..20u32 {
//!     let epochs: Vec<EpochLive> = (0..epoch)
//!         .map(|e| EpochLive { first: e, last: e, live_bytes: 64, live_blocks: 1 })
//!         .collect();
//!     let snapshot = Snapshot {
//!         epoch,
//!         timestamp_unix_ns: 0,
//!         exact_window: 1024,
//!         totals: Totals {
//!             live_bytes: 64 * u64::from(epoch),
//!             live_blocks: u64::from(epoch),
//!             ..Totals::default()
//!         },
//!         epochs,
//!         rss_bytes: None,
//!         allocator: None,
//!         tool: ToolUsage::default(),
//!         ..Snapshot::default()
//!     };
//!     writer.append(&snapshot, None).unwrap();
//! }
//!
//! let series = read_series(&dir).unwrap();
//! let report = analyze(&series, &ClassifyOptions::default());
//! assert_eq!(report.overall.kind, VerdictKind::Leak);
//! assert_eq!(report.overall.bytes_per_cycle, 64.0);
//! // No call sites in these snapshots: the one site is the whole heap.
//! assert_eq!(report.sites[0].site, alloc_report::analysis::ALL_SITES);
//! println!("{}", alloc_report::render::report_text(&report));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! # Command line
//!
//! The `alloc-report` binary wraps this library: `show`, `diff`, `report`
//! (`--format text|json|html|pprof|folded`) and `check` (exit status 1 on a
//! leak, for CI), each symbolising raw stacks as it reads them
//! (`--binary FILE` to name the file of a module). Run `alloc-report --help`.

#![forbid(unsafe_code)]

pub mod analysis;
/// The snapshot file format, which lives in [`alloc_snapshot::file`] so that
/// the collector's side can write it without linking this crate.
pub use alloc_snapshot::file as format;
pub mod pprof;
pub mod render;
pub(crate) mod stats;
pub mod symbolize;
pub mod workspace;

pub use alloc_snapshot::trim::SiteRule;
pub use alloc_snapshot::Workspaces;
pub use analysis::{analyze, Analyzer, ClassifyOptions, Report, Verdict, VerdictKind};
pub use format::{
    read_path, read_series, read_snapshot_file, write_snapshot_file, ReadError, SeriesReader,
    SeriesWriter, SnapshotFile,
};
pub use symbolize::{SymbolizeError, Symbolizer};
pub use workspace::WorkspaceFinder;
