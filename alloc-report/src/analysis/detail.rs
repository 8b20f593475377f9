//! What a report holds about each site beyond its verdict, and about the
//! whole heap beyond its curve: the survivors by birth epoch at the last
//! snapshot, and the source lines around the site's frame when its file is
//! on disk (read by
//! [`Source`], the one place the analysis reads anything but
//! snapshots). The renderers draw these; none computes them.

use alloc_snapshot::{EpochLive, SiteLive, Stack};
use serde::Serialize;

use super::source::{Source, SourceReader};
use super::stack::SiteStack;
use super::HashMap;

/// The whole heap's live bytes at the last snapshot by birth epoch (exact
/// counters), for the birth-epoch chart: the survivors by epoch, and what
/// is held from before the series (held minus survivors, [growth of existing blocks](super#growth-of-existing-blocks)).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HeapBirths {
    /// Live bytes born before the series' first snapshot, in closed epochs
    /// (held, not survivors).
    pub before_series_bytes: u64,
    /// Live blocks born before the series' first snapshot.
    pub before_series_blocks: u64,
    /// Survivors ([`super::survivors()`]: closed epochs from the first
    /// snapshot's on), by birth epoch or range of epochs (older epochs are
    /// folded into ranges by the collector), as the last snapshot lists
    /// them.
    pub epochs: Vec<EpochLive>,
}

/// The whole heap's survivors by birth epoch split by site, for a stacked
/// chart ([`Report::birth_layers`](super::Report::birth_layers)): the
/// columns of [`HeapBirths::epochs`], the bytes of each top site in each
/// column (estimated), and the rest of the heap.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BirthLayers {
    /// Each column's birth epochs, first and last.
    pub columns: Vec<(u32, u32)>,
    /// The top sites: an index into [`Report::sites`](super::Report::sites)
    /// and the site's bytes in each column.
    pub sites: Vec<(usize, Vec<f64>)>,
    /// The rest of the heap's bytes in each column (exact, less the sites'
    /// estimates, never below zero).
    pub rest: Vec<f64>,
}

/// One birth epoch of a site's survivors (estimated).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SiteBirth {
    /// The birth epoch.
    pub epoch: u32,
    /// Estimated surviving bytes born in it.
    pub bytes: f64,
    /// Estimated surviving blocks born in it.
    pub blocks: f64,
}

/// A site's survivors by birth epoch and the source around its line (its
/// stacks are the verdict's, [`super::Verdict::stacks`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteDetail {
    /// The site's label ([`super::Verdict::site`]).
    pub site: String,
    /// Survivors born during the series at the last snapshot, by birth
    /// epoch (estimated), oldest first.
    pub born: Vec<SiteBirth>,
    /// Estimated live bytes born before the series.
    pub born_before_series: f64,
    /// The source lines around the site's frame, of its stack with most
    /// surviving bytes (`None` when the frame has no file and line).
    pub source: Option<Source>,
    /// For a site that is not a leak, its stack with most surviving bytes
    /// at the last snapshot (a leak's stacks are its verdict's,
    /// [`super::Verdict::stacks`]); left out of the JSON when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_stack: Option<SiteStack>,
}

impl SiteDetail {
    /// A site with nothing at the last snapshot.
    pub(crate) fn empty(site: &str) -> Self {
        SiteDetail {
            site: site.to_string(),
            born: Vec::new(),
            born_before_series: 0.0,
            source: None,
            top_stack: None,
        }
    }
}

/// Per site (by site index), its detail from the last snapshot's entries
/// (`last_sites`, each with its site in `site_of`), the stacks by id and
/// the site labels.
pub(crate) fn site_details(
    last_sites: &[SiteLive],
    site_of: &[usize],
    stacks: &HashMap<u32, Stack>,
    labels: &[String],
    start_epoch: u32,
    end_epoch: u32,
) -> Vec<SiteDetail> {
    struct Acc {
        born: Vec<SiteBirth>,
        before: f64,
        by_stack: HashMap<u32, (f64, f64)>,
    }
    let mut acc: Vec<Acc> = labels
        .iter()
        .map(|_| Acc {
            born: Vec::new(),
            before: 0.0,
            by_stack: HashMap::default(),
        })
        .collect();
    for (e, &site) in last_sites.iter().zip(site_of) {
        let Some(a) = acc.get_mut(site) else { continue };
        if e.epoch >= end_epoch {
            continue;
        }
        if e.epoch < start_epoch {
            a.before += e.bytes;
        } else {
            match a.born.iter_mut().find(|b| b.epoch == e.epoch) {
                Some(b) => {
                    b.bytes += e.bytes;
                    b.blocks += e.blocks;
                }
                None => a.born.push(SiteBirth {
                    epoch: e.epoch,
                    bytes: e.bytes,
                    blocks: e.blocks,
                }),
            }
        }
        let s = a.by_stack.entry(e.stack).or_default();
        s.0 += e.bytes;
        s.1 += e.blocks;
    }
    let mut reader = SourceReader::default();
    acc.into_iter()
        .zip(labels)
        .map(|(mut a, label)| {
            a.born.sort_by_key(|b| b.epoch);
            let mut ids: Vec<(u32, f64, f64)> =
                a.by_stack.iter().map(|(&id, &(b, n))| (id, b, n)).collect();
            ids.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            let top = ids
                .iter()
                .find_map(|&(id, b, n)| Some((stacks.get(&id)?, b, n)));
            let source = top.and_then(|(s, _, _)| {
                let f = s.site()?;
                Some(reader.around(f.file.as_deref()?, f.line?))
            });
            SiteDetail {
                site: label.clone(),
                born: a.born,
                born_before_series: a.before,
                source,
                top_stack: top.map(|(s, b, n)| SiteStack::of(s, b, n)),
            }
        })
        .collect()
}
