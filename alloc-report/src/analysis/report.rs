//! What an analysis returns: [`Report`] and the types it holds (the
//! points of the series, resource growth, distributions, the survivor
//! profile for pprof and folded stacks). The renderers read these.

use alloc_snapshot::{EpochLive, Histogram, Histograms, SampleMode, Stack};
use serde::Serialize;

use super::detail::{BirthLayers, HeapBirths, SiteDetail};
use super::survivors::{CyclesSource, Live};
use super::verdict::{Verdict, VerdictKind};

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
    /// The tool's own memory ([`ReportPoint::tool_bytes`]) per cycle.
    pub tool_bytes_per_cycle: f64,
    /// Process RSS without the tool's own memory, per cycle, when every
    /// snapshot has RSS: the program's growth.
    pub rss_without_tool_bytes_per_cycle: Option<f64>,
    /// What grows outside the heap, per cycle: RSS without the tool minus
    /// the live heap (what the allocator retains: free pages it keeps,
    /// fragmentation, size-class rounding; and code and stacks). Needs no
    /// allocator statistics.
    pub outside_heap_bytes_per_cycle: Option<f64>,
    /// The note when RSS (without the tool) grows much faster than the
    /// live heap (over a page a cycle, and over four times the heap's
    /// growth): memory the allocator retains rather than a heap leak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_note: Option<String>,
}

impl ResourceGrowth {
    /// The figures of `outside_heap_bytes_per_cycle` and `retention_note`
    /// from the others'.
    pub(crate) fn with_notes(mut self) -> Self {
        let heap = self.live_heap_bytes_per_cycle;
        self.outside_heap_bytes_per_cycle =
            self.rss_without_tool_bytes_per_cycle.map(|rss| rss - heap);
        let rss = self
            .rss_without_tool_bytes_per_cycle
            .or(self.rss_bytes_per_cycle);
        self.retention_note = rss
            .filter(|&rss| rss > 4096.0 && heap < rss / 4.0)
            .map(|_| {
                "RSS (without the tool) grows much faster than the live heap: memory the \
             allocator retains (fragmentation, caches) rather than a heap leak"
                    .to_string()
            });
        self
    }
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
    /// The tool's own memory, part of RSS: its live heap blocks plus its
    /// metadata (`tool.live_bytes + tool.metadata_bytes`).
    pub tool_bytes: u64,
}

impl ReportPoint {
    /// Process RSS without the tool's own memory.
    #[must_use]
    pub fn rss_without_tool(&self) -> Option<u64> {
        self.rss_bytes.map(|r| r.saturating_sub(self.tool_bytes))
    }

    /// Process RSS without the tool's own memory, minus the live heap:
    /// what the allocator retains, and code and stacks.
    #[must_use]
    pub fn outside_heap(&self) -> Option<u64> {
        self.rss_without_tool()
            .map(|r| r.saturating_sub(self.live_bytes))
    }
}

/// Quantiles of a distribution (`None` where it is empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Quantiles {
    /// Values counted.
    pub count: u64,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest value.
    pub max: Option<u64>,
}

impl Quantiles {
    /// The quantiles of a snapshot histogram.
    #[must_use]
    pub(crate) fn of(h: &Histogram) -> Self {
        if h.buckets.is_empty() {
            return Quantiles::default();
        }
        let hdr = h.to_hdr();
        Quantiles {
            count: h.count(),
            p50: Some(hdr.value_at_quantile(0.5)),
            p90: Some(hdr.value_at_quantile(0.9)),
            p99: Some(hdr.value_at_quantile(0.99)),
            max: Some(hdr.max()),
        }
    }

    /// Quantiles of `(value, weight)` pairs.
    fn weighted(mut v: Vec<(u64, u64)>) -> Self {
        v.retain(|&(_, w)| w > 0);
        v.sort_unstable();
        let total: u64 = v.iter().map(|&(_, w)| w).fold(0, u64::saturating_add);
        if total == 0 {
            return Quantiles::default();
        }
        let at = |q: f64| {
            let target = (q * total as f64).ceil().max(1.0) as u64;
            let mut seen = 0u64;
            for &(x, w) in &v {
                seen = seen.saturating_add(w);
                if seen >= target {
                    return Some(x);
                }
            }
            v.last().map(|&(x, _)| x)
        };
        Quantiles {
            count: total,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v.last().map(|&(x, _)| x),
        }
    }
}

