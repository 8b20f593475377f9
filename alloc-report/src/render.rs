//! Renderers: terminal tables, JSON, a self-contained HTML page with inline
//! SVG plots, folded stacks and pprof profiles ([`crate::pprof`]). Each
//! returns the bytes; the caller writes.

use std::fmt::Write as _;

use alloc_snapshot::Snapshot;

use crate::analysis::{
    HistogramSummary, Quantiles, Report, SiteMatrix, SnapshotDiff, SurvivorMatrix, Verdict,
    VerdictKind,
};
use crate::format::SnapshotFile;

mod memory;

/// Bytes in a short human form (`512 B`, `1.5 KiB`, `3.2 MiB`).
#[must_use]
pub fn human_bytes(b: f64) -> String {
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

/// Left-aligned first column, right-aligned others, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{c:<w$}", w = widths[i]);
            } else {
                let _ = write!(line, "  {c:>w$}", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn epochs_label(first: u32, last: u32) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}..={last}")
    }
}

/// The verdict table and growth lines of a report, for a terminal.
#[must_use]
pub fn report_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} snapshots, epochs {}..={}, {} cycles (cycles from {})",
        r.snapshots,
        r.start_epoch,
        r.end_epoch,
        r.cycles,
        match r.cycles_source {
            crate::analysis::CyclesSource::Sidecar => "the files' cycles field",
            crate::analysis::CyclesSource::Epochs => "epoch advances",
        }
    );
    let o = &r.overall;
    let _ = writeln!(
        out,
        "whole heap (exact): {}, {:.1} bytes/cycle, {:.2} blocks/cycle, confidence {:.1}%, \
         {} in {} blocks surviving",
        o.kind.as_str(),
        o.bytes_per_cycle,
        o.blocks_per_cycle,
        o.confidence * 100.0,
        human_bytes(o.final_survivors.bytes as f64),
        o.final_survivors.blocks
    );
    out.push_str(&crate::growth::note(o, "  growth: ", "\n"));
    if let Some(sm) = &r.sampling {
        let _ = writeln!(
            out,
            "call sites with survivors: {} (sampling {}, mean interval {}; {} live samples){}",
            r.sites.len(),
            mode_name(sm.mode),
            human_bytes(sm.mean_interval_bytes as f64),
            sm.live_sampled,
            if sm.dropped_full > 0 {
                format!(
                    "; {} samples dropped (table full): estimates are low",
                    sm.dropped_full
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(note) = crate::agreement::site_agreement(r) {
        let _ = writeln!(out, "{note}");
    }
    out.push('\n');
    let shown = shown_sites(&r.sites, TEXT_SITES);
    if shown.is_empty() {
        let _ = writeln!(out, "no call site has survivors");
    }
    let mut rows = vec![vec![
        "SITE".to_string(),
        "VERDICT".into(),
        "BYTES/CYCLE".into(),
        "BLOCKS/CYCLE".into(),
        "CONFIDENCE".into(),
        "SURVIVING".into(),
        "BLOCKS".into(),
    ]];
    for v in &shown {
        rows.push(vec![
            v.site.clone(),
            v.kind.as_str().into(),
            format!("{:.1}", v.bytes_per_cycle),
            format!("{:.2}", v.blocks_per_cycle),
            format!("{:.1}%", v.confidence * 100.0),
            human_bytes(v.final_survivors.bytes as f64),
            v.final_survivors.blocks.to_string(),
        ]);
    }
    if !shown.is_empty() {
        out.push_str(&table(&rows));
    }
    if shown.len() < r.sites.len() {
        let _ = writeln!(
            out,
            "... and {} more sites (not leaks; all are in --format json)",
            r.sites.len() - shown.len()
        );
    }
    out.push('\n');
    for v in shown.iter().filter(|v| v.kind != VerdictKind::Ok) {
        let growth = crate::growth::note(v, " (", ")");
        let _ = writeln!(out, "{}: {}{growth}: {}", v.site, v.kind.as_str(), v.reason);
    }
    out.push('\n');
    histograms_text(&mut out, &r.histograms);
    memory::growth_text(&mut out, r);
    out
}

/// The sampling mode as the file format spells it.
fn mode_name(m: alloc_snapshot::SamplingMode) -> &'static str {
    match m {
        alloc_snapshot::SamplingMode::Off => "off",
        alloc_snapshot::SamplingMode::Interval => "interval",
        alloc_snapshot::SamplingMode::All => "all",
    }
}

/// How many sites the text report lists besides the leaks.
pub const TEXT_SITES: usize = 30;
/// How many sites the HTML report lists besides the leaks.
pub const HTML_SITES: usize = 500;

/// Every leak, then up to `others` other sites (the report's order).
fn shown_sites(sites: &[Verdict], others: usize) -> Vec<&Verdict> {
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
fn histogram_rows(h: &HistogramSummary) -> Vec<Vec<String>> {
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
fn young_old(h: &HistogramSummary) -> Option<String> {
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

fn histograms_text(out: &mut String, h: &HistogramSummary) {
    let mut rows = vec![vec![
        "DISTRIBUTION".to_string(),
        "COUNT".into(),
        "P50".into(),
        "P90".into(),
        "P99".into(),
        "MAX".into(),
    ]];
    rows.extend(histogram_rows(h));
    out.push_str(&table(&rows));
    if let Some(s) = young_old(h) {
        let _ = writeln!(out, "{s}");
    }
    out.push('\n');
}

/// A report as pretty JSON.
#[must_use]
pub fn report_json(r: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// One snapshot: totals and live bytes by birth epoch.
#[must_use]
pub fn snapshot_text(file: &SnapshotFile) -> String {
    let s: &Snapshot = &file.snapshot;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "epoch {}  cycles {}  live {} in {} blocks  (allocs {}, frees {}, reallocs {})",
        s.epoch,
        file.cycles.map_or("-".to_string(), |c| c.to_string()),
        human_bytes(s.totals.live_bytes as f64),
        s.totals.live_blocks,
        s.totals.allocs,
        s.totals.frees,
        s.totals.reallocs
    );
    let tool = s.tool.live_bytes.saturating_add(s.tool.metadata_bytes);
    if let Some(rss) = s.rss_bytes {
        let _ = writeln!(
            out,
            "rss {}, of which the tool's own {} (the program: {})",
            human_bytes(rss as f64),
            human_bytes(tool as f64),
            human_bytes(rss.saturating_sub(tool) as f64)
        );
    }
    if let Some(a) = &s.allocator {
        let _ = writeln!(
            out,
            "{}: allocated {}, resident {}, retained {}",
            a.name,
            human_bytes(a.allocated as f64),
            human_bytes(a.resident as f64),
            human_bytes(a.retained as f64)
        );
    }
    let _ = writeln!(
        out,
        "tool: {} in {} blocks, metadata {}, {} threads",
        human_bytes(s.tool.live_bytes as f64),
        s.tool.live_blocks,
        human_bytes(s.tool.metadata_bytes as f64),
        s.tool.threads
    );
    out.push('\n');
    let mut rows = vec![vec![
        "BIRTH EPOCH".to_string(),
        "LIVE BYTES".into(),
        "LIVE BLOCKS".into(),
    ]];
    for e in &s.epochs {
        rows.push(vec![
            epochs_label(e.first, e.last),
            e.live_bytes.to_string(),
            e.live_blocks.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// A series: one line per snapshot, then the survivor matrix (bytes).
pub fn series_text(m: &SurvivorMatrix, series: &[SnapshotFile]) -> String {
    let mut rows = vec![vec![
        "#".to_string(),
        "EPOCH".into(),
        "CYCLES".into(),
        "LIVE BYTES".into(),
        "LIVE BLOCKS".into(),
        "SURVIVOR BYTES".into(),
        "SURVIVOR BLOCKS".into(),
        "RSS".into(),
        "TOOL".into(),
    ]];
    for (i, f) in series.iter().enumerate() {
        let s = &f.snapshot;
        rows.push(vec![
            i.to_string(),
            s.epoch.to_string(),
            m.cycles.get(i).map_or(String::new(), u64::to_string),
            s.totals.live_bytes.to_string(),
            s.totals.live_blocks.to_string(),
            m.survivors.get(i).map_or(0, |l| l.bytes).to_string(),
            m.survivors.get(i).map_or(0, |l| l.blocks).to_string(),
            s.rss_bytes.map_or("-".into(), |r| r.to_string()),
            (s.tool.live_bytes.saturating_add(s.tool.metadata_bytes)).to_string(),
        ]);
    }
    let mut out = table(&rows);
    // The matrix gets wide; show at most the last 12 snapshots.
    let keep = m.epochs.len().min(12);
    let from = m.epochs.len() - keep;
    let _ = writeln!(
        out,
        "\nlive bytes by birth epoch (rows) at each snapshot epoch (columns):"
    );
    let mut rows = vec![std::iter::once("BORN".to_string())
        .chain(m.epochs[from..].iter().map(|e| format!("@{e}")))
        .collect::<Vec<_>>()];
    for r in &m.rows {
        rows.push(
            std::iter::once(epochs_label(r.first, r.last))
                .chain(r.cells[from..].iter().map(|c| c.bytes.to_string()))
                .collect(),
        );
    }
    out.push_str(&table(&rows));
    out
}

/// A diff by birth epoch.
#[must_use]
pub fn diff_text(d: &SnapshotDiff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "epoch {} -> epoch {}", d.old_epoch, d.new_epoch);
    let mut rows = vec![vec![
        "BIRTH EPOCH".to_string(),
        "OLD BYTES".into(),
        "NEW BYTES".into(),
        "APPEARED".into(),
        "FREED".into(),
        "SURVIVED".into(),
        "BLOCKS +/-/=".into(),
    ]];
    for r in d.rows.iter().chain(std::iter::once(&d.total)) {
        let label = if std::ptr::eq(r, &d.total) {
            "total".to_string()
        } else {
            epochs_label(r.first, r.last)
        };
        rows.push(vec![
            label,
            r.old.bytes.to_string(),
            r.new.bytes.to_string(),
            r.appeared.bytes.to_string(),
            r.freed.bytes.to_string(),
            r.survived.bytes.to_string(),
            format!(
                "+{}/-{}/={}",
                r.appeared.blocks, r.freed.blocks, r.survived.blocks
            ),
        ]);
    }
    out.push_str(&table(&rows));
    if !d.sites.is_empty() {
        let _ = writeln!(
            out,
            "\nby call site (sampled estimates), most growth first ({} sites):",
            d.sites.len()
        );
        let mut rows = vec![vec![
            "SITE".to_string(),
            "OLD BYTES".into(),
            "NEW BYTES".into(),
            "APPEARED".into(),
            "FREED".into(),
            "SURVIVED".into(),
            "BIRTH EPOCHS".into(),
        ]];
        for sd in d.sites.iter().take(TEXT_SITES) {
            let t = &sd.total;
            rows.push(vec![
                sd.site.clone(),
                format!("{:.0}", t.old.bytes),
                format!("{:.0}", t.new.bytes),
                format!("{:.0}", t.appeared.bytes),
                format!("{:.0}", t.freed.bytes),
                format!("{:.0}", t.survived.bytes),
                match (sd.rows.first(), sd.rows.last()) {
                    (Some(a), Some(b)) => epochs_label(a.epoch, b.epoch),
                    _ => String::new(),
                },
            ]);
        }
        out.push_str(&table(&rows));
        if d.sites.len() > TEXT_SITES {
            let _ = writeln!(out, "... and {} more sites", d.sites.len() - TEXT_SITES);
        }
    }
    out
}

/// The survivor matrices of the first `limit` sites (bytes, last 12
/// snapshots), as [`series_text`] prints the whole heap's.
#[must_use]
pub fn site_matrix_text(sites: &[SiteMatrix], epochs: &[u32], limit: usize) -> String {
    let mut out = String::new();
    let keep = epochs.len().min(12);
    let from = epochs.len() - keep;
    for m in sites.iter().take(limit) {
        let _ = writeln!(out, "\n{}: estimated live bytes by birth epoch:", m.site);
        let mut rows = vec![std::iter::once("BORN".to_string())
            .chain(epochs[from..].iter().map(|e| format!("@{e}")))
            .collect::<Vec<_>>()];
        for r in &m.rows {
            rows.push(
                std::iter::once(r.epoch.to_string())
                    .chain(r.cells[from..].iter().map(|c| format!("{:.0}", c.bytes)))
                    .collect(),
            );
        }
        out.push_str(&table(&rows));
    }
    if sites.len() > limit {
        let _ = writeln!(out, "... and {} more sites", sites.len() - limit);
    }
    out
}

/// The name of a frame in folded stacks and profiles: the function, else
/// the label (`file:line`, or the address).
pub(crate) fn frame_name(f: &alloc_snapshot::Frame) -> String {
    match &f.function {
        Some(func) => func.clone(),
        None => f.label(),
    }
}

/// Folded stacks of the survivors at the last snapshot, for flame-graph
/// tools (`flamegraph.pl`, inferno, speedscope): one line per stack,
/// outermost frame first down to the allocating user frame (the allocator
/// machinery and the tool's capture frames inside it are left out, as heap
/// profiles do; all frames when the user frame is unknown), frames joined
/// by `;`, then a space and the estimated surviving bytes. Without call-site data, one line per birth epoch under
/// `(all)`.
#[must_use]
pub fn folded(r: &Report) -> String {
    let p = &r.profile;
    let mut out = String::new();
    if p.stacks.is_empty() {
        for e in &p.whole_heap {
            let _ = writeln!(
                out,
                "{ALL};born_{} {}",
                epochs_label(e.first, e.last),
                e.live_bytes,
                ALL = crate::analysis::ALL_SITES
            );
        }
        return out;
    }
    let mut bytes = vec![0.0_f64; p.stacks.len()];
    for e in &p.entries {
        bytes[e.stack] += e.bytes;
    }
    let clean = |s: String| s.replace([';', '\n', '\r'], ":").replace(' ', "_");
    for (stack, b) in p.stacks.iter().zip(bytes) {
        let b = b.round() as u64;
        if b == 0 {
            continue;
        }
        let frames = stack.shown_frames();
        let names: Vec<String> = if frames.is_empty() {
            vec![clean(stack.label())]
        } else {
            frames.iter().rev().map(|f| clean(frame_name(f))).collect()
        };
        let _ = writeln!(out, "{} {b}", names.join(";"));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A legend entry: a site label's file name (not its directories) and
/// function, cut to fit the legend margin.
fn legend_name(name: &str) -> String {
    let (place, func) = name.split_once(' ').unwrap_or((name, ""));
    let base = place.rsplit('/').next().unwrap_or(place);
    let short = if func.is_empty() {
        base.to_string()
    } else {
        format!("{base} {func}")
    };
    if short.chars().count() > 24 {
        let cut: String = short.chars().take(23).collect();
        format!("{cut}…")
    } else {
        short
    }
}

/// An SVG line plot of `series` (name, colour, values) against `x`.
fn svg_plot(title: &str, x: &[f64], series: &[(&str, &str, Vec<Option<f64>>)]) -> String {
    // The plot area is `w` wide; the legend sits in a margin to its right.
    let (w, h, pad, legend) = (640.0, 240.0, 48.0, 150.0);
    let xmax = x.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let ymax = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().flatten().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let px = |v: f64| pad + v / xmax * (w - 2.0 * pad);
    let py = |v: f64| h - pad - v / ymax * (h - 2.0 * pad);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{sw}\" height=\"{h}\" \
         viewBox=\"0 0 {sw} {h}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{pad}\" y=\"16\" font-size=\"13\">{}</text>\
         <line x1=\"{pad}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#888\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{y0}\" stroke=\"#888\"/>\
         <text x=\"2\" y=\"{ty}\">{}</text><text x=\"2\" y=\"{y0}\">0</text>\
         <text x=\"{x1}\" y=\"{tx}\" text-anchor=\"end\">{} cycles</text>",
        escape(title),
        escape(&human_bytes(ymax)),
        xmax,
        y0 = h - pad,
        x1 = w - pad,
        ty = pad + 4.0,
        tx = h - pad + 16.0,
        sw = w + legend,
    );
    for (i, (name, colour, values)) in series.iter().enumerate() {
        let pts: Vec<String> = x
            .iter()
            .zip(values)
            .filter_map(|(&xv, v)| v.map(|v| format!("{:.1},{:.1}", px(xv), py(v))))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
            pts.join(" "),
            w - pad + 12.0,
            pad + 4.0 + 14.0 * i as f64,
            escape(&legend_name(name))
        );
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML report: the verdict table and SVG plots of the live
/// heap, survivors and RSS across cycles. No scripts, no external files.
#[must_use]
pub fn report_html(r: &Report) -> String {
    let x: Vec<f64> = r.points.iter().map(|p| p.cycles as f64).collect();
    let col = |f: &dyn Fn(&crate::analysis::ReportPoint) -> Option<u64>| -> Vec<Option<f64>> {
        r.points.iter().map(|p| f(p).map(|v| v as f64)).collect()
    };
    let mut s = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>alloc-report</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
         td:first-child,th:first-child{text-align:left}.leak{color:#c00;font-weight:bold}\
         td.site{font-family:monospace;min-width:24em;max-width:40em;overflow-wrap:anywhere}\
         td.why{text-align:left;font-size:smaller}th:last-child{text-align:left}\
         </style></head><body>\n<h1>alloc-report</h1>\n",
    );
    let _ = writeln!(
        s,
        "<p>{} snapshots, epochs {}..={}, {} cycles.</p>",
        r.snapshots, r.start_epoch, r.end_epoch, r.cycles
    );
    let o = &r.overall;
    let _ = writeln!(
        s,
        "<p>Whole heap (exact counters): <span{}>{}</span>, {:.1} bytes/cycle, \
         {:.2} blocks/cycle, confidence {:.1}%, {} surviving. {}</p>",
        if o.kind == VerdictKind::Leak {
            " class=\"leak\""
        } else {
            ""
        },
        o.kind.as_str(),
        o.bytes_per_cycle,
        o.blocks_per_cycle,
        o.confidence * 100.0,
        escape(&human_bytes(o.final_survivors.bytes as f64)),
        escape(&o.reason)
    );
    if let Some(sm) = &r.sampling {
        let _ = writeln!(
            s,
            "<p>Call sites sampled ({}, mean interval {}): {} live samples; figures per \
             site are estimates.{}</p>",
            mode_name(sm.mode),
            escape(&human_bytes(sm.mean_interval_bytes as f64)),
            sm.live_sampled,
            if sm.dropped_full > 0 {
                " Samples were dropped (table full): estimates are low."
            } else {
                ""
            }
        );
    }
    if let Some(note) = crate::agreement::site_agreement(r) {
        let _ = writeln!(s, "<p class=\"leak\">{}</p>", escape(&note));
    }
    s.push_str(
        "<h2>Sites</h2>\n<table><tr><th>site</th><th>verdict</th><th>bytes/cycle</th>\
         <th>blocks/cycle</th><th>confidence</th><th>surviving bytes</th>\
         <th>surviving blocks</th><th>samples</th><th>why</th></tr>\n",
    );
    let shown = shown_sites(&r.sites, HTML_SITES);
    for v in &shown {
        let class = if v.kind == VerdictKind::Leak {
            " class=\"leak\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<tr><td class=\"site\">{}</td><td{class}>{}</td><td>{:.1}</td><td>{:.2}</td>\
             <td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td class=\"why\">{}</td></tr>",
            escape(&v.site),
            v.kind.as_str(),
            v.bytes_per_cycle,
            v.blocks_per_cycle,
            v.confidence * 100.0,
            v.final_survivors.bytes,
            v.final_survivors.blocks,
            if v.estimated {
                v.samples.to_string()
            } else {
                "exact".to_string()
            },
            escape(&v.reason)
        );
    }
    s.push_str("</table>\n");
    if shown.len() < r.sites.len() {
        let _ = writeln!(
            s,
            "<p>... and {} more sites, none a leak (all are in the JSON report).</p>",
            r.sites.len() - shown.len()
        );
    }
    s.push_str("<h2>Plots</h2>\n");
    s.push_str(&svg_plot(
        "live heap and survivors",
        &x,
        &[
            ("live heap", "#1f77b4", col(&|p| Some(p.live_bytes))),
            ("survivors", "#d62728", col(&|p| Some(p.survivors.bytes))),
        ],
    ));
    s.push('\n');
    s.push_str(&svg_plot(
        "process and allocator memory (the tool's own apart)",
        &x,
        &[
            ("RSS", "#2ca02c", col(&|p| p.rss_bytes)),
            (
                "RSS without the tool",
                "#98df8a",
                col(&crate::analysis::ReportPoint::rss_without_tool),
            ),
            ("tool's own", "#7f7f7f", col(&|p| Some(p.tool_bytes))),
            (
                "allocator resident",
                "#9467bd",
                col(&|p| p.allocator_resident_bytes),
            ),
            ("live heap", "#1f77b4", col(&|p| Some(p.live_bytes))),
        ],
    ));
    s.push('\n');
    if !r.site_curves.is_empty() {
        const COLOURS: [&str; 6] = [
            "#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
        ];
        let curves: Vec<(&str, &str, Vec<Option<f64>>)> = r
            .site_curves
            .iter()
            .zip(COLOURS.iter().cycle())
            .map(|(c, colour)| {
                (
                    c.site.as_str(),
                    *colour,
                    c.bytes.iter().map(|&b| Some(b)).collect(),
                )
            })
            .collect();
        s.push_str(&svg_plot(
            "survivors of the top sites (estimated)",
            &x,
            &curves,
        ));
        s.push('\n');
    }
    s.push_str(
        "<h2>Distributions</h2>\n<table><tr><th>distribution</th><th>count</th><th>p50</th>\
         <th>p90</th><th>p99</th><th>max</th></tr>\n",
    );
    for row in histogram_rows(&r.histograms) {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", escape(&c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    if let Some(line) = young_old(&r.histograms) {
        let _ = writeln!(s, "<p>{}</p>", escape(&line));
    }
    s.push_str("</body></html>\n");
    s
}

/// The survivors as a gzipped pprof profile (see [`crate::pprof`]).
#[must_use]
pub fn pprof(r: &Report) -> Vec<u8> {
    crate::pprof::pprof(r)
}
