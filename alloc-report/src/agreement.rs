//! Whether the call sites agree with the whole heap, and how much a sampled
//! site's trend can say.
//!
//! The whole heap's verdict comes from exact counters; a site's from the
//! sampled blocks behind its estimate. Two rules keep the report from
//! contradicting itself:
//!
//! - **A confidence is no surer than its samples.** A site's survivors are
//!   a sum of `n` sampled blocks, so its rise is `n` events at most. The
//!   most a one-sided sign test on `n` events can show is all of them on the
//!   rising side, which chance gives with probability `2^-n`; the
//!   confidence a site shows is never above `1 - 2^-n` ([`confidence`]):
//!   three samples show at most 87.5%, never 99.9%. (The verdict itself
//!   still comes from the trend test and the false-discovery control.) A
//!   site with fewer than [`FEW_SAMPLES`] live samples says so in words at
//!   the head of its reason.
//! - **The sites must explain the leak, or say they cannot.** When the
//!   whole heap is a `leak`, the sites called `leak` should add up to at
//!   least [`EXPLAINED`] of its bytes per cycle; when they do not, the
//!   report says so in words ([`site_agreement`]): how much they explain,
//!   how many samples the sites rest on, and what to run to settle it.
//!   The analysis computes it once into the report
//!   ([`Report::agreement`](crate::analysis::Report::agreement)), so the
//!   JSON, text and HTML reports carry the same note.

use serde::Serialize;

use crate::analysis::{Report, Verdict, VerdictKind};

/// The share of the whole heap's bytes per cycle the `leak` sites must
/// explain for the report to call its sites certain.
pub const EXPLAINED: f64 = 0.8;

/// Below this many live samples a site's figures are called uncertain in
/// its reason (its relative standard error is above 1/sqrt(30), 18%).
pub const FEW_SAMPLES: u64 = 30;

/// The smallest p-value `samples` sampled blocks can support (`2^-n`, the
/// one-sided sign test's most extreme outcome); 1 for none.
pub fn sample_floor(samples: u64) -> f64 {
    0.5f64.powi(samples.min(1100) as i32)
}

/// The confidence a site shows: `1 - p`, capped at `1 - 2^-samples` for
/// a sampled site.
pub fn confidence(estimated: bool, samples: u64, p: f64) -> f64 {
    if estimated {
        1.0 - p.max(sample_floor(samples))
    } else {
        1.0 - p
    }
}

/// The words put before a sampled site's reason when its figures rest on
/// fewer than [`FEW_SAMPLES`] live samples; empty otherwise.
pub(crate) fn few_samples_caveat(estimated: bool, samples: u64) -> String {
    if estimated && samples < FEW_SAMPLES {
        format!("uncertain: {samples} live sample(s) behind this site's figures; ")
    } else {
        String::new()
    }
}

/// The note a report carries ([`Report::agreement`]) when the whole heap
/// leaks and the sites called `leak` explain less than [`EXPLAINED`] of
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

/// The agreement note of `report` (what [`Report::agreement`] holds):
/// `None` when the sites agree, the heap does not leak, or there are no
/// call-site data.
pub fn site_agreement(report: &Report) -> Option<SiteAgreement> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_samples_cannot_say_more_than_seven_eighths() {
        assert_eq!(sample_floor(3), 0.125);
        assert!(sample_floor(6) > 0.01);
        assert!(sample_floor(7) < 0.01);
        assert_eq!(sample_floor(0), 1.0);
        assert!(sample_floor(u64::MAX) >= 0.0);
    }

    #[test]
    fn few_samples_are_called_uncertain_in_words() {
        assert!(few_samples_caveat(true, 3).starts_with("uncertain: 3 live sample"));
        assert!(few_samples_caveat(true, FEW_SAMPLES).is_empty());
        assert!(few_samples_caveat(false, 0).is_empty());
    }
}
