//! The verdict rules: a site's survivors over the series ([`SiteSeries`])
//! in, a [`Verdict`] out ([`classify`]); the trend test, the rules that
//! make a leak, a plateau or a warm-up, and the Benjamini–Hochberg
//! false-discovery control that [`super::Analyzer`] applies across sites.

use alloc_snapshot::Frame;
use serde::Serialize;

use super::confidence::{confidence, few_samples_caveat};
use super::stack::SiteStack;
use super::survivors::Live;
use crate::stats::{long_pair_slope, robust_slope, trend_test};

/// Live samples per snapshot of the trend window (about 16 per snapshot
/// of the run, whose second half the window is) from which a site's
/// estimates count as smooth ([`SiteSeries::smooth`]).
pub(crate) const DENSE_SAMPLES: u64 = 32;

/// The survivors of one site across a series: the classifier's input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SiteSeries {
    /// Site name: the symbolised call site, or [`ALL_SITES`](super::ALL_SITES) for the whole
    /// heap.
    pub(crate) site: String,
    /// Cycles at each snapshot.
    pub(crate) cycles: Vec<u64>,
    /// Epoch of each snapshot.
    pub(crate) epochs: Vec<u32>,
    /// Surviving bytes at each snapshot.
    pub(crate) bytes: Vec<f64>,
    /// Surviving blocks at each snapshot.
    pub(crate) blocks: Vec<f64>,
    /// The series' first epoch.
    pub(crate) start_epoch: u32,
    /// The last snapshot's epoch.
    pub(crate) end_epoch: u32,
    /// The distinct birth epochs with survivors at the last snapshot,
    /// ascending (for a folded range, its first and last epochs).
    pub(crate) birth_epochs: Vec<u32>,
    /// Whether the figures are sampled estimates (a call site) rather than
    /// exact counts (the whole heap).
    pub(crate) estimated: bool,
    /// Live sampled blocks behind the estimate at the last snapshot (0 for
    /// exact counts).
    pub(crate) samples: u64,
    /// The site's frame, with the full source path that the label shortens
    /// (`None` for the whole heap).
    pub(crate) location: Option<Frame>,
}

impl SiteSeries {
    /// Whether the figures are exact counts: the whole heap's, or a site's
    /// whose live sampled blocks at the last snapshot all have weight 1
    /// (recorded at every allocation, as the default policy's dense capture
    /// and `SampleMode::All` do), so that its estimated blocks are its
    /// samples.
    #[must_use]
    pub(crate) fn exact(&self) -> bool {
        !self.estimated
            || (self.samples > 0
                && self
                    .blocks
                    .last()
                    .is_some_and(|&b| (b - self.samples as f64).abs() < 0.5))
    }

    /// Whether the figures rise smoothly enough for Theil–Sen, the
    /// whole heap's slope: exact ([`SiteSeries::exact`]), or estimated
    /// from at least [`DENSE_SAMPLES`] live samples per snapshot of the
    /// window (the default policy's graded capture keeps a leak's site
    /// there).
    /// Fewer samples rise in rare large steps, on which Theil–Sen is
    /// biased.
    #[must_use]
    pub(crate) fn smooth(&self) -> bool {
        self.exact() || self.samples >= DENSE_SAMPLES * self.bytes.len().max(1) as u64
    }

    /// The newest birth epoch with survivors at the last snapshot.
    #[must_use]
    pub(crate) fn newest_survivor_epoch(&self) -> Option<u32> {
        self.birth_epochs.last().copied()
    }
}