/// Distributions at the last snapshot: allocation sizes and lifetimes
/// (sampled, cumulative since the process started) and the ages of the
/// survivors (exact), split at the lifetime most freed blocks stay under.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HistogramSummary {
    /// Sizes of allocated blocks, bytes.
    pub alloc_size: Quantiles,
    /// Lifetimes of freed sampled blocks, epochs.
    pub lifetime_epochs: Quantiles,
    /// Lifetimes of freed sampled blocks, nanoseconds.
    pub lifetime_ns: Quantiles,
    /// Ages of surviving bytes at the last snapshot (last epoch minus birth
    /// epoch, weighted by bytes; folded ranges at their newest epoch).
    pub survivor_age_epochs: Quantiles,
    /// The split between young and old survivors: the 99th percentile of
    /// freed blocks' lifetimes in epochs (`None` without lifetimes).
    pub young_max_age_epochs: Option<u64>,
    /// Survivors no older than that: likely still in use and freed later.
    pub young_survivors: Live,
    /// Survivors older than 99% of freed blocks ever get: the suspects.
    pub old_survivors: Live,
}

impl HistogramSummary {
    /// From the last snapshot's histograms, its survivors' epoch entries
    /// and its epoch.
    pub(crate) fn of(h: &Histograms, surv: &[EpochLive], epoch: u32) -> Self {
        let lifetime_epochs = Quantiles::of(&h.lifetime_epochs);
        let age = |e: &EpochLive| u64::from(epoch.saturating_sub(1).saturating_sub(e.last));
        let split = lifetime_epochs.p99;
        let (mut young, mut old) = (Live::default(), Live::default());
        for e in surv {
            let into = match split {
                Some(s) if age(e) > s => &mut old,
                _ => &mut young,
            };
            into.add(e);
        }
        HistogramSummary {
            alloc_size: Quantiles::of(&h.alloc_size),
            lifetime_epochs,
            lifetime_ns: Quantiles::of(&h.lifetime_ns),
            survivor_age_epochs: Quantiles::weighted(
                surv.iter().map(|e| (age(e), e.live_bytes)).collect(),
            ),
            young_max_age_epochs: split,
            young_survivors: young,
            old_survivors: old,
        }
    }
}

/// How the call sites were sampled, at the last snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SamplingSummary {
    /// The sampling mode.
    pub mode: SampleMode,
    /// Mean bytes between samples.
    pub mean_interval_bytes: u64,
    /// Live sampled blocks.
    pub live_sampled: u64,
    /// Samples dropped because the table was full (estimates are low).
    pub dropped_full: u64,
    /// Samples whose stack went to the overflow stack.
    pub stack_overflow: u64,
}

/// One site's survivors across the run, for plots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteCurve {
    /// The site.
    pub site: String,
    /// Estimated surviving bytes at each snapshot.
    pub bytes: Vec<f64>,
}

/// Survivors at the last snapshot by full call stack and birth epoch: what
/// the pprof and folded-stack renderers draw.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SurvivorProfile {
    /// The last snapshot's epoch.
    pub epoch: u32,
    /// The last snapshot's time, nanoseconds since the Unix epoch.
    pub timestamp_unix_ns: u64,
    /// Mean bytes between samples (0 when not sampled).
    pub mean_interval_bytes: u64,
    /// The stacks the entries refer to, by index.
    pub stacks: Vec<Stack>,
    /// Estimated survivors per stack (index into `stacks`) and birth epoch.
    pub entries: Vec<ProfileEntry>,
    /// Exact survivors per birth-epoch range of the whole heap (used when
    /// there is no call-site data).
    pub whole_heap: Vec<EpochLive>,
}

/// One stack and birth epoch of a [`SurvivorProfile`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProfileEntry {
    /// Index into [`SurvivorProfile::stacks`].
    pub stack: usize,
    /// The birth epoch.
    pub epoch: u32,
    /// Estimated bytes.
    pub bytes: f64,
    /// Estimated blocks.
    pub blocks: f64,
}

