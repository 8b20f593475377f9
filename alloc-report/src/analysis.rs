//! Pure analysis of snapshots: diffs, the survivor matrix, verdicts.
//!
//! No I/O here. Everything takes [`SnapshotFile`]s (a snapshot plus the
//! optional cycle count of its file) and returns plain data that the
//! renderers print.
//!
//! # Sites
//!
//! Snapshots do not carry call sites yet, so the whole heap is analysed as
//! one site named [`ALL_SITES`]. The classifier works on a [`SiteSeries`]
//! (survivors of one site at each snapshot), so per-site series slot in when
//! snapshots gain per-stack data.
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
//! started is left out. A folded bucket that reaches the start epoch counts
//! whole (its pre-series part is constant, so it shifts survivors but not
//! their slope).

use alloc_snapshot::{EpochLive, Snapshot};
use serde::Serialize;

use crate::format::SnapshotFile;
use crate::stats::{mann_kendall, theil_sen};

/// The name of the one site that stands for the whole heap.
pub const ALL_SITES: &str = "(all)";

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
    fn add(&mut self, e: &EpochLive) {
        self.bytes = self.bytes.saturating_add(e.live_bytes);
        self.blocks = self.blocks.saturating_add(e.live_blocks);
    }
}

/// Merges the epoch ranges of several snapshots into disjoint groups, so
/// that a range folded in one snapshot and exact in another land in one row.
fn merged_ranges<'a>(snaps: impl IntoIterator<Item = &'a Snapshot>) -> Vec<(u32, u32)> {
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
fn live_in(s: &Snapshot, first: u32, last: u32) -> Live {
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

/// One row of a diff: blocks born in `first..=last`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffRow {
    /// First birth epoch of the row.
    pub first: u32,
    /// Last birth epoch of the row.
    pub last: u32,
    /// Live in the old snapshot.
    pub old: Live,
    /// Live in the new snapshot.
    pub new: Live,
    /// Live in new, not accounted for by old (net).
    pub appeared: Live,
    /// Live in old, gone in new (net).
    pub freed: Live,
    /// Live in both.
    pub survived: Live,
}

/// The difference between two snapshots, by birth epoch.
///
/// Snapshots hold net counts, so within one birth epoch a block freed and
/// another allocated between the two snapshots cancel: `survived` is the
/// smaller of old and new, `freed` and `appeared` the rest. For epochs that
/// were already closed at the old snapshot nothing can appear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotDiff {
    /// Epoch of the old snapshot.
    pub old_epoch: u32,
    /// Epoch of the new snapshot.
    pub new_epoch: u32,
    /// One row per birth-epoch group, oldest first.
    pub rows: Vec<DiffRow>,
    /// Sums over the rows (`first`/`last` span all of them).
    pub total: DiffRow,
}

/// Diffs two snapshots by birth epoch.
pub fn diff(old: &Snapshot, new: &Snapshot) -> SnapshotDiff {
    let sub = |a: Live, b: Live| Live {
        bytes: a.bytes - b.bytes,
        blocks: a.blocks - b.blocks,
    };
    let mut total = DiffRow {
        first: 0,
        last: 0,
        old: Live::default(),
        new: Live::default(),
        appeared: Live::default(),
        freed: Live::default(),
        survived: Live::default(),
    };
    let mut rows = Vec::new();
    for (first, last) in merged_ranges([old, new]) {
        let o = live_in(old, first, last);
        let n = live_in(new, first, last);
        let survived = Live {
            bytes: o.bytes.min(n.bytes),
            blocks: o.blocks.min(n.blocks),
        };
        let row = DiffRow {
            first,
            last,
            old: o,
            new: n,
            appeared: sub(n, survived),
            freed: sub(o, survived),
            survived,
        };
        for (t, r) in [
            (&mut total.old, row.old),
            (&mut total.new, row.new),
            (&mut total.appeared, row.appeared),
            (&mut total.freed, row.freed),
            (&mut total.survived, row.survived),
        ] {
            t.bytes = t.bytes.saturating_add(r.bytes);
            t.blocks = t.blocks.saturating_add(r.blocks);
        }
        rows.push(row);
    }
    total.first = rows.first().map_or(0, |r| r.first);
    total.last = rows.last().map_or(0, |r| r.last);
    SnapshotDiff {
        old_epoch: old.epoch,
        new_epoch: new.epoch,
        rows,
        total,
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
pub fn cycles_axis(series: &[SnapshotFile]) -> (Vec<u64>, CyclesSource) {
    let Some(first) = series.first() else {
        return (Vec::new(), CyclesSource::Epochs);
    };
    if let Some(c0) = first.cycles {
        if series.iter().all(|f| f.cycles.is_some()) {
            let axis = series
                .iter()
                .map(|f| f.cycles.unwrap_or(c0).saturating_sub(c0))
                .collect();
            return (axis, CyclesSource::Sidecar);
        }
    }
    let e0 = first.snapshot.epoch;
    let axis = series
        .iter()
        .map(|f| u64::from(f.snapshot.epoch.saturating_sub(e0)))
        .collect();
    (axis, CyclesSource::Epochs)
}

/// Survivors of `s` for a series that started at `start_epoch`.
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

/// Live bytes and blocks by birth epoch (rows) at each snapshot (columns).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SurvivorMatrix {
    /// The first snapshot's epoch.
    pub start_epoch: u32,
    /// Epoch of each snapshot.
    pub epochs: Vec<u32>,
    /// Cycles at each snapshot.
    pub cycles: Vec<u64>,
    /// One row per birth-epoch group, oldest first.
    pub rows: Vec<MatrixRow>,
    /// Survivors at each snapshot.
    pub survivors: Vec<Live>,
}

/// One birth-epoch group of a [`SurvivorMatrix`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatrixRow {
    /// First birth epoch of the group.
    pub first: u32,
    /// Last birth epoch of the group.
    pub last: u32,
    /// Live at each snapshot.
    pub cells: Vec<Live>,
}

