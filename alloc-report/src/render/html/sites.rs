//! The HTML report's sites: one row per site (verdict, bytes and blocks per
//! cycle, confidence and its samples, survivors) that opens to the site's
//! reason, cause and retention path, its survivors by birth epoch, its
//! call stacks (the program's own frames set apart from dependencies' and
//! the standard library's) and the source lines around its line.

use std::fmt::Write as _;

use alloc_snapshot::short_path;

use super::chart::{birth_chart, Layer};
use super::escape;
use crate::analysis::{Report, SiteDetail, SiteStack, Source, StackFrame, Verdict, VerdictKind};
use crate::render::human_bytes;

/// The sites section: a header row and one `<details>` per shown site (the
/// first leak open).
pub(super) fn sites(r: &Report, shown: &[&Verdict]) -> String {
    let mut s = String::from(
        "<div class=\"sites\"><div class=\"row head\"><span>verdict</span><span>site</span>\
         <span>bytes/cycle</span><span>blocks/cycle</span><span>confidence</span>\
         <span>surviving</span><span>cause</span></div>\n",
    );
    if shown.is_empty() {
        s.push_str("<p class=\"row\">No site has survivors.</p>\n");
    }
    let mut opened = false;
    for (i, v) in shown.iter().enumerate() {
        let detail = r.site_details.get(i).filter(|d| d.site == v.site);
        let open = !opened && v.kind == VerdictKind::Leak;
        opened |= open;
        site(&mut s, r, v, detail, open);
    }
    s.push_str("</div>\n");
    s
}

fn site(s: &mut String, r: &Report, v: &Verdict, detail: Option<&SiteDetail>, open: bool) {
    let kind = v.kind.as_str();
    let samples = if v.estimated {
        format!("{} samples", v.samples)
    } else {
        "exact".to_string()
    };
    let _ = write!(
        s,
        "<details class=\"site {kind}\"{}><summary class=\"row\"><span class=\"verdict\">{kind}\
         </span><span class=\"label\">{}</span><span class=\"num\">{:.1}</span>\
         <span class=\"num\">{:.2}</span><span class=\"num\">{:.1}% <small>({samples})</small>\
         </span><span class=\"num\">{} <small>in {} blocks</small></span><span>{}</span>\
         </summary><div class=\"body\">",
        if open { " open" } else { "" },
        escape(&v.site),
        v.bytes_per_cycle,
        v.blocks_per_cycle,
        v.confidence * 100.0,
        escape(&human_bytes(v.final_survivors.bytes as f64)),
        v.final_survivors.blocks,
        v.cause.as_ref().map_or("", |c| c.kind.as_str()),
    );
    let _ = write!(s, "<p class=\"why\">{}</p>", escape(&v.reason));
    if let Some(c) = &v.cause {
        let _ = write!(
            s,
            "<div class=\"cause\"><b>cause: {}</b> ({:.0}% of {} scanned survivors)",
            c.kind.as_str(),
            c.share * 100.0,
            c.blocks
        );
        if !c.path.is_empty() {
            s.push_str("<ol class=\"path\">");
            for step in &c.path {
                let _ = write!(s, "<li>{}</li>", escape(step));
            }
            s.push_str("</ol>");
        }
        let _ = write!(s, "<p>{}</p></div>", escape(&c.hint));
    }
    if let Some(d) = detail {
        births(s, r, v, d);
    }
    for (k, st) in v.stacks.iter().enumerate() {
        stack(s, st, k);
    }
    if let Some(st) = detail.and_then(|d| d.top_stack.as_ref()) {
        stack(s, st, 0);
        s.push_str(
            "<p class=\"note\">The stack with most surviving bytes; every stack is in the \
             pprof and folded-stack reports.</p>",
        );
    }
    s.push_str("</div></details>\n");
}

