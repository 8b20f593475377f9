//! The difference between two snapshots: by birth epoch from the exact
//! counters ([`SnapshotDiff::rows`]) and per call site and birth epoch from
//! the sampled estimates ([`SnapshotDiff::sites`]).

use alloc_snapshot::{SiteLive, Snapshot};
use serde::Serialize;

use super::site::SiteTable;
use super::survivors::{live_in, merged_ranges, Estimate, Live};

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
    pub(crate) fn of(old: Estimate, new: Estimate) -> Self {
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
    /// The symbolised site ([`alloc_snapshot::Stack::label`]).
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
    // id without building keys.
    table.reserve(old.stacks.len());
    // Each snapshot's entries by site, usually `Snapshot::sites` itself.
    let (a, ra) = table.by_site(old);
    let (b, rb) = table.by_site(new);
    let nsites = table.len();
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
    let mut labels = table.take_labels();
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