/// The survivor matrix of a series.
pub fn survivor_matrix(series: &[SnapshotFile]) -> SurvivorMatrix {
    let start_epoch = series.first().map_or(0, |f| f.snapshot.epoch);
    let (cycles, _) = cycles_axis(series);
    let rows = merged_ranges(series.iter().map(|f| &f.snapshot))
        .into_iter()
        .map(|(first, last)| MatrixRow {
            first,
            last,
            cells: series
                .iter()
                .map(|f| live_in(&f.snapshot, first, last))
                .collect(),
        })
        .collect();
    SurvivorMatrix {
        start_epoch,
        epochs: series.iter().map(|f| f.snapshot.epoch).collect(),
        cycles,
        rows,
        survivors: series
            .iter()
            .map(|f| survivors(&f.snapshot, start_epoch))
            .collect(),
    }
}

/// The survivors of one site across a series: the classifier's input.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSeries {
    /// Site name ([`ALL_SITES`] until snapshots carry call sites).
    pub site: String,
    /// Cycles at each snapshot.
    pub cycles: Vec<u64>,
    /// Survivors at each snapshot.
    pub survivors: Vec<Live>,
    /// The series' first epoch.
    pub start_epoch: u32,
    /// The last snapshot's epoch.
    pub end_epoch: u32,
    /// The newest birth epoch with survivors at the last snapshot.
    pub newest_survivor_epoch: Option<u32>,
}

impl SiteSeries {
    /// The whole heap of `series` as one site.
    pub fn whole_heap(series: &[SnapshotFile]) -> Self {
        let start_epoch = series.first().map_or(0, |f| f.snapshot.epoch);
        let end_epoch = series.last().map_or(start_epoch, |f| f.snapshot.epoch);
        let newest_survivor_epoch = series.last().and_then(|f| {
            f.snapshot
                .epochs
                .iter()
                .filter(|e| e.last >= start_epoch && e.last < f.snapshot.epoch)
                .filter(|e| e.live_bytes > 0 || e.live_blocks > 0)
                .map(|e| e.last)
                .max()
        });
        SiteSeries {
            site: ALL_SITES.to_string(),
            cycles: cycles_axis(series).0,
            survivors: series
                .iter()
                .map(|f| survivors(&f.snapshot, start_epoch))
                .collect(),
            start_epoch,
            end_epoch,
            newest_survivor_epoch,
        }
    }
}

/// The verdict on one site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Survivors grow with the number of cycles.
    Leak,
    /// Survivors grew, then stopped: a cache or a pool.
    Plateau,
    /// Only blocks from the first epochs survive.
    Warmup,
    /// Nothing survives.
    Ok,
}

impl VerdictKind {
    /// The lower-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Leak => "leak",
            VerdictKind::Plateau => "plateau",
            VerdictKind::Warmup => "warmup",
            VerdictKind::Ok => "ok",
        }
    }
}

