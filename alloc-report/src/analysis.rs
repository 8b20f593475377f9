//! Pure analysis of snapshots: diffs, the survivor matrix, verdicts.
//!
//! No I/O here. Everything takes [`SnapshotFile`]s (a snapshot plus the
//! optional cycle count of its file) and returns plain data that the
//! renderers print.
//!
//! # Sites
//!
//! A *site* is a symbolised call site: the label of a stack's first user
//! frame ([`Stack::label`], `file:line function`). Stacks that share a label
//! (the same line reached through different callers, or the same line in
//! another snapshot or process, where stack ids differ) are added together,
//! so that sites match across a series. The full stacks are kept for the
//! pprof and folded-stack renderers ([`SurvivorProfile`]).
//!
//! Per-site figures are the snapshot's sampled estimates
//! ([`Snapshot::sites`]); the whole heap (the report's `overall` verdict)
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
//! started is left out. A folded bucket that reaches the start epoch counts
//! whole (its pre-series part is constant, so it shifts survivors but not
//! their slope).

use std::borrow::Cow;
use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use alloc_snapshot::{
    EpochLive, Frame, Histogram, Histograms, SamplingMode, SiteLive, Snapshot, Stack,
};
use serde::Serialize;

use crate::format::SnapshotFile;
use crate::growth::{self, Growth, GrowthKind};
use crate::stats::{long_pair_slope, robust_slope, trend_test};

/// A fast non-cryptographic hasher (multiply-rotate over 8-byte words) for
/// the analyser's tables of labels and stack ids, which hash hundreds of
/// thousands of short strings per report. Inputs are the user's own files,
/// so resistance to crafted collisions is not needed.
#[derive(Clone, Copy, Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }

    fn finish(&self) -> u64 {
        // The multiplications carry low bits upwards only; fold the high
        // bits back down, since tables index buckets by the low bits.
        let x = self.0 ^ (self.0 >> 32);
        let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 29)
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<FastHasher>>;

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

/// The difference between two snapshots, by birth epoch (exact) and by
/// call site and birth epoch (sampled estimates).
///
/// Snapshots hold net counts, so within one birth epoch a block freed and
/// another allocated between the two snapshots cancel: `survived` is the
/// smaller of old and new, `freed` and `appeared` the rest. For epochs that
/// were already closed at the old snapshot nothing can appear.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnapshotDiff {
    /// Epoch of the old snapshot.
    pub old_epoch: u32,
    /// Epoch of the new snapshot.
    pub new_epoch: u32,
    /// One row per birth-epoch group, oldest first.
    pub rows: Vec<DiffRow>,
    /// Sums over the rows (`first`/`last` span all of them).
    pub total: DiffRow,
    /// Per call site and birth epoch (sampled estimates), the sites whose
    /// live bytes grew most first. Empty when neither snapshot has sites.
    pub sites: Vec<SiteDiff>,
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
    fn add(&mut self, bytes: f64, blocks: f64) {
        self.bytes += bytes;
        self.blocks += blocks;
    }
}

/// What changed between two snapshots for one site and birth epoch (or a
/// site's total), as for [`DiffRow`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Change {
    /// Live in the old snapshot.
    pub old: Estimate,
    /// Live in the new snapshot.
    pub new: Estimate,
    /// Live in new, not accounted for by old (net).
    pub appeared: Estimate,
    /// Live in old, gone in new (net).
    pub freed: Estimate,
    /// Live in both.
    pub survived: Estimate,
}

impl Change {
    fn of(old: Estimate, new: Estimate) -> Self {
        let survived = Estimate {
            bytes: old.bytes.min(new.bytes),
            blocks: old.blocks.min(new.blocks),
        };
        Change {
            old,
            new,
            appeared: Estimate {
                bytes: new.bytes - survived.bytes,
                blocks: new.blocks - survived.blocks,
            },
            freed: Estimate {
                bytes: old.bytes - survived.bytes,
                blocks: old.blocks - survived.blocks,
            },
            survived,
        }
    }

    fn accumulate(&mut self, c: &Change) {
        for (t, r) in [
            (&mut self.old, c.old),
            (&mut self.new, c.new),
            (&mut self.appeared, c.appeared),
            (&mut self.freed, c.freed),
            (&mut self.survived, c.survived),
        ] {
            t.add(r.bytes, r.blocks);
        }
    }
}

/// One call site's part of a diff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteDiff {
    /// The symbolised site ([`Stack::label`]).
    pub site: String,
    /// Sums over the rows.
    pub total: Change,
    /// One row per birth epoch, oldest first.
    pub rows: Vec<SiteEpochDiff>,
}

/// One birth epoch of a [`SiteDiff`]: the estimates of the two snapshots,
/// from which [`SiteEpochDiff::change`] derives the rest (a diff holds
/// hundreds of thousands of these, so they are kept small).
///
/// Serialises as `{"epoch": ..., "change": {...}}`, the [`Change`] in full.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SiteEpochDiff {
    /// The birth epoch.
    pub epoch: u32,
    /// Live in the old snapshot.
    pub old: Estimate,
    /// Live in the new snapshot.
    pub new: Estimate,
}

impl SiteEpochDiff {
    /// What changed: `survived` is the smaller of old and new, `appeared`
    /// and `freed` the rest (as for [`SnapshotDiff`]).
    #[must_use]
    pub fn change(&self) -> Change {
        Change::of(self.old, self.new)
    }
}

impl Serialize for SiteEpochDiff {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("SiteEpochDiff", 2)?;
        st.serialize_field("epoch", &self.epoch)?;
        st.serialize_field("change", &self.change())?;
        st.end()
    }
}

