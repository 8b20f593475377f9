//! Survivor matrices: live bytes and blocks by birth epoch (rows) at each
//! snapshot (columns), for the whole heap (exact) and per call site
//! (estimated). What `alloc-report show` prints for a series.

use serde::Serialize;

use super::site::SiteTable;
use super::survivors::{cycles_axis, live_in, merged_ranges, survivors, Estimate, Live};
use super::HashMap;
use crate::format::SnapshotFile;

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
                site: table.stack(site).label(),
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