/// The verdict on one site, with the figures behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The site.
    pub site: String,
    /// leak, plateau, warmup or ok.
    pub kind: VerdictKind,
    /// Theil–Sen slope of survivor bytes per cycle over the window.
    pub bytes_per_cycle: f64,
    /// Theil–Sen slope of survivor blocks per cycle over the window.
    pub blocks_per_cycle: f64,
    /// 1 − p of the one-sided Mann–Kendall test (increasing survivor bytes)
    /// over the window: the confidence that survivors grow.
    pub confidence: f64,
    /// Survivors at the last snapshot.
    pub final_survivors: Live,
    /// How many of the last snapshots the trend was measured over.
    pub window: usize,
    /// One sentence on why.
    pub reason: String,
}

/// Knobs of the classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassifyOptions {
    /// Significance level of the Mann–Kendall test for a leak.
    pub alpha: f64,
    /// The trend is measured over this last fraction of the snapshots...
    pub window_fraction: f64,
    /// ...but over at least this many (or all, if fewer).
    pub min_window: usize,
    /// Survivors all born within this first fraction of the run's epochs
    /// (at least the first epoch) make a warm-up.
    pub warmup_fraction: f64,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions {
            alpha: 0.01,
            window_fraction: 0.5,
            min_window: 8,
            warmup_fraction: 0.1,
        }
    }
}

/// The window length used for `n` points.
fn window_len(n: usize, opts: &ClassifyOptions) -> usize {
    let frac = (n as f64 * opts.window_fraction).ceil() as usize;
    frac.max(opts.min_window).min(n)
}

/// Classifies one site.
///
/// - `ok`: nothing survives at the last snapshot;
/// - `leak`: over the last part of the run (see [`ClassifyOptions`]) the
///   Mann–Kendall test finds survivor bytes increasing at level `alpha` and
///   the Theil–Sen slope is positive;
/// - `warmup`: otherwise, if every survivor was born in the first
///   `warmup_fraction` of the run's epochs;
/// - `plateau`: otherwise (survivors from later epochs, but not growing).
///
/// With fewer than 6 points in the window the test cannot reach 1%, so a
/// short series is never called a leak.
pub fn classify(site: &SiteSeries, opts: &ClassifyOptions) -> Verdict {
    let n = site.survivors.len().min(site.cycles.len());
    let w = window_len(n, opts);
    let x: Vec<f64> = site.cycles[n - w..n].iter().map(|&c| c as f64).collect();
    let yb: Vec<f64> = site.survivors[n - w..n]
        .iter()
        .map(|l| l.bytes as f64)
        .collect();
    let yn: Vec<f64> = site.survivors[n - w..n]
        .iter()
        .map(|l| l.blocks as f64)
        .collect();
    let bytes_per_cycle = theil_sen(&x, &yb);
    let blocks_per_cycle = theil_sen(&x, &yn);
    let mk = mann_kendall(&yb);
    let confidence = 1.0 - mk.p_increasing;
    let final_survivors = site
        .survivors
        .get(n.wrapping_sub(1))
        .copied()
        .unwrap_or_default();
    let span = site.end_epoch.saturating_sub(site.start_epoch);
    let warmup_epochs = ((f64::from(span) * opts.warmup_fraction).ceil() as u32).max(1);

    let (kind, reason) = if final_survivors == Live::default() {
        (
            VerdictKind::Ok,
            "nothing born during the run is still live".to_string(),
        )
    } else if mk.p_increasing < opts.alpha && bytes_per_cycle > 0.0 {
        (
            VerdictKind::Leak,
            format!(
                "survivors grow over the last {w} snapshots (Mann–Kendall p = {:.2e})",
                mk.p_increasing
            ),
        )
    } else if site
        .newest_survivor_epoch
        .is_some_and(|e| e < site.start_epoch.saturating_add(warmup_epochs))
    {
        (
            VerdictKind::Warmup,
            format!("all survivors were born in the first {warmup_epochs} epoch(s) of the run"),
        )
    } else {
        (
            VerdictKind::Plateau,
            format!(
                "survivors from later epochs, but no growth over the last {w} snapshots \
                 (p = {:.2})",
                mk.p_increasing
            ),
        )
    };
    Verdict {
        site: site.site.clone(),
        kind,
        bytes_per_cycle,
        blocks_per_cycle,
        confidence,
        final_survivors,
        window: w,
        reason,
    }
}