/// A site's survivors by birth epoch and its source lines.
fn births(s: &mut String, r: &Report, v: &Verdict, d: &SiteDetail) {
    if !d.born.is_empty() {
        let columns: Vec<(u32, u32)> = d.born.iter().map(|b| (b.epoch, b.epoch)).collect();
        let bytes: Vec<f64> = d.born.iter().map(|b| b.bytes).collect();
        s.push_str(&birth_chart(
            "this site's survivors by birth epoch (estimated)",
            (r.start_epoch, r.end_epoch),
            &columns,
            &[Layer {
                name: &v.site,
                colour: if v.kind == VerdictKind::Leak {
                    "#d62728"
                } else {
                    "#1f77b4"
                },
                bytes,
            }],
            true,
        ));
    }
    if d.born_before_series > 0.0 {
        let _ = write!(
            s,
            "<p class=\"note\">Also live from before the series: {} (estimated).</p>",
            escape(&human_bytes(d.born_before_series))
        );
    }
    match &d.source {
        Some(src) => source(s, src),
        None => s.push_str(
            "<p class=\"note\">No source line: the site's frame has no file and line (no \
             debug information).</p>",
        ),
    }
}

fn source(s: &mut String, src: &Source) {
    match src {
        Source::Found {
            path,
            line,
            first,
            text,
        } => {
            let _ = write!(
                s,
                "<div class=\"source\"><div class=\"path\">{}:{line}</div><pre>",
                escape(short_path(path))
            );
            for (k, l) in text.iter().enumerate() {
                let n = first + k as u32;
                let _ = write!(
                    s,
                    "<span class=\"{}\"><i>{n:>5}</i> {}</span>",
                    if n == *line { "hit" } else { "ln" },
                    escape(l)
                );
            }
            s.push_str("</pre></div>");
        }
        Source::Missing { path, reason } => {
            let _ = write!(
                s,
                "<p class=\"note source-missing\">Source not shown: {} is not readable here \
                 ({}).</p>",
                escape(short_path(path)),
                escape(reason)
            );
        }
    }
}

fn stack(s: &mut String, st: &SiteStack, k: usize) {
    let _ = write!(
        s,
        "<div class=\"stack\"><div class=\"stack-head\">stack {}: {} in {:.0} blocks \
         <small>(innermost frame first, from the first past the allocator; <b>own code</b>, \
         <span class=\"dependency\">dependency</span>, <span class=\"std\">standard \
         library</span>)</small></div><ol>",
        k + 1,
        escape(&human_bytes(st.bytes)),
        st.blocks
    );
    // Runs of three or more standard-library frames fold into one line
    // that opens to them.
    let mut k = 0;
    while k < st.frames.len() {
        let run = st.frames[k..]
            .iter()
            .take_while(|f| frame_class(f) == "std")
            .count();
        if run >= 3 {
            let _ = write!(
                s,
                "<li class=\"std fold\"><details><summary>{run} standard-library frames\
                 </summary><ol>"
            );
            for (i, f) in st.frames[k..k + run].iter().enumerate() {
                frame(s, k + i, f);
            }
            s.push_str("</ol></details></li>");
            k += run;
        } else {
            frame(s, k, &st.frames[k]);
            k += 1;
        }
    }
    s.push_str("</ol></div>");
}

/// Whose code a frame is, as a CSS class (the report's
/// [`crate::analysis::FrameOwner`]).
fn frame_class(f: &StackFrame) -> &'static str {
    f.owner.name()
}

/// Frame `k` (from 0, innermost) of a stack, numbered from 1.
fn frame(s: &mut String, k: usize, f: &StackFrame) {
    let label = alloc_snapshot::Frame {
        ip: 0,
        function: f.function.clone(),
        file: f.file.clone(),
        line: f.line,
    }
    .label();
    let _ = write!(
        s,
        "<li value=\"{}\" class=\"{}{}\">{}{}</li>",
        k + 1,
        frame_class(f),
        if f.site { " site-frame" } else { "" },
        if f.site { "\u{25b6} " } else { "" },
        escape(&label)
    );
}
