//! Shared by the `growth_*` tests: a 20,000-cycle soak run in this process
//! at the default sampling settings, fed to alloc-report's [`Analyzer`] as
//! a new user would (advance the epoch and take a snapshot every 500
//! cycles), and the checks on its report.

#![allow(dead_code)] // not every test file uses every helper

use alloc_core::{
    advance_epoch, sampling, snapshot, symbolize, untracked, SampleMode, DEFAULT_INTERVAL,
};
use alloc_report::analysis::GrowthKind;
use alloc_report::analysis::{ClassifyOptions, Report, Verdict, VerdictKind};
use alloc_report::{Analyzer, SnapshotFile};
use alloc_tests::{estimates, say};

/// Cycles of a soak.
pub(crate) const CYCLES: u64 = 20_000;
/// Cycles between two snapshots.
pub(crate) const EVERY: u64 = 500;

/// Expands to the line it is written on, after running `$e` there: the
/// line a site label must name.
#[allow(unused_macros)] // the non-leak tests name no line
macro_rules! at_line {
    ($e:expr) => {{
        $e;
        line!()
    }};
}

/// Runs `cycle(c)` for `c` in `0..CYCLES`, with a snapshot before the first
/// cycle and after every [`EVERY`], and returns the report. Checks that
/// sampling is at its default: the tests must pass as a user runs them.
pub(crate) fn soak(mut cycle: impl FnMut(u64)) -> Report {
    assert_eq!(
        sampling(),
        SampleMode::Interval(DEFAULT_INTERVAL),
        "growth tests run at the default sampling (unset ALLOC_CORE_SAMPLE)"
    );
    // Which small blocks are sampled does not matter here (the growing
    // buffers reach sizes that are always sampled), but a fixed seed makes
    // any failure replayable.
    estimates::fix_seed();
    let mut analyzer = untracked(|| Analyzer::new(&ClassifyOptions::default()));
    let take = |cycles: u64, analyzer: &mut Analyzer| {
        advance_epoch();
        let mut s = snapshot();
        untracked(|| {
            symbolize(&mut s);
            let mut file = SnapshotFile::new(s);
            file.cycles = Some(cycles);
            analyzer.push(&file);
        });
    };
    take(0, &mut analyzer);
    for c in 0..CYCLES {
        cycle(c);
        if (c + 1) % EVERY == 0 {
            take(c + 1, &mut analyzer);
        }
    }
    untracked(|| analyzer.finish())
}

/// The verdict of the site whose label names `file:line`, if any.
pub(crate) fn site<'a>(r: &'a Report, file: &str, line: u32) -> Option<&'a Verdict> {
    let needle = format!("{file}:{line} ");
    r.sites.iter().find(|v| v.site.contains(&needle))
}

/// Prints the report's verdicts (the tool's output, not the user's).
pub(crate) fn show(name: &str, r: &Report) {
    say!(
        "{name}: whole heap {} at {:.1} B/cycle ({})",
        r.overall.kind.as_str(),
        r.overall.bytes_per_cycle,
        r.overall.reason
    );
    for v in r.sites.iter().filter(|v| v.kind != VerdictKind::Ok).take(5) {
        say!(
            "  {} {:.1} B/cycle, {} sample(s): {} ({})",
            v.kind.as_str(),
            v.bytes_per_cycle,
            v.samples,
            v.site,
            v.reason
        );
    }
}

/// `v` is a leak of existing blocks that grow, at a rate within a factor of
/// 2 of `truth` bytes per cycle.
fn growth_leak(what: &str, v: &Verdict, truth: f64) {
    assert_eq!(v.kind, VerdictKind::Leak, "{what}: {v:?}");
    let g = v.growth.expect("a leak says which kind of growth");
    assert_eq!(g.kind, GrowthKind::ExistingBlocks, "{what}: {v:?}");
    assert_eq!(g.bytes_per_cycle, v.bytes_per_cycle);
    let ratio = v.bytes_per_cycle / truth;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "{what}: {:.2} B/cycle is {ratio:.2} times the true {truth} B/cycle",
        v.bytes_per_cycle
    );
}

/// The whole heap and the site at `file:line` are growth leaks of about
/// `truth` bytes per cycle, and that site is the report's first.
pub(crate) fn expect_growth_leak(name: &str, r: &Report, (file, line): (&str, u32), truth: f64) {
    show(name, r);
    growth_leak(&format!("{name}: whole heap"), &r.overall, truth);
    let v = site(r, file, line).unwrap_or_else(|| {
        panic!(
            "{name}: no site at {file}:{line}; sites: {:?}",
            r.sites.iter().map(|v| &v.site).collect::<Vec<_>>()
        )
    });
    growth_leak(&format!("{name}: site {}", v.site), v, truth);
    assert!(v.samples >= 1, "{name}: {v:?}");
    assert_eq!(
        r.sites[0].site, v.site,
        "{name}: the growing line comes first"
    );
}

/// No leak anywhere: not the whole heap, not any site.
pub(crate) fn expect_no_leak(name: &str, r: &Report) {
    show(name, r);
    assert_ne!(r.overall.kind, VerdictKind::Leak, "{name}: {:?}", r.overall);
    for v in &r.sites {
        assert_ne!(v.kind, VerdictKind::Leak, "{name}: {v:?}");
    }
}