/// Growth per cycle of the whole process beside the heap's, so that a heap
/// leak can be told from memory the allocator keeps (fragmentation,
/// retention). Theil–Sen slopes over the same window as the verdicts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceGrowth {
    /// Live heap bytes (all epochs) per cycle.
    pub live_heap_bytes_per_cycle: f64,
    /// Process RSS bytes per cycle, when every snapshot has RSS.
    pub rss_bytes_per_cycle: Option<f64>,
    /// Allocator resident bytes (jemalloc `stats.resident`) per cycle, when
    /// every snapshot has allocator statistics.
    pub allocator_resident_bytes_per_cycle: Option<f64>,
}

/// The figures of one snapshot in a report, for tables and plots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportPoint {
    /// Epoch of the snapshot.
    pub epoch: u32,
    /// Cycles at the snapshot.
    pub cycles: u64,
    /// Live heap bytes (all epochs).
    pub live_bytes: u64,
    /// Live heap blocks (all epochs).
    pub live_blocks: u64,
    /// Survivors.
    pub survivors: Live,
    /// Process RSS.
    pub rss_bytes: Option<u64>,
    /// Allocator resident bytes.
    pub allocator_resident_bytes: Option<u64>,
}

/// The analysis of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Number of snapshots.
    pub snapshots: usize,
    /// First snapshot's epoch.
    pub start_epoch: u32,
    /// Last snapshot's epoch.
    pub end_epoch: u32,
    /// Cycles from the first to the last snapshot.
    pub cycles: u64,
    /// Where the cycle counts came from.
    pub cycles_source: CyclesSource,
    /// One verdict per site, leaks first (largest bytes per cycle first).
    pub sites: Vec<Verdict>,
    /// Process and allocator growth beside the heap's.
    pub growth: ResourceGrowth,
    /// Per-snapshot figures.
    pub points: Vec<ReportPoint>,
}

impl Report {
    /// Whether any site is a leak of more than `max_bytes_per_cycle`.
    pub fn leaks(&self, max_bytes_per_cycle: f64) -> bool {
        self.sites
            .iter()
            .any(|v| v.kind == VerdictKind::Leak && v.bytes_per_cycle > max_bytes_per_cycle)
    }
}

/// Analyses a series (in time order).
pub fn analyze(series: &[SnapshotFile], opts: &ClassifyOptions) -> Report {
    let (cycles, cycles_source) = cycles_axis(series);
    let start_epoch = series.first().map_or(0, |f| f.snapshot.epoch);
    let points: Vec<ReportPoint> = series
        .iter()
        .zip(&cycles)
        .map(|(f, &c)| ReportPoint {
            epoch: f.snapshot.epoch,
            cycles: c,
            live_bytes: f.snapshot.totals.live_bytes,
            live_blocks: f.snapshot.totals.live_blocks,
            survivors: survivors(&f.snapshot, start_epoch),
            rss_bytes: f.snapshot.rss_bytes,
            allocator_resident_bytes: f.snapshot.allocator.as_ref().map(|a| a.resident),
        })
        .collect();
    let mut sites = vec![classify(&SiteSeries::whole_heap(series), opts)];
    sites.sort_by(|a, b| {
        (b.kind == VerdictKind::Leak)
            .cmp(&(a.kind == VerdictKind::Leak))
            .then(b.bytes_per_cycle.total_cmp(&a.bytes_per_cycle))
    });
    let w = window_len(points.len(), opts);
    let win = &points[points.len() - w..];
    let x: Vec<f64> = win.iter().map(|p| p.cycles as f64).collect();
    let slope_of = |f: &dyn Fn(&ReportPoint) -> Option<u64>| -> Option<f64> {
        let y: Option<Vec<f64>> = win.iter().map(|p| f(p).map(|v| v as f64)).collect();
        y.filter(|y| !y.is_empty()).map(|y| theil_sen(&x, &y))
    };
    let growth = ResourceGrowth {
        live_heap_bytes_per_cycle: slope_of(&|p| Some(p.live_bytes)).unwrap_or(0.0),
        rss_bytes_per_cycle: slope_of(&|p| p.rss_bytes),
        allocator_resident_bytes_per_cycle: slope_of(&|p| p.allocator_resident_bytes),
    };
    Report {
        snapshots: series.len(),
        start_epoch,
        end_epoch: series.last().map_or(start_epoch, |f| f.snapshot.epoch),
        cycles: cycles.last().copied().unwrap_or(0),
        cycles_source,
        sites,
        growth,
        points,
    }
}