/// The label of a stack's site, or the site frame's identity, borrowed:
/// hashing this is much cheaper than formatting [`Stack::label`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SiteKey<'a> {
    /// A frame with at least a function or a file: what its label shows.
    Symbol {
        function: Option<&'a str>,
        file: Option<&'a str>,
        line: Option<u32>,
    },
    /// A frame known only by its address.
    Address(u64),
    /// A stack without frames (the overflow stack when id 0).
    NoFrames(bool),
}

impl<'a> SiteKey<'a> {
    fn of(stack: &'a Stack) -> Self {
        match stack.site() {
            Some(f) if f.function.is_some() || f.file.is_some() => SiteKey::Symbol {
                function: f.function.as_deref(),
                // The label shows the file's short form: one site for all
                // checkouts of a file.
                file: f.file.as_deref().map(alloc_snapshot::short_path),
                // The label leaves the line out when the file is unknown.
                line: f.file.as_ref().and(f.line),
            },
            Some(f) => SiteKey::Address(f.ip),
            None => SiteKey::NoFrames(stack.id == 0),
        }
    }
}

/// [`Stack::label`], built without the formatting machinery for the usual
/// `file:line function` (a diff labels up to hundreds of thousands of
/// sites); the same text in every case.
pub(crate) fn site_label(stack: &Stack) -> String {
    if let Some(Frame {
        function: Some(func),
        file: Some(file),
        line: Some(line),
        ..
    }) = stack.site()
    {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut v = *line;
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let file = alloc_snapshot::short_path(file);
        let mut s = String::with_capacity(file.len() + func.len() + 12);
        s.push_str(file);
        s.push(':');
        for &d in &digits[at..] {
            s.push(char::from(d));
        }
        s.push(' ');
        s.push_str(func);
        return s;
    }
    stack.label()
}

/// A `Hasher` that passes a `u64` through: for tables keyed by a hash
/// already computed with [`FastHasher`].
#[derive(Clone, Copy, Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = FastHasher(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The [`FastHasher`] hash of a site key.
fn key_hash(key: &SiteKey<'_>) -> u64 {
    let mut h = FastHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Live estimates by site label and birth epoch of one snapshot:
/// `(site index, epoch) -> estimate`, and the site labels' stacks.
struct SiteTable<'a> {
    /// Site by the hash of its key: 16 bytes a slot rather than the 48 of
    /// the key itself and the site, so the table stays small and
    /// cache-warm. On a hit, the key is compared with the site's stack's.
    keys: StdHashMap<u64, usize, BuildHasherDefault<KeyHashHasher>>,
    /// Sites whose key's hash was already taken by another key.
    collided: HashMap<SiteKey<'a>, usize>,
    /// For each site, a stack that has its label.
    stacks: Vec<&'a Stack>,
    /// For each site, its label, made when the site is first met (while
    /// its strings are in the cache).
    labels: Vec<String>,
    /// The stacks resolved by the last [`SiteTable::runs`], by id
    /// ascending, with their site: a later snapshot of the same process
    /// checks its stack against the one with the same id first, walking
    /// both in order, before it hashes.
    resolved: Vec<(&'a Stack, usize)>,
}

/// A run of a snapshot's site entries of one stack: its site, and where
/// the run starts and ends in [`Snapshot::sites`].
#[derive(Clone, Copy)]
struct Run {
    site: usize,
    start: usize,
    end: usize,
}

impl<'a> SiteTable<'a> {
    fn new() -> Self {
        SiteTable {
            keys: StdHashMap::default(),
            collided: HashMap::default(),
            stacks: Vec::new(),
            labels: Vec::new(),
            resolved: Vec::new(),
        }
    }

    /// The site of `stack`, added if new.
    fn site_of(&mut self, stack: &'a Stack) -> usize {
        let key = SiteKey::of(stack);
        let n = self.stacks.len();
        let site = match self.keys.entry(key_hash(&key)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(n);
                n
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let site = *o.get();
                if SiteKey::of(self.stacks[site]) == key {
                    site
                } else {
                    *self.collided.entry(key).or_insert(n)
                }
            }
        };
        if site == n {
            self.stacks.push(stack);
            self.labels.push(site_label(stack));
        }
        site
    }

    /// The runs of `s`'s site entries (consecutive entries of one stack),
    /// in the order of [`Snapshot::sites`], with their sites; entries whose
    /// stack is missing are left out.
    fn runs(&mut self, s: &'a Snapshot) -> Vec<Run> {
        // At most one run per entry; pages of the room not used are never
        // touched.
        let mut out: Vec<Run> = Vec::with_capacity(s.sites.len());
        let mut walk = StackWalk::new(s);
        let before = std::mem::take(&mut self.resolved);
        self.resolved.reserve(s.stacks.len());
        let mut at = 0;
        let mut i = 0;
        while i < s.sites.len() {
            let id = s.sites[i].stack;
            let start = i;
            while i < s.sites.len() && s.sites[i].stack == id {
                i += 1;
            }
            let Some(stack) = walk.find(id, s) else {
                continue;
            };
            while before.get(at).is_some_and(|(st, _)| st.id < stack.id) {
                at += 1;
            }
            let site = match before.get(at) {
                Some(&(st, site)) if st.id == stack.id && SiteKey::of(st) == SiteKey::of(stack) => {
                    site
                }
                _ => self.site_of(stack),
            };
            if self.resolved.last().is_none_or(|(st, _)| st.id < stack.id) {
                self.resolved.push((stack, site));
            }
            out.push(Run {
                site,
                start,
                end: i,
            });
        }
        out
    }

    /// Per-site (site index, epoch, estimate) of `s`, summed over stacks
    /// that share a site, sorted by site then epoch.
    fn entries(&mut self, s: &'a Snapshot) -> Vec<(usize, u32, Estimate)> {
        let mut out: Vec<(usize, u32, Estimate)> = Vec::with_capacity(s.sites.len());
        for r in self.runs(s) {
            out.extend(s.sites[r.start..r.end].iter().map(|e| {
                (
                    r.site,
                    e.epoch,
                    Estimate {
                        bytes: e.bytes,
                        blocks: e.blocks,
                    },
                )
            }));
        }
        sort_and_sum(&mut out);
        out
    }

    /// `s`'s site entries as for [`SiteTable::entries`], but as a list of
    /// entries and, per site index, the range of its entries there. The
    /// list is [`Snapshot::sites`] itself when every site is one run with
    /// epochs ascending (the usual case: no copy), in any order of sites.
    fn by_site(&mut self, s: &'a Snapshot) -> (Cow<'a, [SiteLive]>, Vec<(usize, usize)>) {
        let runs = self.runs(s);
        let mut ranges = vec![(0, 0); self.stacks.len()];
        let mut clean = true;
        for r in &runs {
            let range = &mut ranges[r.site];
            if range.1 != 0
                || !s.sites[r.start..r.end]
                    .windows(2)
                    .all(|w| w[0].epoch < w[1].epoch)
            {
                clean = false;
                break;
            }
            *range = (r.start, r.end);
        }
        if clean {
            return (Cow::Borrowed(&s.sites), ranges);
        }
        ranges.fill((0, 0));
        let mut entries: Vec<(usize, u32, Estimate)> = Vec::with_capacity(s.sites.len());
        for r in &runs {
            entries.extend(s.sites[r.start..r.end].iter().map(|e| {
                (
                    r.site,
                    e.epoch,
                    Estimate {
                        bytes: e.bytes,
                        blocks: e.blocks,
                    },
                )
            }));
        }
        sort_and_sum(&mut entries);
        let mut list = Vec::with_capacity(entries.len());
        for (k, &(site, epoch, est)) in entries.iter().enumerate() {
            if ranges[site].1 == 0 {
                ranges[site].0 = k;
            }
            ranges[site].1 = k + 1;
            list.push(SiteLive {
                stack: 0,
                epoch,
                bytes: est.bytes,
                blocks: est.blocks,
                samples: 0,
            });
        }
        (Cow::Owned(list), ranges)
    }
}

