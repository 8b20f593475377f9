//! The streaming analysis: [`Analyzer::push`] each snapshot of a series in
//! time order, keeping per snapshot only what the report needs (the whole
//! heap's survivors, one row of per-site survivors, the last snapshot's
//! details), then [`Analyzer::finish`] classifies the whole heap and every
//! site. [`analyze`] does exactly this for a series in memory.

use alloc_snapshot::{EpochLive, Histograms, SampleMode, SiteLive, Snapshot, Stack, Workspaces};

use super::detail::{self, HeapBirths, SiteDetail};
use super::report::{
    HistogramSummary, ProfileEntry, Report, ReportPoint, ResourceGrowth, SamplingSummary,
    SiteCurve, SurvivorProfile, SITE_CURVES,
};
use super::site::{SiteTable, StackWalk, ALL_SITES};
use super::stack::{SiteStack, SITE_STACKS};
use super::survivors::{self, survivors, Estimate, Live};
use super::verdict::{
    benjamini_hochberg, classify, decide, trend_in_window, window_len, ClassifyOptions, SiteSeries,
    Trend, Verdict, VerdictKind,
};
use super::{agreement, growth, HashMap};
use crate::format::SnapshotFile;
use crate::stats::robust_slope;

/// Analyses a series one snapshot at a time, so a long series need not be
/// held in memory: [`Analyzer::push`] each snapshot in time order, then
/// [`Analyzer::finish`]. [`analyze`] does exactly this.
pub struct Analyzer {
    opts: ClassifyOptions,
    files: usize,
    start_epoch: u32,
    epochs: Vec<u32>,
    file_cycles: Vec<Option<u64>>,
    points: Vec<ReportPoint>,
    heap_bytes: Vec<f64>,
    heap_blocks: Vec<f64>,
    /// Held bytes and blocks (every closed epoch, before the series too).
    held: Vec<Live>,
    /// The sites met so far (their labels and first stacks).
    sites: SiteTable<Stack>,
    /// Every stack seen, by id (the newest version of each, for the
    /// profile).
    stack_store: HashMap<u32, Stack>,
    /// Surviving bytes and blocks of every site known then, one row per
    /// snapshot, rows end to end (rows grow as sites appear; missing cells
    /// are 0).
    cells: Vec<Estimate>,
    /// Where each row starts in `cells`.
    row_start: Vec<usize>,
    /// Per site, the last row whose value differs from the row before (a
    /// site whose value has not changed inside the trend window needs no
    /// statistics, nor its column copied out).
    last_change: Vec<usize>,
    /// Per-site accumulator for the current snapshot.
    acc: Vec<Estimate>,
    any_sites: bool,
    // From the last snapshot:
    last_epoch_entries: Vec<EpochLive>,
    last_sites: Vec<SiteLive>,
    /// The site of each entry of `last_sites`.
    last_site_of: Vec<usize>,
    last_histograms: Histograms,
    last_sampling: Option<SamplingSummary>,
    last_timestamp: u64,
    last_epoch: u32,
    /// Per site, the cause from the last snapshot with a retention scan.
    causes: Option<Vec<Option<super::cause::Cause>>>,
}

impl Analyzer {
    /// An empty analysis.
    #[must_use]
    pub fn new(opts: &ClassifyOptions) -> Self {
        Analyzer {
            opts: *opts,
            files: 0,
            start_epoch: 0,
            epochs: Vec::new(),
            file_cycles: Vec::new(),
            points: Vec::new(),
            heap_bytes: Vec::new(),
            heap_blocks: Vec::new(),
            held: Vec::new(),
            sites: SiteTable::new(),
            stack_store: HashMap::default(),
            cells: Vec::new(),
            row_start: Vec::new(),
            last_change: Vec::new(),
            acc: Vec::new(),
            any_sites: false,
            last_epoch_entries: Vec::new(),
            last_sites: Vec::new(),
            last_site_of: Vec::new(),
            last_histograms: Histograms::default(),
            last_sampling: None,
            last_timestamp: 0,
            last_epoch: 0,
            causes: None,
        }
    }