/// The verdict on one site:
///
/// - `ok`: nothing survives at the last snapshot;
/// - `leak`: over the last part of the run (see [`ClassifyOptions`]) the
///   Mann–Kendall test finds survivor bytes increasing at level `alpha`,
///   the slope is positive, the survivors were born in at least
///   `min_leak_epochs` distinct epochs inside that window, and some were
///   born before its middle (the test assumes independent points; a
///   cache whose entries turn over makes autocorrelated survivors that can
///   look like a rise, but holds no old blocks); or its held memory grows
///   in steps with no new blocks ([`GrowthKind::ExistingBlocks`]);
/// - `warmup`: otherwise, if every survivor was born in the first
///   `warmup_fraction` of the run's epochs;
/// - `plateau`: otherwise (survivors from later epochs, but not growing).
///
/// With fewer than 6 points in the window the test cannot reach 1%, so a
/// short series is never called a leak. [`super::analyze`] classifies
/// every site and adds a false-discovery control across them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    #[must_use]
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
    /// The site: `file:line function` of the call site, or
    /// [`ALL_SITES`](super::ALL_SITES).
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
    /// Survivors at the last snapshot (estimates rounded, for a call site).
    pub final_survivors: Live,
    /// How many of the last snapshots the trend was measured over.
    pub window: usize,
    /// Whether the figures are sampled estimates (a call site).
    pub estimated: bool,
    /// Live sampled blocks behind the estimate at the last snapshot.
    pub samples: u64,
    /// One sentence on why.
    pub reason: String,
    /// For a leak: which kind of growth (new blocks that survive, or
    /// existing blocks that grow; see [`GrowthKind`]) and its bytes per
    /// cycle.
    pub growth: Option<Growth>,
    /// The site's frame: function, line and the full source path (the
    /// label shows its short form). Absent for the whole heap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Frame>,
    /// For a leak site of a series whose last retention scan saw it: why
    /// its survivors are alive ([`Cause`](super::Cause)). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<super::cause::Cause>,
    /// For a leak site: its call stacks at the last snapshot, most bytes
    /// first (at most [`super::SITE_STACKS`]; a site groups the
    /// stacks whose site frame is one, reached from different callers).
    /// Empty otherwise, and left out of the JSON then.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<SiteStack>,
}

/// Knobs of the classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassifyOptions {
    /// Significance level of the Mann–Kendall test for a leak (and the
    /// false-discovery rate across the sites of a report).
    pub alpha: f64,
    /// The trend is measured over this last fraction of the snapshots...
    pub window_fraction: f64,
    /// ...but over at least this many (or all, if fewer).
    pub min_window: usize,
    /// Survivors all born within this first fraction of the run's epochs
    /// (at least the first epoch) make a warm-up.
    pub warmup_fraction: f64,
    /// A leak needs survivors born in at least this many distinct epochs
    /// inside the trend window.
    pub min_leak_epochs: usize,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions {
            alpha: 0.01,
            window_fraction: 0.5,
            min_window: 8,
            warmup_fraction: 0.1,
            min_leak_epochs: 3,
        }
    }
}

/// The window length used for `n` points.
pub(crate) fn window_len(n: usize, opts: &ClassifyOptions) -> usize {
    let frac = (n as f64 * opts.window_fraction).ceil() as usize;
    frac.max(opts.min_window).min(n)
}

/// The trend statistics of one site over its window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trend {
    pub(crate) window: usize,
    bytes_per_cycle: f64,
    blocks_per_cycle: f64,
    pub(crate) p_increasing: f64,
    /// Distinct birth epochs of the last snapshot's survivors born inside
    /// the window.
    epochs_in_window: usize,
    /// Whether some survivor at the last snapshot was born before the
    /// middle of the window (old blocks are still held).
    holds_old: bool,
}

impl Trend {
    /// This trend, as measured over a window of `w` snapshots (a site
    /// flat over the window is tested on its last value alone).
    pub(crate) fn over_window(self, w: usize) -> Self {
        Trend { window: w, ..self }
    }
}

fn trend(site: &SiteSeries, opts: &ClassifyOptions) -> Trend {
    trend_on(site, &site.cycles, &site.epochs, opts)
}

/// [`trend`] with the axes given apart (all sites of a report share them).
pub(crate) fn trend_on(
    site: &SiteSeries,
    cycles: &[u64],
    epochs: &[u32],
    opts: &ClassifyOptions,
) -> Trend {
    let n = site.bytes.len().min(site.blocks.len()).min(cycles.len());
    let w = window_len(n, opts);
    let x: Vec<f64> = cycles[n - w..n].iter().map(|&c| c as f64).collect();
    let window_start = epochs.get(n - w).copied().unwrap_or(site.start_epoch);
    let mid = epochs
        .get(n - w + w / 2)
        .copied()
        .unwrap_or(site.start_epoch);
    trend_in_window(
        site,
        &site.bytes[n - w..n],
        &site.blocks[n - w..n],
        &x,
        (window_start, mid),
    )
}