/// Sorts `(site, epoch, estimate)` entries by site then epoch and adds up
/// those with the same site and epoch.
fn sort_and_sum(out: &mut Vec<(usize, u32, Estimate)>) {
    // Usually already in order (sites numbered in stack order).
    if !out.is_sorted_by_key(|&(site, epoch, _)| (site, epoch)) {
        out.sort_unstable_by_key(|&(site, epoch, _)| (site, epoch));
    }
    out.dedup_by(|b, a| {
        if (a.0, a.1) == (b.0, b.1) {
            a.2.add(b.2.bytes, b.2.blocks);
            true
        } else {
            false
        }
    });
}

/// Merges one site's entries of two snapshots (each by epoch ascending,
/// epochs distinct) by epoch: calls `f(epoch, old, new)` for each epoch in
/// either.
fn merge_epochs(a: &[SiteLive], b: &[SiteLive], mut f: impl FnMut(u32, Estimate, Estimate)) {
    let est = |e: &SiteLive| Estimate {
        bytes: e.bytes,
        blocks: e.blocks,
    };
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.epoch == y.epoch => {
                f(x.epoch, est(x), est(y));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.epoch > y.epoch => {
                f(y.epoch, Estimate::default(), est(y));
                j += 1;
            }
            (Some(x), _) => {
                f(x.epoch, est(x), Estimate::default());
                i += 1;
            }
            (None, Some(y)) => {
                f(y.epoch, Estimate::default(), est(y));
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// Diffs two snapshots' call-site estimates per site and birth epoch.
fn diff_sites(old: &Snapshot, new: &Snapshot) -> Vec<SiteDiff> {
    if old.sites.is_empty() && new.sites.is_empty() {
        return Vec::new();
    }
    let mut table = SiteTable::new();
    // Room for the old snapshot's stacks; the new one's mostly resolve by
    // id without the table (`SiteTable::resolved`).
    table.keys.reserve(old.stacks.len());
    // Each snapshot's entries by site, usually `Snapshot::sites` itself.
    let (a, ra) = table.by_site(old);
    let (b, rb) = table.by_site(new);
    let nsites = table.stacks.len();
    fn slice<'s>(list: &'s [SiteLive], r: &[(usize, usize)], site: usize) -> &'s [SiteLive] {
        let (start, end) = r.get(site).copied().unwrap_or((0, 0));
        &list[start..end]
    }
    // Each site's growth, summed as its total will be, and rows: the sites'
    // order is known before they are made.
    let mut order: Vec<(f64, usize)> = Vec::with_capacity(nsites);
    let mut rows_of: Vec<usize> = vec![0; nsites];
    for (site, rows) in rows_of.iter_mut().enumerate() {
        let (mut o, mut n) = (0.0, 0.0);
        merge_epochs(slice(&a, &ra, site), slice(&b, &rb, site), |_, x, y| {
            o += x.bytes;
            n += y.bytes;
            *rows += 1;
        });
        if *rows > 0 {
            order.push((n - o, site));
        }
    }
    // Most growth first; ties in the order of the old snapshot's stacks
    // (site indices are numbered in that order).
    order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut dest: Vec<usize> = vec![0; nsites];
    for (to, &(_, site)) in order.iter().enumerate() {
        dest[site] = to;
    }
    // Made in site order (reading the entries in order) and put in place.
    let mut sites: Vec<SiteDiff> = (0..order.len())
        .map(|_| SiteDiff {
            site: String::new(),
            total: Change::default(),
            rows: Vec::new(),
        })
        .collect();
    let mut labels = std::mem::take(&mut table.labels);
    for (site, label) in labels.iter_mut().enumerate() {
        if rows_of[site] == 0 {
            continue;
        }
        // Each rows vector allocated once, at its size.
        let mut d = SiteDiff {
            site: std::mem::take(label),
            total: Change::default(),
            rows: Vec::with_capacity(rows_of[site]),
        };
        merge_epochs(
            slice(&a, &ra, site),
            slice(&b, &rb, site),
            |epoch, old, new| {
                d.total.accumulate(&Change::of(old, new));
                d.rows.push(SiteEpochDiff { epoch, old, new });
            },
        );
        sites[dest[site]] = d;
    }
    sites
}

/// Diffs two snapshots by birth epoch.
#[must_use]
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
        sites: diff_sites(old, new),
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
#[must_use]
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

/// The survivor matrix of one call site: estimated live bytes and blocks by
/// birth epoch (rows) at each snapshot (columns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteMatrix {
    /// The symbolised site.
    pub site: String,
    /// One row per birth epoch with something live at some snapshot.
    pub rows: Vec<SiteMatrixRow>,
    /// Survivors (closed epochs since the series' start) at each snapshot.
    pub survivors: Vec<Estimate>,
}

