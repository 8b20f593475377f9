//! The report agrees with itself: when the whole heap leaks, the sites
//! called `leak` explain at least 80% of its bytes per cycle, or the report
//! says in words that the sites are uncertain, how many samples they rest
//! on and what to run; and a sampled site's confidence is never more than
//! its samples can give (`1 - 2^-samples`).

mod common;

use alloc_report::analysis::{analyze, ClassifyOptions, Report, VerdictKind};
use alloc_report::analysis::{sample_floor, EXPLAINED};
use alloc_report::render::{report_json, report_text};
use common::{site, site_series, SiteSpec};

const KIB: u64 = 1024;

/// A 16-byte leak per cycle beside a site of in-flight 4 KiB buffers (the
/// last 2 cycles' are live at each snapshot).
fn program() -> Vec<SiteSpec> {
    vec![
        site("src/conn.rs", 40, "conn::remember", 16, |_, _| 1),
        site("src/conn.rs", 50, "conn::buffer", 4 * KIB, |k, e| {
            u64::from(k - e <= 2) * 16
        }),
    ]
}

fn leak_sites_bytes(r: &Report) -> f64 {
    r.sites
        .iter()
        .filter(|v| v.estimated && v.kind == VerdictKind::Leak)
        .map(|v| v.bytes_per_cycle)
        .sum()
}

fn confidences_within_their_samples(r: &Report) {
    for v in r.sites.iter().filter(|v| v.estimated) {
        assert!(
            1.0 - v.confidence >= sample_floor(v.samples),
            "{}: confidence {} on {} samples",
            v.site,
            v.confidence,
            v.samples
        );
    }
}

#[test]
fn every_block_recorded_the_leak_sites_explain_the_heap() {
    let r = analyze(
        &site_series(60, &program(), 0, 1),
        &ClassifyOptions::default(),
    );
    assert_eq!(r.overall.kind, VerdictKind::Leak);
    let named = leak_sites_bytes(&r);
    assert!(
        named >= EXPLAINED * r.overall.bytes_per_cycle,
        "{named} of {:?}",
        r.overall
    );
    assert_eq!(r.agreement, None);
    assert!(!report_text(&r).contains("uncertain"));
    confidences_within_their_samples(&r);
}

#[test]
fn sparse_samples_say_the_sites_are_uncertain_and_what_to_run() {
    // At a 256 KiB interval a 16-byte block is sampled with p = 6e-5: over
    // 200 cycles the leak is almost never seen, while the heap's exact
    // counters see it every cycle.
    for seed in 0..8 {
        let r = analyze(
            &site_series(200, &program(), 256 * KIB, seed),
            &ClassifyOptions::default(),
        );
        assert_eq!(r.overall.kind, VerdictKind::Leak, "seed {seed}");
        confidences_within_their_samples(&r);
        let named = leak_sites_bytes(&r);
        if named >= EXPLAINED * r.overall.bytes_per_cycle {
            assert_eq!(r.agreement, None);
            continue;
        }
        let note = r
            .agreement
            .as_ref()
            .unwrap_or_else(|| panic!("seed {seed}: no note"))
            .note
            .clone();
        assert!(report_json(&r).contains("\"agreement\""));
        let samples: u64 = r
            .sites
            .iter()
            .filter(|v| v.final_survivors.bytes > 0)
            .map(|v| v.samples)
            .sum();
        assert!(note.contains("uncertain"), "{note}");
        assert!(
            note.contains(&format!("rest on {samples} live sample")),
            "{note}"
        );
        assert!(note.contains("ALLOC_CORE_SAMPLE=all"), "{note}");
        assert!(report_text(&r).contains(&note));
    }
}

#[test]
fn three_samples_never_make_a_confident_verdict() {
    // A site with a handful of live samples whose estimate rises in steps.
    let specs = vec![site("src/conn.rs", 60, "conn::rare", 64, |k, e| {
        u64::from(e % 50 == 7 && k >= e)
    })];
    let r = analyze(&site_series(200, &specs, 0, 5), &ClassifyOptions::default());
    let v = &r.sites[0];
    assert!(v.samples <= 4, "{v:?}");
    assert!(v.confidence <= 1.0 - sample_floor(v.samples), "{v:?}");
    assert!(v.confidence < 0.95, "{v:?}");
    assert!(v.reason.starts_with("uncertain:"), "{v:?}");
}