/// The trend of `site` over a window: its survivors `yb` (bytes) and `yn`
/// (blocks) at cycles `x`; `epochs` are the epochs at the window's start
/// and middle.
pub(crate) fn trend_in_window(
    site: &SiteSeries,
    yb: &[f64],
    yn: &[f64],
    x: &[f64],
    (window_start, mid): (u32, u32),
) -> Trend {
    let w = x.len();
    let epochs_in_window = site
        .birth_epochs
        .iter()
        .filter(|&&e| e >= window_start)
        .count();
    let holds_old = site.birth_epochs.first().is_some_and(|&e| e < mid);
    // Flat survivors (the common case for most sites) need no statistics.
    let flat = |y: &[f64]| y.windows(2).all(|p| p[0] == p[1]);
    if flat(yb) && flat(yn) {
        return Trend {
            window: w,
            bytes_per_cycle: 0.0,
            blocks_per_cycle: 0.0,
            p_increasing: 1.0,
            epochs_in_window,
            holds_old,
        };
    }
    // Exact counts (the whole heap, a site recorded at every allocation)
    // and estimates on many samples a snapshot: Theil–Sen, as for the
    // whole heap, so that a site and the heap it is part of are measured
    // alike (a staircase, such as a hash table that doubles, gives the
    // same slope either way). Sparse estimates rise in rare big steps:
    // the median slope of long pairs (see `stats::long_pair_slope`).
    let slope = if site.smooth() {
        robust_slope
    } else {
        long_pair_slope
    };
    Trend {
        window: w,
        bytes_per_cycle: slope(x, yb),
        blocks_per_cycle: slope(x, yn),
        p_increasing: trend_test(yb).p_increasing,
        epochs_in_window,
        holds_old,
    }
}

/// The verdict from a site's trend; a leak needs `p < threshold` too.
pub(crate) fn decide(
    site: &SiteSeries,
    t: &Trend,
    threshold: f64,
    opts: &ClassifyOptions,
) -> Verdict {
    let n = site.bytes.len().min(site.blocks.len());
    let last_bytes = n.checked_sub(1).map_or(0.0, |i| site.bytes[i]);
    let last_blocks = n.checked_sub(1).map_or(0.0, |i| site.blocks[i]);
    let final_survivors = Live {
        bytes: last_bytes.max(0.0).round() as u64,
        blocks: last_blocks.max(0.0).round() as u64,
    };
    let p = t.p_increasing;
    let grows = p < opts.alpha && t.bytes_per_cycle > 0.0;
    let caveat = if grows {
        not_a_leak_because(t, threshold, opts)
    } else {
        String::new()
    };
    let nothing_left = last_bytes <= 0.0 && last_blocks <= 0.0;
    let (kind, reason) = kind_and_reason(site, t, grows, nothing_left, &caveat, opts);
    let reason = match kind {
        VerdictKind::Ok => reason,
        _ => few_samples_caveat(site.estimated, site.samples) + &reason,
    };
    Verdict {
        site: site.site.clone(),
        kind,
        bytes_per_cycle: t.bytes_per_cycle,
        blocks_per_cycle: t.blocks_per_cycle,
        confidence: confidence(site.estimated, site.samples, p),
        final_survivors,
        window: t.window,
        estimated: site.estimated,
        samples: site.samples,
        growth: (kind == VerdictKind::Leak).then_some(Growth {
            kind: GrowthKind::NewBlocks,
            bytes_per_cycle: t.bytes_per_cycle,
        }),
        reason,
        location: site.location.clone(),
        cause: None,
        stacks: Vec::new(),
    }
}