/// One birth epoch of a [`SiteMatrix`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteMatrixRow {
    /// The birth epoch.
    pub epoch: u32,
    /// Live at each snapshot.
    pub cells: Vec<Estimate>,
}

/// The survivor matrix of every call site of a series, sites with the most
/// surviving bytes at the last snapshot first. Empty without call-site data.
pub fn site_survivor_matrix(series: &[SnapshotFile]) -> Vec<SiteMatrix> {
    let start_epoch = series.first().map_or(0, |f| f.snapshot.epoch);
    let n = series.len();
    let mut table = SiteTable::new();
    let mut rows: Vec<HashMap<u32, Vec<Estimate>>> = Vec::new();
    let mut surv: Vec<Vec<Estimate>> = Vec::new();
    for (k, f) in series.iter().enumerate() {
        for (site, epoch, est) in table.entries(&f.snapshot) {
            if site >= rows.len() {
                rows.resize_with(site + 1, HashMap::default);
                surv.resize_with(site + 1, || vec![Estimate::default(); n]);
            }
            let cells = rows[site]
                .entry(epoch)
                .or_insert_with(|| vec![Estimate::default(); n]);
            cells[k].add(est.bytes, est.blocks);
            if epoch >= start_epoch && epoch < f.snapshot.epoch {
                surv[site][k].add(est.bytes, est.blocks);
            }
        }
    }
    let mut out: Vec<SiteMatrix> = rows
        .into_iter()
        .zip(surv)
        .enumerate()
        .map(|(site, (rows, survivors))| {
            let mut rows: Vec<SiteMatrixRow> = rows
                .into_iter()
                .map(|(epoch, cells)| SiteMatrixRow { epoch, cells })
                .collect();
            rows.sort_by_key(|r| r.epoch);
            SiteMatrix {
                site: table.stacks[site].label(),
                rows,
                survivors,
            }
        })
        .collect();
    let last = |m: &SiteMatrix| m.survivors.last().map_or(0.0, |e| e.bytes);
    out.sort_by(|a, b| {
        last(b)
            .total_cmp(&last(a))
            .then_with(|| a.site.cmp(&b.site))
    });
    out
}

/// The survivors of one site across a series: the classifier's input.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSeries {
    /// Site name: the symbolised call site, or [`ALL_SITES`] for the whole
    /// heap.
    pub site: String,
    /// Cycles at each snapshot.
    pub cycles: Vec<u64>,
    /// Epoch of each snapshot.
    pub epochs: Vec<u32>,
    /// Surviving bytes at each snapshot.
    pub bytes: Vec<f64>,
    /// Surviving blocks at each snapshot.
    pub blocks: Vec<f64>,
    /// The series' first epoch.
    pub start_epoch: u32,
    /// The last snapshot's epoch.
    pub end_epoch: u32,
    /// The distinct birth epochs with survivors at the last snapshot,
    /// ascending (for a folded range, its first and last epochs).
    pub birth_epochs: Vec<u32>,
    /// Whether the figures are sampled estimates (a call site) rather than
    /// exact counts (the whole heap).
    pub estimated: bool,
    /// Live sampled blocks behind the estimate at the last snapshot (0 for
    /// exact counts).
    pub samples: u64,
    /// The site's frame, with the full source path that the label shortens
    /// (`None` for the whole heap).
    pub location: Option<Frame>,
}

impl SiteSeries {
    /// The whole heap of `series` as one site, from the exact counters.
    pub fn whole_heap(series: &[SnapshotFile]) -> Self {
        let start_epoch = series.first().map_or(0, |f| f.snapshot.epoch);
        let end_epoch = series.last().map_or(start_epoch, |f| f.snapshot.epoch);
        let birth_epochs = series.last().map_or_else(Vec::new, |f| {
            f.snapshot
                .epochs
                .iter()
                .filter(|e| e.last >= start_epoch && e.last < f.snapshot.epoch)
                .filter(|e| e.live_bytes > 0 || e.live_blocks > 0)
                .flat_map(|e| [e.first.max(start_epoch), e.last])
                .collect::<Vec<u32>>()
        });
        let mut birth_epochs = birth_epochs;
        birth_epochs.dedup();
        let surv: Vec<Live> = series
            .iter()
            .map(|f| survivors(&f.snapshot, start_epoch))
            .collect();
        SiteSeries {
            site: ALL_SITES.to_string(),
            cycles: cycles_axis(series).0,
            epochs: series.iter().map(|f| f.snapshot.epoch).collect(),
            bytes: surv.iter().map(|l| l.bytes as f64).collect(),
            blocks: surv.iter().map(|l| l.blocks as f64).collect(),
            start_epoch,
            end_epoch,
            birth_epochs,
            estimated: false,
            samples: 0,
            location: None,
        }
    }

