//! The self-contained HTML report: tables of sites and distributions, and
//! inline SVG plots (the whole heap, the top sites' survivors, RSS).

use std::fmt::Write as _;

use super::{histogram_rows, human_bytes, shown_sites, young_old, HTML_SITES};
use crate::analysis::{Report, VerdictKind};

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

/// The call stacks of the leak sites among `shown`, each site a collapsed
/// `<details>`: its stacks most bytes first, frames innermost first, the
/// program's own code in bold and the site's frame marked.
fn stacks_html(s: &mut String, shown: &[&crate::analysis::Verdict]) {
    let leaks: Vec<_> = shown.iter().filter(|v| !v.stacks.is_empty()).collect();
    if leaks.is_empty() {
        return;
    }
    s.push_str(
        "<h2>Call stacks of the leak sites</h2>\n<p>Innermost frame first; the program's own \
         code in bold, the site's frame marked &#9654;.</p>\n",
    );
    for v in leaks {
        let _ = writeln!(
            s,
            "<details class=\"stacks\"><summary><code>{}</code> ({} stack{})</summary>",
            escape(&v.site),
            v.stacks.len(),
            if v.stacks.len() == 1 { "" } else { "s" }
        );
        for st in &v.stacks {
            let _ = writeln!(
                s,
                "<p>{} in {:.0} blocks:</p><ol class=\"frames\">",
                escape(&human_bytes(st.bytes)),
                st.blocks
            );
            for f in &st.frames {
                let frame = alloc_snapshot::Frame {
                    ip: 0,
                    function: f.function.clone(),
                    file: f.file.clone(),
                    line: f.line,
                };
                let label = escape(&frame.label());
                let mark = if f.site { "&#9654; " } else { "" };
                if f.user {
                    let _ = writeln!(s, "<li>{mark}<b><code>{label}</code></b></li>");
                } else {
                    let _ = writeln!(s, "<li>{mark}<code>{label}</code></li>");
                }
            }
            s.push_str("</ol>\n");
        }
        s.push_str("</details>\n");
    }
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
            sm.mode.name(),
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
    stacks_html(&mut s, &shown);
    s.push_str("</body></html>\n");
    s
}