/// Why survivors that rise are not called a leak, as the head of the
/// reason: the false-discovery control, too few birth epochs in the
/// window, or nothing old kept (a cache's turnover); empty when they are.
fn not_a_leak_because(t: &Trend, threshold: f64, opts: &ClassifyOptions) -> String {
    let p = t.p_increasing;
    if p > threshold {
        format!(
            "survivors rise (p = {p:.2e}) but not beyond what chance gives among this many \
             sites (false-discovery control); "
        )
    } else if t.epochs_in_window < opts.min_leak_epochs {
        format!(
            "survivors rise, but come from only {} birth epoch(s) inside the window; ",
            t.epochs_in_window
        )
    } else if !t.holds_old {
        "survivors rise, but none born before the middle of the window is still \
         live (entries turn over, as in a cache); "
            .to_string()
    } else {
        String::new()
    }
}

/// The verdict's kind and reason: `ok` when nothing is left, `leak` when
/// survivors grow without a caveat, `warmup` when every survivor is from
/// the first epochs of the run, else `plateau`.
fn kind_and_reason(
    site: &SiteSeries,
    t: &Trend,
    grows: bool,
    nothing_left: bool,
    caveat: &str,
    opts: &ClassifyOptions,
) -> (VerdictKind, String) {
    let span = site.end_epoch.saturating_sub(site.start_epoch);
    let warmup_epochs = ((f64::from(span) * opts.warmup_fraction).ceil() as u32).max(1);
    let (w, p) = (t.window, t.p_increasing);
    if nothing_left {
        (
            VerdictKind::Ok,
            "nothing born during the run is still live".to_string(),
        )
    } else if grows && caveat.is_empty() {
        (
            VerdictKind::Leak,
            format!(
                "survivors grow over the last {w} snapshots (Mann–Kendall p = {p:.2e}), \
                 born in {} epochs of that window",
                t.epochs_in_window
            ),
        )
    } else if site
        .newest_survivor_epoch()
        .is_some_and(|e| e < site.start_epoch.saturating_add(warmup_epochs))
    {
        (
            VerdictKind::Warmup,
            format!(
                "{caveat}all survivors were born in the first {warmup_epochs} epoch(s) of the run"
            ),
        )
    } else if caveat.is_empty() {
        (
            VerdictKind::Plateau,
            format!(
                "survivors from later epochs, but no growth over the last {w} snapshots \
                 (p = {p:.2})"
            ),
        )
    } else {
        (VerdictKind::Plateau, format!("{caveat}not called a leak"))
    }
}

/// Classifies one site on its own, by the rules of [`VerdictKind`].
#[must_use]
pub(crate) fn classify(site: &SiteSeries, opts: &ClassifyOptions) -> Verdict {
    decide(site, &trend(site, opts), opts.alpha, opts)
}

/// The Benjamini–Hochberg threshold: the largest p-value `p_(k)` with
/// `p_(k) <= k / m * alpha` (0 when none).
pub(crate) fn benjamini_hochberg(p_values: &[f64], alpha: f64) -> f64 {
    let mut p: Vec<f64> = p_values.to_vec();
    p.sort_by(f64::total_cmp);
    let m = p.len() as f64;
    p.iter()
        .enumerate()
        .filter(|&(k, &pk)| pk <= (k + 1) as f64 / m * alpha)
        .map(|(_, &pk)| pk)
        .next_back()
        .unwrap_or(0.0)
}

/// Which kind of growth a leak is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrowthKind {
    /// New blocks, born in many epochs, that survive (the survivor rule).
    NewBlocks,
    /// Blocks that already exist grow (or are replaced by bigger ones):
    /// a collection that only grows.
    ExistingBlocks,
}

impl GrowthKind {
    /// A few words for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GrowthKind::NewBlocks => "new blocks that survive",
            GrowthKind::ExistingBlocks => "existing blocks that grow",
        }
    }
}

/// The growth behind a leak verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Growth {
    /// New surviving blocks, or existing blocks that grow.
    pub kind: GrowthKind,
    /// Bytes per cycle of that growth.
    pub bytes_per_cycle: f64,
}