    /// The newest birth epoch with survivors at the last snapshot.
    #[must_use]
    pub fn newest_survivor_epoch(&self) -> Option<u32> {
        self.birth_epochs.last().copied()
    }
}

/// The verdict on one site.
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
    /// The site: `file:line function` of the call site, or [`ALL_SITES`].
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
    /// existing blocks that grow; see [`crate::growth`]) and its bytes per
    /// cycle.
    pub growth: Option<Growth>,
    /// The site's frame: function, line and the full source path (the
    /// label shows its short form). Absent for the whole heap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Frame>,
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
fn window_len(n: usize, opts: &ClassifyOptions) -> usize {
    let frac = (n as f64 * opts.window_fraction).ceil() as usize;
    frac.max(opts.min_window).min(n)
}

/// The trend statistics of one site over its window.
#[derive(Clone, Copy, Debug)]
struct Trend {
    window: usize,
    bytes_per_cycle: f64,
    blocks_per_cycle: f64,
    p_increasing: f64,
    /// Distinct birth epochs of the last snapshot's survivors born inside
    /// the window.
    epochs_in_window: usize,
    /// Whether some survivor at the last snapshot was born before the
    /// middle of the window (old blocks are still held).
    holds_old: bool,
}

fn trend(site: &SiteSeries, opts: &ClassifyOptions) -> Trend {
    trend_on(site, &site.cycles, &site.epochs, opts)
}

