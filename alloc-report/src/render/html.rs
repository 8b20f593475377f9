//! The self-contained HTML report: one file with inline CSS, SVG and a
//! small inline script (no network, no external files). The page: the
//! whole heap's verdict and notes, the sites (each opening to its stacks,
//! source lines, cause and survivors by birth epoch: `html/sites.rs`), the
//! charts against cycles and by birth epoch (`html/chart.rs`), the icicle
//! graph of the survivors (`html/flame.rs`) and the distributions. Every
//! figure and note comes from the [`Report`].

mod chart;
mod flame;
mod sites;

use std::fmt::Write as _;

use super::{histogram_rows, human_bytes, shown_sites, young_old, HTML_SITES};
use crate::analysis::{Report, ReportPoint, VerdictKind};
use chart::{birth_chart, line_chart, Layer, Line, Unit};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colours of the top sites in the charts.
const COLOURS: [&str; 6] = [
    "#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1180px;\
padding:0 1em;color:#222}h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;\
border-bottom:1px solid #ddd}.card .leak{color:#c00}.summary{display:flex;gap:1em;flex-wrap:wrap}\
.card{border:1px solid #ddd;border-radius:6px;padding:.5em .8em;min-width:12em}.card b{font-size:1.3em}\
.note{color:#555;font-size:.92em}.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4em .8em}\
.row{display:grid;grid-template-columns:5.5em minmax(18em,1fr) 7em 7em 10em 11em 6.5em;gap:.6em;\
align-items:baseline;padding:.25em .4em}.row.head{font-weight:600;border-bottom:2px solid #ccc}\
details.site{border-bottom:1px solid #eee}details.site>summary{cursor:pointer;list-style:none}\
details.site>summary::-webkit-details-marker{display:none}\
details.site>summary:hover{background:#f6f6f6}details.site[open]>summary{background:#f0f4fa}\
.label{font-family:ui-monospace,monospace;font-size:.9em;overflow-wrap:anywhere}\
.label::before{content:'\\25b8  ';color:#888}details[open] .label::before{content:'\\25be  '}\
.num{text-align:right;font-variant-numeric:tabular-nums}.verdict{font-weight:600}\
.site.leak .verdict{color:#c00}.site.plateau .verdict{color:#b60}.site.warmup .verdict{color:#07a}\
.body{padding:.4em 1em 1em 2em}.why{margin:.3em 0}.cause{background:#f7f3ff;padding:.4em .8em;\
border-radius:4px;margin:.4em 0}.cause ol{margin:.2em 0;font-family:ui-monospace,monospace;font-size:.9em}\
.source{margin:.6em 0;border:1px solid #ddd;border-radius:4px}.source .path{background:#f3f3f3;\
padding:.2em .6em;font-family:ui-monospace,monospace;font-size:.85em}.source pre{margin:0;\
padding:.3em 0;font-size:.85em;overflow-x:auto}.source span{display:block;padding:0 .6em}\
.source .hit{background:#ffe9a8;font-weight:600}.source i{color:#999;font-style:normal}\
.stack{margin:.5em 0}.stack-head{font-weight:600;font-size:.92em}.stack ol{margin:.2em 0;\
padding-left:2.5em;font-family:ui-monospace,monospace;font-size:.82em}.stack li.own{font-weight:600}\
.stack li.dependency,span.dependency{color:#2a5d9f}.stack li.std,span.std{color:#999}\
.stack li.unknown{color:#999;font-style:italic}.stack li.fold{list-style:none;margin-left:-1.2em}\
.stack li.fold summary{cursor:pointer}.stack li.fold ol{padding-left:2.5em}.stack li.site-frame{background:#ffe9a8}\
figure.chart{display:inline-block;margin:.3em 1em .8em 0;vertical-align:top}\
svg.chart{font:11px system-ui,sans-serif}svg .title{font-size:13px;font-weight:600}\
svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .tick{fill:#555}svg .axis-title{fill:#333}\
.legend{font-size:.85em}.legend span{margin-right:1em;white-space:nowrap}\
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-1px}\
.flame svg{font:11px system-ui,sans-serif;display:block;max-width:100%;height:auto}\
.flame g.f{cursor:pointer}.flame g.f text{pointer-events:none}.flame g.hit rect{fill:#e040e0}\
.flame-bar{margin:.4em 0}table{border-collapse:collapse}td,th{border:1px solid #ddd;\
padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}";

/// A self-contained HTML report: the whole heap's verdict, the sites (each
/// expandable to its stacks and source), charts with axes against cycles
/// and by birth epoch, an icicle graph of the survivors, the distributions.
#[must_use]
pub fn report_html(r: &Report) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>alloc-report: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>alloc-report</h1>\n",
        escape(r.overall.kind.as_str())
    );
    header(&mut s, r);
    let shown = shown_sites(&r.sites, HTML_SITES);
    let _ = writeln!(
        s,
        "<h2 id=\"sites\">Sites</h2>\n<p class=\"note\">Click a site for its call stacks, \
         source line and survivors by birth epoch.</p>"
    );
    s.push_str(&sites::sites(r, &shown));
    if shown.len() < r.sites.len() {
        let _ = writeln!(
            s,
            "<p>... and {} more sites, none a leak (all are in the JSON report).</p>",
            r.sites.len() - shown.len()
        );
    }
    s.push_str("<h2 id=\"charts\">Memory across the run</h2>\n");
    charts(&mut s, r);
    s.push_str("<h2 id=\"births\">Survivors by birth epoch</h2>\n");
    births(&mut s, r);
    if let Some(f) = flame::flame(r) {
        s.push_str(
            "<h2 id=\"flame\">Where the survivors were allocated</h2>\n<p class=\"note\">\
             Surviving bytes born during the series, at the last snapshot, by call stack: the \
             outermost frame at the top, the allocating line at the bottom; width is bytes \
             (estimated). Own code in warm colours, dependencies in blue. Click a frame to \
             zoom; search to mark frames.</p>\n",
        );
        s.push_str(&f);
    }
    s.push_str(
        "<h2 id=\"distributions\">Distributions</h2>\n<table><tr><th>distribution</th>\
         <th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\n",
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

/// The run, the whole heap's verdict, sampling and the agreement note.
fn header(s: &mut String, r: &Report) {
    let o = &r.overall;
    let leaks = r.leak_sites();
    let _ = writeln!(
        s,
        "<div class=\"summary\"><div class=\"card\">whole heap<br><b class=\"{}\">{}</b>\
         </div><div class=\"card\">heap growth<br><b>{}/cycle</b><br>{:.2} blocks/cycle</div>\
         <div class=\"card\">leak sites<br><b>{leaks}</b> of {} sites</div>\
         <div class=\"card\">run<br><b>{} cycles</b><br>{} snapshots, epochs {}..={}</div></div>",
        if o.kind == VerdictKind::Leak {
            "leak"
        } else {
            ""
        },
        o.kind.as_str(),
        escape(&human_bytes(o.bytes_per_cycle)),
        o.blocks_per_cycle,
        r.call_sites(),
        r.cycles,
        r.snapshots,
        r.start_epoch,
        r.end_epoch
    );
    let _ = writeln!(
        s,
        "<p>Whole heap (exact counters): <b>{}</b>, {:.1} bytes/cycle, {:.2} blocks/cycle, \
         confidence {:.1}%, {} surviving. {}</p>",
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
            "<p class=\"note\">Call sites sampled ({}, mean interval {}): {} live samples; \
             figures per site are estimates.{}</p>",
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
    if let Some(a) = &r.agreement {
        let _ = writeln!(s, "<p class=\"warn\">{}</p>", escape(&a.note));
    }
}

/// The line charts against cycles.
fn charts(s: &mut String, r: &Report) {
    let x: Vec<f64> = r.points.iter().map(|p| p.cycles as f64).collect();
    let col = |f: &dyn Fn(&ReportPoint) -> Option<u64>| -> Vec<Option<f64>> {
        r.points.iter().map(|p| f(p).map(|v| v as f64)).collect()
    };
    s.push_str(&line_chart(
        "live heap and survivors",
        &x,
        Unit::Bytes,
        &[
            Line {
                name: "live heap",
                colour: "#1f77b4",
                values: col(&|p| Some(p.live_bytes)),
            },
            Line {
                name: "survivors",
                colour: "#d62728",
                values: col(&|p| Some(p.survivors.bytes)),
            },
        ],
    ));
    s.push_str(&line_chart(
        "process memory (the tool's own apart)",
        &x,
        Unit::Bytes,
        &[
            Line {
                name: "RSS",
                colour: "#2ca02c",
                values: col(&|p| p.rss_bytes),
            },
            Line {
                name: "RSS without the tool",
                colour: "#98df8a",
                values: col(&ReportPoint::rss_without_tool),
            },
            Line {
                name: "tool's own",
                colour: "#7f7f7f",
                values: col(&|p| Some(p.tool_bytes)),
            },
            Line {
                name: "allocator resident",
                colour: "#9467bd",
                values: col(&|p| p.allocator_resident_bytes),
            },
        ],
    ));
    if !r.site_curves.is_empty() {
        let lines: Vec<Line<'_>> = r
            .site_curves
            .iter()
            .zip(COLOURS.iter().cycle())
            .map(|(c, colour)| Line {
                name: &c.site,
                colour,
                values: c.bytes.iter().map(|&b| Some(b)).collect(),
            })
            .collect();
        s.push_str(&line_chart(
            "survivors of the top sites (estimated)",
            &x,
            Unit::Bytes,
            &lines,
        ));
    }
    s.push('\n');
}

/// The whole heap's survivors by birth epoch at the last snapshot, the top
/// sites' shares stacked under the rest of the heap.
fn births(s: &mut String, r: &Report) {
    let h = &r.heap_births;
    let _ = writeln!(
        s,
        "<p class=\"note\">Live bytes at the last snapshot by the epoch they were born in. \
         A leak is an even band across epochs, a cache sits in old epochs, a warm-up in the \
         first ones. Born before the series and still live (held): {} in {} blocks.</p>",
        escape(&human_bytes(h.before_series_bytes as f64)),
        h.before_series_blocks
    );
    if h.epochs.is_empty() {
        s.push_str("<p><b>No survivors born during the series.</b></p>\n");
    }
    let split = r.birth_layers(COLOURS.len() - 1);
    let mut layers: Vec<Layer<'_>> = split
        .sites
        .into_iter()
        .zip(COLOURS)
        .map(|((i, bytes), colour)| Layer {
            name: &r.sites[i].site,
            colour,
            bytes,
        })
        .collect();
    let only_heap = layers.is_empty();
    layers.push(Layer {
        name: if only_heap {
            "whole heap (exact)"
        } else {
            "rest of the heap"
        },
        colour: "#c7c7c7",
        bytes: split.rest,
    });
    s.push_str(&birth_chart(
        "surviving bytes by birth epoch, at the last snapshot",
        (r.start_epoch, r.end_epoch),
        &split.columns,
        &layers,
        false,
    ));
    s.push('\n');
}
