//! Whether the call sites agree with the whole heap.
//!
//! The whole heap's verdict comes from exact counters; a site's from the
//! sampled blocks behind its estimate, whose confidence is capped by its
//! samples (`confidence.rs`). **The sites must explain
//! the leak, or say they cannot**: when the whole heap is a `leak`, the
//! sites called `leak` should add up to at least [`EXPLAINED`] of its
//! bytes per cycle; when they do not, the report says so in words
//! ([`site_agreement`]): how much they explain, how many samples the sites
//! rest on, and what to run to settle it. The analysis computes it once
//! into the report ([`Report::agreement`]), so the JSON, text and HTML
//! reports carry the same note ([`SiteAgreement`]).

use super::report::{Report, SiteAgreement};
use super::verdict::{Verdict, VerdictKind};

/// The share of the whole heap's bytes per cycle the `leak` sites must
/// explain for the report to call its sites certain (public, as the
/// documented rule a report's [`Report::agreement`] can be checked
/// against).
pub const EXPLAINED: f64 = 0.8;

/// The agreement note of `report` (what [`Report::agreement`] holds):
/// `None` when the sites agree, the heap does not leak, or there are no
/// call-site data.
pub(crate) fn site_agreement(report: &Report) -> Option<SiteAgreement> {
    let o = &report.overall;
    if o.kind != VerdictKind::Leak || o.bytes_per_cycle <= 0.0 {
        return None;
    }
    let sampling = report.sampling.as_ref()?;
    let leaks: Vec<&Verdict> = report
        .sites
        .iter()
        .filter(|v| v.estimated && v.kind == VerdictKind::Leak)
        .collect();
    let explained: f64 = leaks.iter().map(|v| v.bytes_per_cycle).sum();
    if explained >= EXPLAINED * o.bytes_per_cycle {
        return None;
    }
    let with_survivors = report
        .sites
        .iter()
        .filter(|v| v.estimated && v.final_survivors.bytes > 0);
    let (sites, samples) = with_survivors.fold((0, 0), |(n, s), v| (n + 1, s + v.samples));
    let note = format!(
        "the call sites are uncertain: the whole heap leaks {:.1} bytes/cycle (exact), but the \
         {} site(s) called leak explain {:.1} bytes/cycle ({:.0}%, less than {:.0}%). The {} \
         site(s) with survivors rest on {} live sample(s) ({} in the process). To settle it, \
         soak longer at the defaults (every allocation is recorded once two snapshots in a row \
         show survivors, and the verdicts read the last half of the run), or rerun the soak \
         with ALLOC_CORE_SAMPLE=all in the server's environment (every allocation recorded: \
         exact sites).",
        o.bytes_per_cycle,
        leaks.len(),
        explained,
        100.0 * explained / o.bytes_per_cycle,
        100.0 * EXPLAINED,
        sites,
        samples,
        sampling.live_sampled
    );
    Some(SiteAgreement {
        heap_bytes_per_cycle: o.bytes_per_cycle,
        leak_sites: leaks.len(),
        explained_bytes_per_cycle: explained,
        explained_share: explained / o.bytes_per_cycle,
        sites_with_survivors: sites,
        samples,
        live_sampled: sampling.live_sampled,
        note,
    })
}