/// [`trend`] with the axes given apart (all sites of a report share them).
fn trend_on(site: &SiteSeries, cycles: &[u64], epochs: &[u32], opts: &ClassifyOptions) -> Trend {
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
fn trend_in_window(
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
    // Exact counts: Theil–Sen. Sampled estimates rise in rare big steps:
    // the median slope of long pairs (see `stats::long_pair_slope`).
    let slope = if site.estimated {
        long_pair_slope
    } else {
        robust_slope
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
fn decide(site: &SiteSeries, t: &Trend, threshold: f64, opts: &ClassifyOptions) -> Verdict {
    let n = site.bytes.len().min(site.blocks.len());
    let last_bytes = n.checked_sub(1).map_or(0.0, |i| site.bytes[i]);
    let last_blocks = n.checked_sub(1).map_or(0.0, |i| site.blocks[i]);
    let final_survivors = Live {
        bytes: last_bytes.max(0.0).round() as u64,
        blocks: last_blocks.max(0.0).round() as u64,
    };
    let span = site.end_epoch.saturating_sub(site.start_epoch);
    let warmup_epochs = ((f64::from(span) * opts.warmup_fraction).ceil() as u32).max(1);
    let w = t.window;
    let p = t.p_increasing;
    let grows = p < opts.alpha && t.bytes_per_cycle > 0.0;
    let mut caveat = String::new();
    if grows && p > threshold {
        caveat = format!(
            "survivors rise (p = {p:.2e}) but not beyond what chance gives among this many \
             sites (false-discovery control); "
        );
    } else if grows && t.epochs_in_window < opts.min_leak_epochs {
        caveat = format!(
            "survivors rise, but come from only {} birth epoch(s) inside the window; ",
            t.epochs_in_window
        );
    } else if grows && !t.holds_old {
        caveat = "survivors rise, but none born before the middle of the window is still \
                  live (entries turn over, as in a cache); "
            .to_string();
    }
    let (kind, reason) = if last_bytes <= 0.0 && last_blocks <= 0.0 {
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
    };
    let reason = match kind {
        VerdictKind::Ok => reason,
        _ => crate::agreement::few_samples_caveat(site.estimated, site.samples) + &reason,
    };
    Verdict {
        site: site.site.clone(),
        kind,
        bytes_per_cycle: t.bytes_per_cycle,
        blocks_per_cycle: t.blocks_per_cycle,
        confidence: crate::agreement::confidence(site.estimated, site.samples, p),
        final_survivors,
        window: w,
        estimated: site.estimated,
        samples: site.samples,
        growth: (kind == VerdictKind::Leak).then_some(Growth {
            kind: GrowthKind::NewBlocks,
            bytes_per_cycle: t.bytes_per_cycle,
        }),
        reason,
        location: site.location.clone(),
    }
}

/// Classifies one site on its own.
///
/// - `ok`: nothing survives at the last snapshot;
/// - `leak`: over the last part of the run (see [`ClassifyOptions`]) the
///   Mann–Kendall test finds survivor bytes increasing at level `alpha`,
///   the slope is positive, the survivors were born in at least
///   `min_leak_epochs` distinct epochs inside that window, and some were
///   born before its middle (the test assumes independent points; a
///   cache whose entries turn over makes autocorrelated survivors that can
///   look like a rise, but holds no old blocks);
/// - `warmup`: otherwise, if every survivor was born in the first
///   `warmup_fraction` of the run's epochs;
/// - `plateau`: otherwise (survivors from later epochs, but not growing).
///
/// With fewer than 6 points in the window the test cannot reach 1%, so a
/// short series is never called a leak. [`analyze`] classifies many sites
/// together and adds a false-discovery control across them.
#[must_use]
pub fn classify(site: &SiteSeries, opts: &ClassifyOptions) -> Verdict {
    decide(site, &trend(site, opts), opts.alpha, opts)
}

/// The Benjamini–Hochberg threshold: the largest p-value `p_(k)` with
/// `p_(k) <= k / m * alpha` (0 when none).
fn benjamini_hochberg(p_values: &[f64], alpha: f64) -> f64 {
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
    pub fn of(h: &Histogram) -> Self {
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
    fn of(h: &Histograms, surv: &[EpochLive], epoch: u32) -> Self {
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
    pub mode: SamplingMode,
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
    /// data has one row, the whole heap ([`ALL_SITES`]).
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
    /// Survivors by stack at the last snapshot (for pprof and folded
    /// stacks; left out of the JSON, which has the per-site verdicts).
    #[serde(skip)]
    pub profile: SurvivorProfile,
}

impl Report {
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

/// Finds the stacks named by a snapshot's sites, which are sorted by stack
/// id, walking the stacks (sorted by id in every valid file) alongside
/// instead of searching for each; falls back to a search when unsorted.
struct StackWalk<'a> {
    stacks: &'a [Stack],
    at: usize,
}

impl<'a> StackWalk<'a> {
    fn new(s: &'a Snapshot) -> Self {
        StackWalk {
            stacks: &s.stacks,
            at: 0,
        }
    }

    fn find(&mut self, id: u32, s: &'a Snapshot) -> Option<&'a Stack> {
        while let Some(st) = self.stacks.get(self.at) {
            match st.id.cmp(&id) {
                std::cmp::Ordering::Less => self.at += 1,
                std::cmp::Ordering::Equal => return Some(st),
                std::cmp::Ordering::Greater => break,
            }
        }
        s.stack(id)
    }
}

/// A stack id's site, cached with what identifies the stack cheaply.
#[derive(Clone, Copy)]
struct StackCacheEntry {
    site: usize,
    ip: Option<u64>,
    symbolised: (bool, bool, Option<u32>),
    frames: usize,
    user_frame: Option<u32>,
}

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
    /// Site labels, by site index.
    site_labels: Vec<String>,
    /// The frame each site's label was made from, by site index.
    site_frames: Vec<Option<Frame>>,
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
    labels: HashMap<String, usize>,
    /// Stack id -> site, for ids below a bound; others go through `labels`.
    by_id: Vec<Option<StackCacheEntry>>,
    /// Per-site accumulator for the current snapshot.
    acc: Vec<Estimate>,
    any_sites: bool,
    // From the last snapshot:
    last_epoch_entries: Vec<EpochLive>,
    last_sites: Vec<SiteLive>,
    /// The site of each entry of `last_sites`.
    last_site_of: Vec<usize>,
    /// Every stack seen, by id (the newest version of each).
    stack_store: HashMap<u32, Stack>,
    last_histograms: Histograms,
    last_sampling: Option<SamplingSummary>,
    last_timestamp: u64,
    last_epoch: u32,
}

/// Stack ids below this are cached in a vector.
const ID_CACHE: u32 = 1 << 20;

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
            site_labels: Vec::new(),
            site_frames: Vec::new(),
            cells: Vec::new(),
            row_start: Vec::new(),
            last_change: Vec::new(),
            labels: HashMap::default(),
            by_id: Vec::new(),
            acc: Vec::new(),
            any_sites: false,
            last_epoch_entries: Vec::new(),
            last_sites: Vec::new(),
            last_site_of: Vec::new(),
            stack_store: HashMap::default(),
            last_histograms: Histograms::default(),
            last_sampling: None,
            last_timestamp: 0,
            last_epoch: 0,
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

    /// The site index of a stack, interning its label.
    fn site_of(&mut self, stack: &Stack) -> usize {
        let ip = stack.site().map(|f| f.ip);
        let probe = StackCacheEntry {
            site: 0,
            ip,
            symbolised: stack.site().map_or((false, false, None), |f| {
                (f.function.is_some(), f.file.is_some(), f.line)
            }),
            frames: stack.frames.len(),
            user_frame: stack.user_frame,
        };
        let same = |e: &StackCacheEntry| {
            e.ip == probe.ip
                && e.symbolised == probe.symbolised
                && e.frames == probe.frames
                && e.user_frame == probe.user_frame
        };
        if stack.id < ID_CACHE {
            if let Some(Some(e)) = self.by_id.get(stack.id as usize) {
                if same(e) {
                    return e.site;
                }
            }
        }
        self.stack_store.insert(stack.id, stack.clone());
        let label = site_label(stack);
        let site = match self.labels.get(&label) {
            Some(&s) => s,
            None => {
                let s = self.site_labels.len();
                self.labels.insert(label.clone(), s);
                self.site_labels.push(label);
                self.site_frames.push(stack.site().cloned());
                self.acc.push(Estimate::default());
                self.last_change.push(0);
                s
            }
        };
        if stack.id < ID_CACHE {
            let i = stack.id as usize;
            if self.by_id.len() <= i {
                self.by_id.resize(i + 1, None);
            }
            self.by_id[i] = Some(StackCacheEntry { site, ..probe });
        }
        site
    }

    /// Adds the next snapshot of the series (in time order).
    pub fn push(&mut self, file: &SnapshotFile) {
        let s = &file.snapshot;
        if self.files == 0 {
            self.start_epoch = s.epoch;
        }
        let start = self.start_epoch;
        let surv = survivors(s, start);
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

        // Call sites: survivors per site label. Entries are sorted by stack,
        // so the site is looked up once per stack.
        self.last_sites.clear();
        self.last_site_of.clear();
        let mut cur: Option<(u32, Option<usize>)> = None;
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
            self.acc[site].add(e.bytes, e.blocks);
            self.last_sites.push(*e);
            self.last_site_of.push(site);
        }
        self.any_sites |= !s.sites.is_empty();
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

        // What the report needs from the last snapshot only.
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
        self.last_sampling = (!s.sites.is_empty() || s.sampling.mode != SamplingMode::Off)
            .then_some(SamplingSummary {
                mode: s.sampling.mode,
                mean_interval_bytes: s.sampling.mean_interval_bytes,
                live_sampled: s.sampling.live_sampled,
                dropped_full: s.sampling.dropped_full,
                stack_overflow: s.sampling.stack_overflow,
            });
    }

    /// The report.
    pub fn finish(self) -> Report {
        let opts = self.opts;
        let (cycles, cycles_source) = {
            let all = !self.file_cycles.is_empty() && self.file_cycles.iter().all(Option::is_some);
            if all {
                let c0 = self.file_cycles[0].unwrap_or(0);
                (
                    self.file_cycles
                        .iter()
                        .map(|c| c.unwrap_or(c0).saturating_sub(c0))
                        .collect::<Vec<u64>>(),
                    CyclesSource::Sidecar,
                )
            } else {
                let e0 = self.epochs.first().copied().unwrap_or(0);
                (
                    self.epochs
                        .iter()
                        .map(|&e| u64::from(e.saturating_sub(e0)))
                        .collect(),
                    CyclesSource::Epochs,
                )
            }
        };
        let mut points = self.points;
        for (p, &c) in points.iter_mut().zip(&cycles) {
            p.cycles = c;
        }
        let start_epoch = self.start_epoch;
        let end_epoch = self.epochs.last().copied().unwrap_or(start_epoch);
        let heap = SiteSeries {
            site: ALL_SITES.to_string(),
            cycles: cycles.clone(),
            epochs: self.epochs.clone(),
            bytes: self.heap_bytes,
            blocks: self.heap_blocks,
            start_epoch,
            end_epoch,
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
            classify(&heap, &opts),
            &self.held.iter().map(|l| l.bytes as f64).collect::<Vec<_>>(),
            &self
                .held
                .iter()
                .map(|l| l.blocks as f64)
                .collect::<Vec<_>>(),
            &all_x,
            window_len(self.held.len(), &opts),
        );

        // Per-site verdicts, with a false-discovery control across sites.
        let nsites = self.site_labels.len();
        let mut samples = vec![0u64; nsites];
        let mut births: Vec<Vec<u32>> = vec![Vec::new(); nsites];
        for (e, &site) in self.last_sites.iter().zip(&self.last_site_of) {
            samples[site] += e.samples;
            births[site].push(e.epoch);
        }
        // Copy out the trend window of the sites that changed inside it, in
        // blocks of sites, so that reads stay within a few cache lines of
        // each row and writes go to a few columns at a time.
        let n = self.row_start.len();
        let w = window_len(n, &opts);
        let row = |k: usize| {
            let end = self
                .row_start
                .get(k + 1)
                .copied()
                .unwrap_or(self.cells.len());
            &self.cells[self.row_start[k]..end]
        };
        let cell = |k: usize, site: usize| row(k).get(site).copied().unwrap_or_default();
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
                let row = row(k);
                for &site in chunk {
                    let v = row.get(site).copied().unwrap_or_default();
                    bytes[site].push(v.bytes);
                    blocks[site].push(v.blocks);
                }
            }
        }
        for site in 0..nsites {
            if bytes[site].is_empty() && n > 0 {
                // Flat over the window: its last value stands for it.
                let v = cell(n - 1, site);
                bytes[site].push(v.bytes);
                blocks[site].push(v.blocks);
            }
        }
        let mut series: Vec<SiteSeries> = Vec::with_capacity(nsites);
        for (((((label, location), samples), births), bytes), blocks) in self
            .site_labels
            .into_iter()
            .zip(self.site_frames)
            .zip(samples)
            .zip(births)
            .zip(bytes)
            .zip(blocks)
        {
            let mut birth_epochs = births;
            birth_epochs.sort_unstable();
            birth_epochs.dedup();
            series.push(SiteSeries {
                site: label,
                cycles: Vec::new(),
                epochs: Vec::new(),
                bytes,
                blocks,
                start_epoch,
                end_epoch,
                birth_epochs,
                estimated: true,
                samples,
                location,
            });
        }
        let x: Vec<f64> = cycles[n - w..n].iter().map(|&c| c as f64).collect();
        let marks = (
            heap.epochs.get(n - w).copied().unwrap_or(start_epoch),
            heap.epochs
                .get(n - w + w / 2)
                .copied()
                .unwrap_or(start_epoch),
        );
        let trends: Vec<Trend> = series
            .iter()
            .map(|s| {
                if s.bytes.len() == w {
                    trend_in_window(s, &s.bytes, &s.blocks, &x, marks)
                } else {
                    let one = &s.bytes[s.bytes.len() - 1..];
                    let t =
                        trend_in_window(s, one, &s.blocks[s.blocks.len() - 1..], &x[..1], marks);
                    Trend { window: w, ..t }
                }
            })
            .collect();
        let tested: Vec<f64> = series
            .iter()
            .zip(&trends)
            .filter(|(s, _)| s.bytes.last().is_some_and(|&b| b > 0.0))
            .map(|(_, t)| t.p_increasing)
            .collect();
        let threshold = benjamini_hochberg(&tested, opts.alpha);
        let mut sites: Vec<Verdict> = series
            .iter()
            .zip(&trends)
            .enumerate()
            .map(|(i, (s, t))| {
                let v = decide(s, t, threshold, &opts);
                if v.kind == VerdictKind::Leak || s.bytes.len() != w {
                    return v;
                }
                // Changed inside the window: the growth of existing blocks.
                let (y, b): (Vec<f64>, Vec<f64>) = (0..n)
                    .map(|k| (cell(k, i).bytes, cell(k, i).blocks))
                    .unzip();
                growth::apply(v, &y, &b, &all_x, w)
            })
            .collect();
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
        let site_curves = order
            .iter()
            .take(SITE_CURVES)
            .filter(|&&i| sites[i].kind != VerdictKind::Ok)
            .map(|&i| SiteCurve {
                site: series[i].site.clone(),
                bytes: (0..n).map(|k| cell(k, i).bytes).collect(),
            })
            .collect();
        let mut sorted: Vec<Verdict> = Vec::with_capacity(sites.len());
        for &i in &order {
            sorted.push(std::mem::replace(&mut sites[i], overall.clone()));
        }
        let sites = if self.any_sites {
            sorted
        } else {
            vec![overall.clone()]
        };

        let w = window_len(points.len(), &opts);
        let win = &points[points.len() - w..];
        let x: Vec<f64> = win.iter().map(|p| p.cycles as f64).collect();
        let slope_of = |f: &dyn Fn(&ReportPoint) -> Option<u64>| -> Option<f64> {
            let y: Option<Vec<f64>> = win.iter().map(|p| f(p).map(|v| v as f64)).collect();
            y.filter(|y| !y.is_empty()).map(|y| robust_slope(&x, &y))
        };
        let growth = ResourceGrowth {
            live_heap_bytes_per_cycle: slope_of(&|p| Some(p.live_bytes)).unwrap_or(0.0),
            rss_bytes_per_cycle: slope_of(&|p| p.rss_bytes),
            allocator_resident_bytes_per_cycle: slope_of(&|p| p.allocator_resident_bytes),
            tool_bytes_per_cycle: slope_of(&|p| Some(p.tool_bytes)).unwrap_or(0.0),
            rss_without_tool_bytes_per_cycle: slope_of(&ReportPoint::rss_without_tool),
        };
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
        let histograms = HistogramSummary::of(
            &self.last_histograms,
            &self.last_epoch_entries,
            self.last_epoch,
        );
        let profile = SurvivorProfile {
            epoch: self.last_epoch,
            timestamp_unix_ns: self.last_timestamp,
            mean_interval_bytes: self.last_sampling.map_or(0, |s| s.mean_interval_bytes),
            entries,
            stacks: profile_stacks,
            whole_heap: self.last_epoch_entries,
        };
        Report {
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
            profile,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_table_tells_keys_with_one_hash_apart() {
        let stack = |id: u32, function: &str| Stack {
            id,
            frames: vec![Frame {
                ip: 0x1234,
                function: Some(function.into()),
                file: Some("a.rs".into()),
                line: Some(3),
            }],
            user_frame: None,
        };
        let (x, y, x2) = (stack(1, "x"), stack(2, "y"), stack(3, "x"));
        let mut table = SiteTable::new();
        assert_eq!(table.site_of(&x), 0);
        // Make `y`'s hash collide with `x`'s site.
        table.keys.insert(key_hash(&SiteKey::of(&y)), 0);
        assert_eq!(table.site_of(&y), 1);
        assert_eq!(table.site_of(&y), 1);
        assert_eq!(table.site_of(&x2), 0);
        assert_eq!(table.labels, ["a.rs:3 x", "a.rs:3 y"]);
    }

    #[test]
    fn site_epoch_diff_serialises_its_change() {
        let row = SiteEpochDiff {
            epoch: 7,
            old: Estimate {
                bytes: 30.0,
                blocks: 3.0,
            },
            new: Estimate {
                bytes: 10.0,
                blocks: 5.0,
            },
        };
        assert_eq!(
            serde_json::to_value(row).unwrap(),
            serde_json::json!({
                "epoch": 7,
                "change": {
                    "old": {"bytes": 30.0, "blocks": 3.0},
                    "new": {"bytes": 10.0, "blocks": 5.0},
                    "appeared": {"bytes": 0.0, "blocks": 2.0},
                    "freed": {"bytes": 20.0, "blocks": 0.0},
                    "survived": {"bytes": 10.0, "blocks": 3.0},
                }
            })
        );
    }

    #[test]
    fn site_label_is_stack_label() {
        let frame = |function: Option<&str>, file: Option<&str>, line: Option<u32>| Frame {
            ip: 0x1234,
            function: function.map(String::from),
            file: file.map(String::from),
            line,
        };
        let stacks = [
            Stack {
                id: 1,
                frames: vec![frame(Some("f"), Some("a.rs"), Some(0))],
                user_frame: None,
            },
            Stack {
                id: 9,
                frames: vec![frame(
                    Some("f"),
                    Some("/r/.cargo/registry/src/idx/tokio-1.0.0/src/a.rs"),
                    Some(3),
                )],
                user_frame: None,
            },
            Stack {
                id: 2,
                frames: vec![frame(Some("f"), Some("a.rs"), Some(4_294_967_295))],
                user_frame: Some(0),
            },
            Stack {
                id: 3,
                frames: vec![frame(Some("f"), Some("a.rs"), None)],
                user_frame: None,
            },
            Stack {
                id: 4,
                frames: vec![frame(None, Some("a.rs"), Some(7))],
                user_frame: None,
            },
            Stack {
                id: 5,
                frames: vec![frame(Some("f"), None, Some(7))],
                user_frame: None,
            },
            Stack {
                id: 6,
                frames: vec![frame(None, None, None)],
                user_frame: None,
            },
            Stack {
                id: 0,
                frames: vec![],
                user_frame: None,
            },
            Stack {
                id: 7,
                frames: vec![],
                user_frame: None,
            },
            Stack {
                id: 8,
                frames: vec![
                    frame(Some("alloc"), Some("x.rs"), Some(1)),
                    frame(Some("g"), Some("b.rs"), Some(10)),
                ],
                user_frame: Some(1),
            },
        ];
        for st in &stacks {
            assert_eq!(site_label(st), st.label());
        }
    }

    #[test]
    fn fast_hasher_spreads_keys_that_differ_at_the_end() {
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<FastHasher>::default();
        let mut low: Vec<u64> = (0..1000)
            .map(|i| b.hash_one(format!("server::module::handler_{i}")) & 0xfff)
            .collect();
        low.sort_unstable();
        low.dedup();
        assert!(low.len() > 700, "{} distinct low bits of 1000", low.len());
    }
}
