//! Renderers: each turns analysis results into the bytes of one output
//! format; the caller writes them. One module per format:
//!
//! | module | output |
//! |---|---|
//! | `text` | terminal tables: the report ([`report_text`]), a snapshot, a series, a diff, site matrices |
//! | `memory` | the text report's section on the process's memory |
//! | `json` | the report as JSON ([`report_json`]) |
//! | `html` | a self-contained HTML page: sites with stacks and source, SVG charts, an icicle graph ([`report_html`]) |
//! | `folded` | folded stacks for flame-graph tools ([`folded()`]) |
//! | [`crate::pprof`] | a gzipped pprof profile ([`pprof()`]) |
//!
//! This file holds what several formats share: units, which sites are
//! shown, the rows of the distributions.

use crate::analysis::{HistogramSummary, Quantiles, Report, Verdict, VerdictKind};

mod folded;
mod html;
mod json;
mod memory;
mod text;

pub use folded::folded;
pub use html::report_html;
pub use json::report_json;
pub use text::{diff_text, report_text, series_text, site_matrix_text, snapshot_text};

/// Bytes in a short human form (`512 B`, `1.5 KiB`, `3.2 MiB`).
#[must_use]
pub(crate) fn human_bytes(b: f64) -> String {
    let sign = if b < 0.0 { "-" } else { "" };
    let a = b.abs();
    if a < 1024.0 {
        format!("{sign}{a:.0} B")
    } else if a < 1024.0 * 1024.0 {
        format!("{sign}{:.1} KiB", a / 1024.0)
    } else if a < 1024.0 * 1024.0 * 1024.0 {
        format!("{sign}{:.1} MiB", a / (1024.0 * 1024.0))
    } else {
        format!("{sign}{:.2} GiB", a / (1024.0 * 1024.0 * 1024.0))
    }
}

/// How many sites the text report lists besides the leaks.
pub(crate) const TEXT_SITES: usize = 30;
/// How many sites the HTML report lists besides the leaks.
pub(crate) const HTML_SITES: usize = 500;

/// Every leak, then up to `others` other sites (the report's order).
pub(crate) fn shown_sites(sites: &[Verdict], others: usize) -> Vec<&Verdict> {
    let leaks = sites
        .iter()
        .take_while(|v| v.kind == VerdictKind::Leak)
        .count();
    sites.iter().take(leaks + others).collect()
}

fn q(v: Option<u64>, unit: fn(u64) -> String) -> String {
    v.map_or("-".to_string(), unit)
}

fn bytes_unit(v: u64) -> String {
    human_bytes(v as f64)
}

fn epochs_unit(v: u64) -> String {
    format!("{v} ep")
}

fn ns_unit(v: u64) -> String {
    let v = v as f64;
    if v < 1e3 {
        format!("{v:.0} ns")
    } else if v < 1e6 {
        format!("{:.1} µs", v / 1e3)
    } else if v < 1e9 {
        format!("{:.1} ms", v / 1e6)
    } else {
        format!("{:.1} s", v / 1e9)
    }
}

/// The distribution rows: name, count, p50, p90, p99, max.
pub(crate) fn histogram_rows(h: &HistogramSummary) -> Vec<Vec<String>> {
    let row = |name: &str, x: &Quantiles, unit: fn(u64) -> String| {
        vec![
            name.to_string(),
            x.count.to_string(),
            q(x.p50, unit),
            q(x.p90, unit),
            q(x.p99, unit),
            q(x.max, unit),
        ]
    };
    vec![
        row("allocation size", &h.alloc_size, bytes_unit),
        row(
            "lifetime of freed blocks (epochs)",
            &h.lifetime_epochs,
            epochs_unit,
        ),
        row("lifetime of freed blocks (time)", &h.lifetime_ns, ns_unit),
        row(
            "age of surviving bytes",
            &h.survivor_age_epochs,
            epochs_unit,
        ),
    ]
}

/// The young/old survivors sentence, if lifetimes are known.
pub(crate) fn young_old(h: &HistogramSummary) -> Option<String> {
    h.young_max_age_epochs.map(|split| {
        format!(
            "survivors older than {split} epoch(s) (99% of freed blocks live no longer): {} in {} \
             blocks; younger (likely still in use): {} in {} blocks",
            human_bytes(h.old_survivors.bytes as f64),
            h.old_survivors.blocks,
            human_bytes(h.young_survivors.bytes as f64),
            h.young_survivors.blocks
        )
    })
}

/// The survivors as a gzipped pprof profile (see [`crate::pprof`]).
#[must_use]
pub fn pprof(r: &Report) -> Vec<u8> {
    crate::pprof::pprof(r)
}

/// The kind of growth of a leak verdict and its bytes per cycle, between
/// `before` and `after` ("" when `v` is not a leak).
fn growth_note(v: &Verdict, before: &str, after: &str) -> String {
    v.growth.map_or(String::new(), |g| {
        format!(
            "{before}{}, {:.1} bytes/cycle{after}",
            g.kind.as_str(),
            g.bytes_per_cycle
        )
    })
}
