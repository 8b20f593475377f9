//! Renderers: terminal tables, JSON, a self-contained HTML page with inline
//! SVG plots, and folded stacks. Each returns a `String`; the caller writes.

use std::fmt::Write as _;

use alloc_snapshot::Snapshot;

use crate::analysis::{Report, SnapshotDiff, SurvivorMatrix, VerdictKind};
use crate::format::SnapshotFile;

/// Bytes in a short human form (`512 B`, `1.5 KiB`, `3.2 MiB`).
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
    out.push('\n');
    let mut rows = vec![vec![
        "SITE".to_string(),
        "VERDICT".into(),
        "BYTES/CYCLE".into(),
        "BLOCKS/CYCLE".into(),
        "CONFIDENCE".into(),
        "SURVIVING".into(),
        "BLOCKS".into(),
    ]];
    for v in &r.sites {
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
    out.push_str(&table(&rows));
    out.push('\n');
    for v in &r.sites {
        let _ = writeln!(out, "{}: {}: {}", v.site, v.kind.as_str(), v.reason);
    }
    out.push('\n');
    let g = &r.growth;
    let per = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{}/cycle", human_bytes(v)));
    let _ = writeln!(out, "growth over the last part of the run:");
    let _ = writeln!(
        out,
        "  live heap           {}",
        per(Some(g.live_heap_bytes_per_cycle))
    );
    let _ = writeln!(out, "  process RSS         {}", per(g.rss_bytes_per_cycle));
    let _ = writeln!(
        out,
        "  allocator resident  {}",
        per(g.allocator_resident_bytes_per_cycle)
    );
    if let Some(rss) = g.rss_bytes_per_cycle {
        let heap = g.live_heap_bytes_per_cycle;
        if rss > 4096.0 && heap < rss / 4.0 {
            let _ = writeln!(
                out,
                "  note: RSS grows much faster than the live heap: memory the allocator \
                 retains (fragmentation, caches) rather than a heap leak"
            );
        }
    }
    out
}

/// A report as pretty JSON.
pub fn report_json(r: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// One snapshot: totals and live bytes by birth epoch.
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
    if let Some(rss) = s.rss_bytes {
        let _ = writeln!(out, "rss {}", human_bytes(rss as f64));
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
    out
}

/// Folded stacks (`site bytes` per line), for flame-graph tools. Until
/// snapshots carry call sites this is one line for the whole heap.
pub fn folded(r: &Report) -> String {
    let last = r.points.last();
    let mut out = String::new();
    for v in &r.sites {
        let _ = writeln!(
            out,
            "{} {}",
            v.site.replace(' ', "_"),
            last.map_or(0, |p| p.survivors.bytes)
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
            escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML report: the verdict table and SVG plots of the live
/// heap, survivors and RSS across cycles. No scripts, no external files.
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
         </style></head><body>\n<h1>alloc-report</h1>\n",
    );
    let _ = writeln!(
        s,
        "<p>{} snapshots, epochs {}..={}, {} cycles.</p>",
        r.snapshots, r.start_epoch, r.end_epoch, r.cycles
    );
    s.push_str(
        "<table><tr><th>site</th><th>verdict</th><th>bytes/cycle</th><th>blocks/cycle</th>\
         <th>confidence</th><th>surviving bytes</th><th>why</th></tr>\n",
    );
    for v in &r.sites {
        let class = if v.kind == VerdictKind::Leak {
            " class=\"leak\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td{class}>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.1}%</td>\
             <td>{}</td><td>{}</td></tr>",
            escape(&v.site),
            v.kind.as_str(),
            v.bytes_per_cycle,
            v.blocks_per_cycle,
            v.confidence * 100.0,
            v.final_survivors.bytes,
            escape(&v.reason)
        );
    }
    s.push_str("</table>\n");
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
        "process and allocator memory",
        &x,
        &[
            ("RSS", "#2ca02c", col(&|p| p.rss_bytes)),
            (
                "allocator resident",
                "#9467bd",
                col(&|p| p.allocator_resident_bytes),
            ),
            ("live heap", "#1f77b4", col(&|p| Some(p.live_bytes))),
        ],
    ));
    s.push_str("\n</body></html>\n");
    s
}
