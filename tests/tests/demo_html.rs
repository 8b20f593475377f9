//! The demo's HTML reports as a person sees them: a short soak of the
//! `cycle` pattern, leaky and fixed, each against its own server process,
//! then its `report.html` opened in headless Chromium. The leaky report,
//! after its script ran (`--dump-dom`), shows the leak site open with its
//! call stack, the site's own frame marked and the source line of that
//! frame as it is on disk, the birth-epoch chart with bars, and the icicle
//! graph, whose search (opened at `#search=`) matches the leak's function;
//! the fixed report shows no leak site; neither prints a console message
//! (a script error would). Screenshots are kept under
//! `target/tmp/demo-html/` as artifacts.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test
//! says so and passes; with `ALLOC_REPORT_REQUIRE_CHROMIUM=1` (set by
//! `.ci/run`) a missing browser fails it.

#[path = "../../alloc-report/tests/chromium/mod.rs"]
mod chromium;
mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{assert_verdict, options, run_checks, server_role, soak, start};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// The browser window: a laptop screen's width, tall enough for the open
/// leak site and the first charts.
const WINDOW: (u32, u32) = (1280, 2000);

/// Where the screenshots stay.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-html");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// The part of `dom` from `start` to the next `end` after it.
fn between<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let at = dom
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in the page"));
    let rest = &dom[at..];
    &rest[..rest.find(end).map_or(rest.len(), |e| e + end.len())]
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn check(variant: Variant) {
    let Some(browser) = chromium::find() else {
        return;
    };
    let pattern = Pattern::Cycle;
    let server = start(pattern, variant, &[]);
    let name = format!("{pattern}-{variant}-html");
    let o = options(&server, &name, 1000, 50);
    let r = soak(&o);
    assert_verdict(pattern, variant, &r);
    let html = o.out.join("report.html");
    let url = format!("file://{}", html.display());
    let profile = o.out.join("chromium-profile");
    let shot = artifacts().join(format!("{pattern}-{variant}.png"));
    let _ = std::fs::remove_file(&shot);
    let leak = r.report.sites.iter().find(|v| v.kind.as_str() == "leak");
    let search = leak
        .and_then(|v| v.location.as_ref())
        .and_then(|f| f.function.as_deref())
        .map(|f| f.rsplit("::").next().unwrap_or(f).to_string());
    let dom = chromium::run(
        &browser,
        &profile,
        &match &search {
            Some(s) => format!("{url}#search={s}"),
            None => url.clone(),
        },
        WINDOW,
        "--dump-dom",
    );
    assert!(
        dom.contains("<h2 id=\"sites\">Sites</h2>"),
        "no sites section"
    );
    // The birth-epoch chart is drawn, with bars where the report has
    // survivors born during the series.
    let born: u64 = r
        .report
        .heap_births
        .epochs
        .iter()
        .map(|e| e.live_bytes)
        .sum();
    assert_eq!(
        between(&dom, "<svg class=\"chart births\"", "</svg>").contains("<rect"),
        born > 0,
        "the birth-epoch chart and the report's {born} bytes born during the series"
    );
    assert!(
        between(&dom, "<svg class=\"chart lines\"", "</svg>").contains("<polyline"),
        "the line chart has no lines"
    );
    match variant {
        Variant::Leaky => {
            assert!(born > 0, "a leak's survivors were born during the series");
            let v = leak.expect("a leak site");
            let open = between(
                &dom,
                "<details class=\"site leak\" open=\"\">",
                "</details>",
            );
            assert!(
                open.contains(&escape(&v.site)),
                "the open site is not the leak"
            );
            // The stack shows the site's own frame, marked.
            let f = v.location.as_ref().expect("the leak site's frame");
            let frame = between(open, "class=\"own site-frame\"", "</li>");
            let function = f.function.as_deref().expect("a symbolised frame");
            assert!(frame.contains(&escape(function)), "{frame}");
            // The source line is the file's on disk, at the frame's line.
            let (file, line) = (f.file.as_deref().unwrap(), f.line.unwrap());
            let text = std::fs::read_to_string(file).expect("the demo's source is on disk");
            let want = text.lines().nth(line as usize - 1).unwrap().trim_end();
            let hit = between(open, "<span class=\"hit\">", "</span>");
            assert!(hit.contains(&format!("<i>{line:>5}</i>")), "{hit}");
            assert!(hit.contains(&escape(want)), "{hit} lacks {want:?}");
            // The icicle graph is drawn and its search ran.
            let flame = between(&dom, "<svg id=\"flame-svg\"", "</svg>");
            assert!(
                flame.contains(&escape(function)),
                "the flame graph lacks the leak"
            );
            let matched = between(&dom, "<span id=\"flame-match\">", "</span>");
            let pct: f64 = matched
                .trim_start_matches("<span id=\"flame-match\">matched ")
                .split('%')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("the search did not run: {matched}"));
            assert!(pct > 0.0, "{matched}");
        }
        Variant::Fixed => {
            assert!(
                !dom.contains("class=\"site leak\""),
                "a leak in the fixed report"
            );
        }
    }
    chromium::run(
        &browser,
        &profile,
        &url,
        WINDOW,
        &format!("--screenshot={}", shot.display()),
    );
    let (w, h, px) = chromium::pixels(&shot);
    assert_eq!((w, h), WINDOW);
    assert!(px.iter().any(|&p| p != px[0]), "the screenshot is blank");
    eprintln!("screenshot: {}", shot.display());
    let _ = std::fs::remove_dir_all(&o.out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    run_checks(&[
        ("cycle_leaky_in_chromium", || check(Variant::Leaky)),
        ("cycle_fixed_in_chromium", || check(Variant::Fixed)),
    ])
}
