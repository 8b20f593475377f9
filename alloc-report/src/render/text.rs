//! The terminal renderers: the report's verdict table, distributions and
//! growth lines, one snapshot, a series' survivor matrix, a diff, and the
//! per-site survivor matrices.

use std::fmt::Write as _;

use alloc_snapshot::Snapshot;

use super::{histogram_rows, human_bytes, memory, shown_sites, young_old, TEXT_SITES};
use crate::analysis::{
    HistogramSummary, Report, SiteMatrix, SnapshotDiff, SurvivorMatrix, Verdict, VerdictKind,
};
use crate::format::SnapshotFile;

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

pub(crate) fn epochs_label(first: u32, last: u32) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}..={last}")
    }
}

/// The verdict table and growth lines of a report, for a terminal: the
/// run and the whole heap, the sites' table, each shown site's reason and
/// cause, the leaks' stacks, the distributions and the process's memory.
#[must_use]
pub fn report_text(r: &Report) -> String {
    let mut out = String::new();
    header_text(&mut out, r);
    out.push('\n');
    let shown = shown_sites(&r.sites, TEXT_SITES);
    sites_table(&mut out, r, &shown);
    out.push('\n');
    reasons_text(&mut out, &shown);
    out.push('\n');
    stacks_text(&mut out, &shown);
    histograms_text(&mut out, &r.histograms);
    memory::growth_text(&mut out, r);
    out
}

/// The run, the whole heap's verdict, the sampling and the agreement note.
fn header_text(out: &mut String, r: &Report) {
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
    out.push_str(&super::growth_note(o, "  growth: ", "\n"));
    if let Some(sm) = &r.sampling {
        let _ = writeln!(
            out,
            "call sites with survivors: {} (sampling {}, mean interval {}; {} live samples){}",
            r.sites.len(),
            sm.mode.name(),
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
    if let Some(a) = &r.agreement {
        let _ = writeln!(out, "{}", a.note);
    }
}

/// The table of the shown sites, and how many more there are.
fn sites_table(out: &mut String, r: &Report, shown: &[&Verdict]) {
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
        "CAUSE".into(),
    ]];
    for v in shown {
        rows.push(vec![
            v.site.clone(),
            v.kind.as_str().into(),
            format!("{:.1}", v.bytes_per_cycle),
            format!("{:.2}", v.blocks_per_cycle),
            format!("{:.1}%", v.confidence * 100.0),
            human_bytes(v.final_survivors.bytes as f64),
            v.final_survivors.blocks.to_string(),
            v.cause.as_ref().map_or_else(
                || "-".to_string(),
                |c| format!("{} {:.0}%", c.kind.as_str(), c.share * 100.0),
            ),
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
}

/// Each shown site that is not `ok`: its verdict, growth, reason, cause and
/// fix.
fn reasons_text(out: &mut String, shown: &[&Verdict]) {
    for v in shown.iter().filter(|v| v.kind != VerdictKind::Ok) {
        let growth = super::growth_note(v, " (", ")");
        let _ = writeln!(out, "{}: {}{growth}: {}", v.site, v.kind.as_str(), v.reason);
        if let Some(c) = &v.cause {
            let _ = writeln!(out, "  cause: {}", c.line());
            let _ = writeln!(out, "  fix: {}", c.hint);
        }
    }
}

/// How many frames from a leak site's frame outwards the text report
/// shows.
const TEXT_FRAMES: usize = 6;

/// The call stacks of the leak sites among `shown`: the stack with most
/// bytes (innermost first, the program's own frames marked `*`, the
/// site's frame `>`): the innermost frame and the library call the site
/// made (the frames between them counted), then the site and its callers,
/// and how many more stacks the site groups (all are in the JSON report).
fn stacks_text(out: &mut String, shown: &[&crate::analysis::Verdict]) {
    let leaks: Vec<_> = shown.iter().filter(|v| !v.stacks.is_empty()).collect();
    if leaks.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "call stacks of the leak sites (innermost first; * the program's own code, > the site):"
    );
    for v in leaks {
        let top = &v.stacks[0];
        let _ = writeln!(out, "{}", v.site);
        let frames = &top.frames;
        let at = frames.iter().position(|f| f.site).unwrap_or(0);
        let line = |out: &mut String, f: &crate::analysis::StackFrame| {
            let mark = match (f.site, f.user) {
                (true, _) => '>',
                (false, true) => '*',
                (false, false) => ' ',
            };
            let frame = alloc_snapshot::Frame {
                ip: 0,
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
            };
            let _ = writeln!(out, "  {mark} {}", frame.label());
        };
        if at > 3 {
            line(out, &frames[0]);
            let _ = writeln!(out, "    ... {} frames", at - 2);
            line(out, &frames[at - 1]);
        } else {
            frames[..at].iter().for_each(|f| line(out, f));
        }
        let end = (at + TEXT_FRAMES).min(frames.len());
        frames[at..end].iter().for_each(|f| line(out, f));
        if end < frames.len() {
            let _ = writeln!(out, "    ... {} more frames", frames.len() - end);
        }
        if v.stacks.len() > 1 {
            let _ = writeln!(
                out,
                "    ({} more stacks, {} at this site, in --format json)",
                v.stacks.len() - 1,
                human_bytes(v.stacks[1..].iter().map(|s| s.bytes).sum::<f64>())
            );
        }
    }
    out.push('\n');
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