/// The note a report carries ([`Report::agreement`]) when the whole heap
/// leaks and the sites called `leak` explain less than [`EXPLAINED`](super::EXPLAINED) of
/// its bytes per cycle: the figures, and the note in words that every
/// renderer prints as it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteAgreement {
    /// The whole heap's leak, bytes per cycle (exact).
    pub heap_bytes_per_cycle: f64,
    /// How many sites are called `leak`.
    pub leak_sites: usize,
    /// What those sites explain, bytes per cycle.
    pub explained_bytes_per_cycle: f64,
    /// `explained_bytes_per_cycle / heap_bytes_per_cycle`.
    pub explained_share: f64,
    /// Sampled sites with survivors at the last snapshot.
    pub sites_with_survivors: usize,
    /// The live samples those sites rest on.
    pub samples: u64,
    /// Live samples in the process.
    pub live_sampled: u64,
    /// The note in words: how much the sites explain, on how many samples,
    /// and what to run to settle it.
    pub note: String,
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
    /// The whole heap, from the exact epoch counters.
    pub overall: Verdict,
    /// One verdict per call site with survivors at the last snapshot or
    /// before, leaks first, then by bytes per cycle (empty when sites were
    /// sampled but none ever had survivors). A series without call-site
    /// data has one row, the whole heap ([`super::ALL_SITES`]).
    pub sites: Vec<Verdict>,
    /// How the call sites were sampled (`None` without call-site data).
    pub sampling: Option<SamplingSummary>,
    /// Process and allocator growth beside the heap's.
    pub growth: ResourceGrowth,
    /// Size, lifetime and survivor-age distributions at the last snapshot.
    pub histograms: HistogramSummary,
    /// Survivors across the run of the first few sites (leaks first).
    pub site_curves: Vec<SiteCurve>,
    /// Per-snapshot figures.
    pub points: Vec<ReportPoint>,
    /// The whole heap's live bytes at the last snapshot by birth epoch.
    pub heap_births: HeapBirths,
    /// Per site, in the order of [`Report::sites`] (empty without call-site
    /// data): its survivors by birth epoch, stacks and source lines.
    pub site_details: Vec<SiteDetail>,
    /// When the whole heap leaks but the `leak` sites explain too little
    /// of it: by how much, and what to run (below [`super::EXPLAINED`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<SiteAgreement>,
    /// Survivors by stack at the last snapshot (for pprof and folded
    /// stacks; left out of the JSON, which has the per-site verdicts).
    #[serde(skip)]
    pub profile: SurvivorProfile,
}

impl Report {
    /// How many sites are `leak` (estimated sites: not the whole heap).
    #[must_use]
    pub fn leak_sites(&self) -> usize {
        self.sites
            .iter()
            .filter(|v| v.estimated && v.kind == VerdictKind::Leak)
            .count()
    }

    /// How many sites are call sites (estimated: not the whole heap).
    #[must_use]
    pub fn call_sites(&self) -> usize {
        self.sites.iter().filter(|v| v.estimated).count()
    }

    /// The whole heap's survivors at the last snapshot by birth epoch
    /// ([`Report::heap_births`]), split into the first `max_sites` sites
    /// that are not `ok` (call sites, in the report's order) and the rest
    /// of the heap.
    #[must_use]
    pub fn birth_layers(&self, max_sites: usize) -> BirthLayers {
        let h = &self.heap_births;
        let columns: Vec<(u32, u32)> = h.epochs.iter().map(|e| (e.first, e.last)).collect();
        let top = (0..self.sites.len().min(self.site_details.len()))
            .filter(|&i| self.sites[i].kind != VerdictKind::Ok && self.sites[i].estimated)
            .take(max_sites);
        let mut rest: Vec<f64> = h.epochs.iter().map(|e| e.live_bytes as f64).collect();
        let mut sites = Vec::new();
        for i in top {
            let d = &self.site_details[i];
            let bytes: Vec<f64> = columns
                .iter()
                .map(|&(a, b)| {
                    d.born
                        .iter()
                        .filter(|x| x.epoch >= a && x.epoch <= b)
                        .map(|x| x.bytes)
                        .sum()
                })
                .collect();
            for (r, b) in rest.iter_mut().zip(&bytes) {
                *r = (*r - b).max(0.0);
            }
            sites.push((i, bytes));
        }
        BirthLayers {
            columns,
            sites,
            rest,
        }
    }

    /// Whether the whole heap or any site is a leak of more than
    /// `max_bytes_per_cycle`.
    #[must_use]
    pub fn leaks(&self, max_bytes_per_cycle: f64) -> bool {
        std::iter::once(&self.overall)
            .chain(&self.sites)
            .any(|v| v.kind == VerdictKind::Leak && v.bytes_per_cycle > max_bytes_per_cycle)
    }
}

/// How many sites [`Report::site_curves`] holds.
pub const SITE_CURVES: usize = 6;