    /// How many snapshots were pushed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.files
    }

    /// Whether no snapshot was pushed yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// The site index of a stack ([`SiteTable::site_of`]), with a column
    /// for a new site; a stack not seen before under its id is kept.
    fn site_of(&mut self, stack: &Stack) -> usize {
        let (site, new_stack) = self.sites.site_of(stack, Stack::clone);
        if new_stack {
            self.stack_store.insert(stack.id, stack.clone());
        }
        if site == self.acc.len() {
            self.acc.push(Estimate::default());
            self.last_change.push(0);
        }
        site
    }

    /// [`Analyzer::push`], with the files of new sites named relative to
    /// the workspace root that holds them, if one of `workspaces` does
    /// (`alloc-core/admin/src/routes.rs` rather than
    /// `admin/src/routes.rs`). The roots are found on disk by
    /// [`WorkspaceFinder`](crate::WorkspaceFinder); each file's root must
    /// be among them from the first snapshot that names the file on (as
    /// the finder does when it scans each snapshot before its push).
    pub fn push_in(&mut self, file: &SnapshotFile, workspaces: &Workspaces) {
        self.sites.set_workspaces(workspaces);
        self.push(file);
    }

    /// Adds the next snapshot of the series (in time order), its sites
    /// named with the workspace roots given last ([`Analyzer::push_in`];
    /// none before).
    pub fn push(&mut self, file: &SnapshotFile) {
        let s = &file.snapshot;
        if self.files == 0 {
            self.start_epoch = s.epoch;
        }
        let start = self.start_epoch;
        self.push_heap(file);
        let stack_site = self.push_sites(s);
        self.close_row();
        if let Some(r) = &s.retention {
            self.causes = Some(super::cause::site_causes(
                s,
                r,
                start,
                &stack_site,
                self.sites.len(),
            ));
        }
        self.keep_last(s);
    }

    /// The whole heap's figures of `file`: its point, survivors and held
    /// memory.
    fn push_heap(&mut self, file: &SnapshotFile) {
        let s = &file.snapshot;
        let surv = survivors(s, self.start_epoch);
        self.points.push(ReportPoint {
            epoch: s.epoch,
            cycles: 0,
            live_bytes: s.totals.live_bytes,
            live_blocks: s.totals.live_blocks,
            survivors: surv,
            rss_bytes: s.rss_bytes,
            allocator_resident_bytes: s.allocator.as_ref().map(|a| a.resident),
            tool_bytes: s.tool.live_bytes.saturating_add(s.tool.metadata_bytes),
        });
        self.heap_bytes.push(surv.bytes as f64);
        self.heap_blocks.push(surv.blocks as f64);
        self.held.push(growth::held(s));
        self.epochs.push(s.epoch);
        self.file_cycles.push(file.cycles);
    }

    /// Call sites: survivors per site into `acc`, and the last snapshot's
    /// entries with their sites. Entries are sorted by stack, so the site
    /// is looked up once per stack. Returns each stack's site when `s` has
    /// a retention scan (for the causes).
    fn push_sites(&mut self, s: &Snapshot) -> HashMap<u32, usize> {
        let start = self.start_epoch;
        self.last_sites.clear();
        self.last_site_of.clear();
        let mut cur: Option<(u32, Option<usize>)> = None;
        let mut stack_site: HashMap<u32, usize> = HashMap::default();
        let mut walk = StackWalk::new(s);
        for e in &s.sites {
            if e.epoch < start || e.epoch >= s.epoch {
                continue;
            }
            let site = match cur {
                Some((id, site)) if id == e.stack => site,
                _ => {
                    let site = walk.find(e.stack, s).map(|st| self.site_of(st));
                    cur = Some((e.stack, site));
                    site
                }
            };
            let Some(site) = site else { continue };
            if s.retention.is_some() {
                stack_site.insert(e.stack, site);
            }
            self.acc[site].add(e.bytes, e.blocks);
            self.last_sites.push(*e);
            self.last_site_of.push(site);
        }
        self.any_sites |= !s.sites.is_empty();
        stack_site
    }

    /// Ends the snapshot's row of the site matrix: `acc` kept as the row,
    /// each site's last change noted.
    fn close_row(&mut self) {
        let prev: &[Estimate] = match self.row_start.last() {
            Some(&p) => &self.cells[p..],
            None => &[],
        };
        for (site, a) in self.acc.iter().enumerate() {
            if prev.get(site).copied().unwrap_or_default() != *a {
                self.last_change[site] = self.files;
            }
        }
        self.row_start.push(self.cells.len());
        self.cells.extend_from_slice(&self.acc);
        self.acc.fill(Estimate::default());
        self.files += 1;
    }

    /// What the report needs from the last snapshot only.
    fn keep_last(&mut self, s: &Snapshot) {
        let start = self.start_epoch;
        self.last_epoch = s.epoch;
        self.last_timestamp = s.timestamp_unix_ns;
        self.last_epoch_entries.clear();
        self.last_epoch_entries.extend(
            s.epochs
                .iter()
                .filter(|e| e.last >= start && e.last < s.epoch)
                .copied(),
        );
        self.last_histograms.clone_from(&s.histograms);
        self.last_sampling = (!s.sites.is_empty() || s.sampling.mode != SampleMode::Off).then_some(
            SamplingSummary {
                mode: s.sampling.mode,
                mean_interval_bytes: s.sampling.mode.mean_interval_bytes(),
                live_sampled: s.sampling.live_sampled,
                dropped_full: s.sampling.dropped_full,
                stack_overflow: s.sampling.stack_overflow,
            },
        );
    }

    /// The report: the whole heap's verdict, every site's (with the
    /// false-discovery control across them), resource growth and the
    /// survivor profile.
    pub fn finish(mut self) -> Report {
        let (cycles, cycles_source) = survivors::axis(&self.file_cycles, &self.epochs);
        let mut points = std::mem::take(&mut self.points);
        for (p, &c) in points.iter_mut().zip(&cycles) {
            p.cycles = c;
        }
        let start_epoch = self.start_epoch;
        let end_epoch = self.epochs.last().copied().unwrap_or(start_epoch);
        let (heap, overall) = self.whole_heap(&cycles);
        let (mut sites, site_curves) = self.site_verdicts(&cycles, &heap.epochs, &overall);
        self.leak_stacks(&mut sites);
        let growth = resource_growth(&points, &self.opts);
        let histograms = HistogramSummary::of(
            &self.last_histograms,
            &self.last_epoch_entries,
            self.last_epoch,
        );
        let profile = self.survivor_profile();
        let held = self.held.last().copied().unwrap_or_default();
        let surviving = points.last().map(|p| p.survivors).unwrap_or_default();
        let heap_births = HeapBirths {
            before_series_bytes: held.bytes.saturating_sub(surviving.bytes),
            before_series_blocks: held.blocks.saturating_sub(surviving.blocks),
            epochs: self.last_epoch_entries.clone(),
        };
        let site_details = if self.any_sites {
            let by_label = detail::site_details(
                &self.last_sites,
                &self.last_site_of,
                &self.stack_store,
                self.sites.labels(),
                start_epoch,
                end_epoch,
            );
            let mut index: HashMap<&str, usize> = HashMap::default();
            for (i, d) in by_label.iter().enumerate() {
                index.entry(d.site.as_str()).or_insert(i);
            }
            let order: Vec<Option<usize>> = sites
                .iter()
                .map(|v| index.get(v.site.as_str()).copied())
                .collect();
            let mut by_label: Vec<Option<SiteDetail>> = by_label.into_iter().map(Some).collect();
            order
                .into_iter()
                .zip(&sites)
                .map(|(i, v)| {
                    let mut d = i
                        .and_then(|i| by_label[i].take())
                        .unwrap_or_else(|| SiteDetail::empty(&v.site));
                    if !v.stacks.is_empty() {
                        d.top_stack = None;
                    }
                    d
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut report = Report {
            snapshots: self.files,
            start_epoch,
            end_epoch,
            cycles: cycles.last().copied().unwrap_or(0),
            cycles_source,
            overall,
            sites,
            sampling: self.last_sampling,
            growth,
            histograms,
            site_curves,
            points,
            heap_births,
            site_details,
            agreement: None,
            profile,
        };
        report.agreement = agreement::site_agreement(&report);
        report
    }

    /// The whole heap as one site (from the exact counters) and its
    /// verdict, growth of existing blocks included.
    fn whole_heap(&self, cycles: &[u64]) -> (SiteSeries, Verdict) {
        let start_epoch = self.start_epoch;
        let heap = SiteSeries {
            site: ALL_SITES.to_string(),
            cycles: cycles.to_vec(),
            epochs: self.epochs.clone(),
            bytes: self.heap_bytes.clone(),
            blocks: self.heap_blocks.clone(),
            start_epoch,
            end_epoch: self.epochs.last().copied().unwrap_or(start_epoch),
            birth_epochs: {
                let mut b: Vec<u32> = self
                    .last_epoch_entries
                    .iter()
                    .filter(|e| e.live_bytes > 0 || e.live_blocks > 0)
                    .flat_map(|e| [e.first.max(start_epoch), e.last])
                    .collect();
                b.dedup();
                b
            },
            estimated: false,
            samples: 0,
            location: None,
        };
        let all_x: Vec<f64> = cycles.iter().map(|&c| c as f64).collect();
        let overall = growth::apply(
            classify(&heap, &self.opts),
            &self.held.iter().map(|l| l.bytes as f64).collect::<Vec<_>>(),
            &self
                .held
                .iter()
                .map(|l| l.blocks as f64)
                .collect::<Vec<_>>(),
            &all_x,
            window_len(self.held.len(), &self.opts),
        );
        (heap, overall)
    }

    /// The surviving bytes and blocks of `site` at snapshot `k`.
    fn cell(&self, k: usize, site: usize) -> Estimate {
        let end = self
            .row_start
            .get(k + 1)
            .copied()
            .unwrap_or(self.cells.len());
        self.cells[self.row_start[k]..end]
            .get(site)
            .copied()
            .unwrap_or_default()
    }

    /// Every site's series over the trend window (the last `w` of `n`
    /// snapshots): its survivors in the window when they changed inside
    /// it, else its last value alone (flat over the window: it stands for
    /// it); samples and birth epochs from the last snapshot.
    fn site_series(&self, n: usize, w: usize) -> Vec<SiteSeries> {
        let nsites = self.sites.len();
        let mut samples = vec![0u64; nsites];
        let mut births: Vec<Vec<u32>> = vec![Vec::new(); nsites];
        for (e, &site) in self.last_sites.iter().zip(&self.last_site_of) {
            samples[site] += e.samples;
            births[site].push(e.epoch);
        }
        // Copy out the trend window of the sites that changed inside it, in
        // blocks of sites, so that reads stay within a few cache lines of
        // each row and writes go to a few columns at a time.
        let changing: Vec<usize> = (0..nsites)
            .filter(|&site| self.last_change[site] > n - w)
            .collect();
        let mut bytes: Vec<Vec<f64>> = vec![Vec::new(); nsites];
        let mut blocks: Vec<Vec<f64>> = vec![Vec::new(); nsites];
        const BLOCK: usize = 64;
        for chunk in changing.chunks(BLOCK) {
            for &site in chunk {
                bytes[site].reserve_exact(w);
                blocks[site].reserve_exact(w);
            }
            for k in n - w..n {
                let end = self
                    .row_start
                    .get(k + 1)
                    .copied()
                    .unwrap_or(self.cells.len());
                let row = &self.cells[self.row_start[k]..end];
                for &site in chunk {
                    let v = row.get(site).copied().unwrap_or_default();
                    bytes[site].push(v.bytes);
                    blocks[site].push(v.blocks);
                }
            }
        }
        for site in 0..nsites {
            if bytes[site].is_empty() && n > 0 {
                let v = self.cell(n - 1, site);
                bytes[site].push(v.bytes);
                blocks[site].push(v.blocks);
            }
        }
        let end_epoch = self.epochs.last().copied().unwrap_or(self.start_epoch);
        let labels = self.sites.labels();
        let mut series: Vec<SiteSeries> = Vec::with_capacity(nsites);
        for (site, (((samples, births), bytes), blocks)) in samples
            .into_iter()
            .zip(births)
            .zip(bytes)
            .zip(blocks)
            .enumerate()
        {
            let mut birth_epochs = births;
            birth_epochs.sort_unstable();
            birth_epochs.dedup();
            series.push(SiteSeries {
                site: labels[site].clone(),
                cycles: Vec::new(),
                epochs: Vec::new(),
                bytes,
                blocks,
                start_epoch: self.start_epoch,
                end_epoch,
                birth_epochs,
                estimated: true,
                samples,
                location: self.sites.stack(site).site().cloned(),
            });
        }
        series
    }

    /// Every site's verdict, leaks first (then by bytes per cycle, final
    /// survivors and label), with the Benjamini–Hochberg control at level
    /// `alpha` across the sites that hold anything, and the curves of the
    /// top sites that are not `ok`. Without call-site data, the one site
    /// is the whole heap (`overall`).
    fn site_verdicts(
        &self,
        cycles: &[u64],
        epochs: &[u32],
        overall: &Verdict,
    ) -> (Vec<Verdict>, Vec<SiteCurve>) {
        let opts = &self.opts;
        let n = self.row_start.len();
        let w = window_len(n, opts);
        let series = self.site_series(n, w);
        let trends = self.site_trends(&series, cycles, epochs, w);
        let tested: Vec<f64> = series
            .iter()
            .zip(&trends)
            .filter(|(s, _)| s.bytes.last().is_some_and(|&b| b > 0.0))
            .map(|(_, t)| t.p_increasing)
            .collect();
        let threshold = benjamini_hochberg(&tested, opts.alpha);
        let all_x: Vec<f64> = cycles.iter().map(|&c| c as f64).collect();
        let mut sites: Vec<Verdict> = series
            .iter()
            .zip(&trends)
            .enumerate()
            .map(|(i, (s, t))| {
                let v = decide(s, t, threshold, opts);
                let changed_inside = s.bytes.len() == w;
                self.with_growth_and_cause(i, v, changed_inside, &all_x, w)
            })
            .collect();
        let order = report_order(&sites);
        let site_curves = order
            .iter()
            .take(SITE_CURVES)
            .filter(|&&i| sites[i].kind != VerdictKind::Ok)
            .map(|&i| SiteCurve {
                site: series[i].site.clone(),
                bytes: (0..n).map(|k| self.cell(k, i).bytes).collect(),
            })
            .collect();
        if !self.any_sites {
            return (vec![overall.clone()], site_curves);
        }
        let mut sorted: Vec<Verdict> = Vec::with_capacity(sites.len());
        for &i in &order {
            sorted.push(std::mem::replace(&mut sites[i], overall.clone()));
        }
        (sorted, site_curves)
    }

    /// Each site's trend over the window of the last `w` snapshots (at the
    /// `cycles` and `epochs` of every snapshot); a site whose figures did
    /// not change inside the window has one point, its trend over the
    /// window that of a constant.
    fn site_trends(
        &self,
        series: &[SiteSeries],
        cycles: &[u64],
        epochs: &[u32],
        w: usize,
    ) -> Vec<Trend> {
        let n = self.row_start.len();
        let x: Vec<f64> = cycles[n - w..n].iter().map(|&c| c as f64).collect();
        let start_epoch = self.start_epoch;
        let marks = (
            epochs.get(n - w).copied().unwrap_or(start_epoch),
            epochs.get(n - w + w / 2).copied().unwrap_or(start_epoch),
        );
        series
            .iter()
            .map(|s| {
                if s.bytes.len() == w {
                    trend_in_window(s, &s.bytes, &s.blocks, &x, marks)
                } else {
                    let one = &s.bytes[s.bytes.len() - 1..];
                    let t =
                        trend_in_window(s, one, &s.blocks[s.blocks.len() - 1..], &x[..1], marks);
                    t.over_window(w)
                }
            })
            .collect()
    }

    /// Site `i`'s verdict `v` with the growth of existing blocks (when its
    /// figures changed inside the window of `w` and it is not already a
    /// leak) and, for a leak, its cause from the last retention scan.
    fn with_growth_and_cause(
        &self,
        i: usize,
        v: Verdict,
        changed_inside: bool,
        all_x: &[f64],
        w: usize,
    ) -> Verdict {
        let n = self.row_start.len();
        let mut v = if v.kind == VerdictKind::Leak || !changed_inside {
            v
        } else {
            // Changed inside the window: the growth of existing blocks.
            let (y, b): (Vec<f64>, Vec<f64>) = (0..n)
                .map(|k| (self.cell(k, i).bytes, self.cell(k, i).blocks))
                .unzip();
            growth::apply(v, &y, &b, all_x, w)
        };
        if v.kind == VerdictKind::Leak {
            if let Some(causes) = &self.causes {
                v.cause = Some(
                    causes
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(super::cause::Cause::unknown),
                );
            }
        }
        v
    }

    /// Fills in the stacks of every leak site ([`Verdict::stacks`]): its
    /// stacks' survivors at the last snapshot, most bytes first, at most
    /// [`SITE_STACKS`]; the site's first stack when none survives there (a
    /// collection born before the series that grows).
    fn leak_stacks(&self, verdicts: &mut [Verdict]) {
        let labels = self.sites.labels();
        let mut site_of: HashMap<&str, usize> = HashMap::default();
        for (site, label) in labels.iter().enumerate() {
            site_of.entry(label.as_str()).or_insert(site);
        }
        let leaks: Vec<(usize, usize)> = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| v.kind == VerdictKind::Leak && v.site != ALL_SITES)
            .filter_map(|(i, v)| Some((i, *site_of.get(v.site.as_str())?)))
            .collect();
        if leaks.is_empty() {
            return;
        }
        // (bytes, blocks) per stack id, for the leak sites only.
        let mut per_site: HashMap<usize, HashMap<u32, Estimate>> = leaks
            .iter()
            .map(|&(_, site)| (site, HashMap::default()))
            .collect();
        for (e, site) in self.last_sites.iter().zip(&self.last_site_of) {
            if let Some(stacks) = per_site.get_mut(site) {
                stacks.entry(e.stack).or_default().add(e.bytes, e.blocks);
            }
        }
        for (i, site) in leaks {
            let mut stacks: Vec<(u32, Estimate)> = per_site
                .remove(&site)
                .map(|m| m.into_iter().collect())
                .unwrap_or_default();
            stacks.sort_by(|a, b| b.1.bytes.total_cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
            let v = &mut verdicts[i];
            v.stacks = stacks
                .iter()
                .filter_map(|(id, est)| {
                    let st = self.stack_store.get(id)?;
                    Some(SiteStack::of(st, est.bytes, est.blocks))
                })
                .take(SITE_STACKS)
                .collect();
            if v.stacks.is_empty() {
                let f = &v.final_survivors;
                v.stacks.push(SiteStack::of(
                    self.sites.stack(site),
                    f.bytes as f64,
                    f.blocks as f64,
                ));
            }
        }
    }

    /// The last snapshot's survivors with their full stacks (for pprof and
    /// folded stacks), and the whole heap's by birth epoch.
    fn survivor_profile(&self) -> SurvivorProfile {
        let mut profile_stacks: Vec<Stack> = Vec::new();
        let mut index: HashMap<u32, usize> = HashMap::default();
        let mut entries = Vec::with_capacity(self.last_sites.len());
        for e in &self.last_sites {
            let i = match index.get(&e.stack) {
                Some(&i) => i,
                None => {
                    let Some(st) = self.stack_store.get(&e.stack) else {
                        continue;
                    };
                    profile_stacks.push(st.clone());
                    index.insert(e.stack, profile_stacks.len() - 1);
                    profile_stacks.len() - 1
                }
            };
            entries.push(ProfileEntry {
                stack: i,
                epoch: e.epoch,
                bytes: e.bytes,
                blocks: e.blocks,
            });
        }
        SurvivorProfile {
            epoch: self.last_epoch,
            timestamp_unix_ns: self.last_timestamp,
            mean_interval_bytes: self.last_sampling.map_or(0, |s| s.mean_interval_bytes),
            entries,
            stacks: profile_stacks,
            whole_heap: self.last_epoch_entries.clone(),
        }
    }
}

/// The report's order of `sites`: leaks first, `ok` last, then by bytes
/// per cycle, final survivors and label.
fn report_order(sites: &[Verdict]) -> Vec<usize> {
    let rank = |v: &Verdict| (v.kind != VerdictKind::Leak, v.kind == VerdictKind::Ok);
    let mut order: Vec<usize> = (0..sites.len()).collect();
    order.sort_by(|&a, &b| {
        let (va, vb) = (&sites[a], &sites[b]);
        rank(va)
            .cmp(&rank(vb))
            .then(vb.bytes_per_cycle.total_cmp(&va.bytes_per_cycle))
            .then(vb.final_survivors.bytes.cmp(&va.final_survivors.bytes))
            .then_with(|| va.site.cmp(&vb.site))
    });
    order
}

/// Growth per cycle of the live heap, RSS, the allocator's resident memory
/// and the tool's own memory, over the verdicts' window.
fn resource_growth(points: &[ReportPoint], opts: &ClassifyOptions) -> ResourceGrowth {
    let w = window_len(points.len(), opts);
    let win = &points[points.len() - w..];
    let x: Vec<f64> = win.iter().map(|p| p.cycles as f64).collect();
    let slope_of = |f: &dyn Fn(&ReportPoint) -> Option<u64>| -> Option<f64> {
        let y: Option<Vec<f64>> = win.iter().map(|p| f(p).map(|v| v as f64)).collect();
        y.filter(|y| !y.is_empty()).map(|y| robust_slope(&x, &y))
    };
    ResourceGrowth {
        live_heap_bytes_per_cycle: slope_of(&|p| Some(p.live_bytes)).unwrap_or(0.0),
        rss_bytes_per_cycle: slope_of(&|p| p.rss_bytes),
        allocator_resident_bytes_per_cycle: slope_of(&|p| p.allocator_resident_bytes),
        tool_bytes_per_cycle: slope_of(&|p| Some(p.tool_bytes)).unwrap_or(0.0),
        rss_without_tool_bytes_per_cycle: slope_of(&ReportPoint::rss_without_tool),
        outside_heap_bytes_per_cycle: None,
        retention_note: None,
    }
    .with_notes()
}

/// Analyses a series (in time order): the whole heap from the exact
/// counters ([`Report::overall`]) and a verdict per call site.
#[must_use]
pub fn analyze(series: &[SnapshotFile], opts: &ClassifyOptions) -> Report {
    let mut a = Analyzer::new(opts);
    for f in series {
        a.push(f);
    }
    a.finish()
}
