//! The HTML report at the scale of a long soak: a synthetic series of 41
//! snapshots over 1,000,000 cycles, of a program with 100, 300 and 1,000
//! call sites (3 stacks of 24 frames each: allocator and standard-library
//! frames, the site, dependency frames, callers; one site in ten in a file
//! on disk, so its source lines are read; the page lists the stacks of the
//! 20 leak sites and the top stack of each other site), analysed and
//! rendered. For
//! each: the page's size, per site and per stack, and, when Debian's
//! `chromium` is installed, the page opened in headless Chromium: its load
//! (`domInteractive`, `loadEventStart` of the navigation timing), then
//! opening every site's details, a search in the icicle graph and a zoom,
//! each timed in the page with a layout forced after it. Median of 3 runs.
//!
//! `cargo run --release -p alloc-report --example html_scale [-- OUT_DIR]`
//! writes `html_scale.txt` to OUT_DIR (default `alloc-report/bench/results`)
//! and the pages under `target/html-scale/`.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use alloc_report::analysis::ClassifyOptions;
use alloc_report::{render, Analyzer, SnapshotFile};
use alloc_snapshot::{Frame, SampleMode, Sampling, SiteLive, Stack};

/// The synthetic snapshots of the tests: one home for them.
#[path = "../tests/common/mod.rs"]
mod common;
use common::mix;

const SNAPSHOTS: u32 = 41;
const CYCLES: u64 = 1_000_000;
const STACKS_PER_SITE: u32 = 3;

fn frame(ip: u64, function: &str, file: &str, line: u32) -> Frame {
    Frame {
        ip,
        function: Some(function.to_string()),
        file: Some(file.to_string()),
        line: Some(line),
    }
}

/// Stack `j` of site `s`: 10 allocator and standard-library frames, the
/// site, 3 dependency frames, 6 callers, 4 frames of `std::rt`.
fn stack(s: u32, j: u32, on_disk: &str) -> Stack {
    let id = s * 4 + j;
    let ip = 0x5555_0000_0000 + u64::from(id) * 0x1000;
    let mut frames = Vec::new();
    for i in 0..10u32 {
        frames.push(frame(
            ip + u64::from(i),
            &format!("alloc::raw_vec::RawVecInner<A>::grow_{i}"),
            "/rustc/0000/library/alloc/src/raw_vec/mod.rs",
            400 + i,
        ));
    }
    let (file, line) = if s.is_multiple_of(10) {
        (on_disk.to_string(), 10 + s % 200)
    } else {
        (
            format!("/work/server/src/module_{}.rs", s % 97),
            10 + s % 500,
        )
    };
    frames.push(frame(
        ip + 0x10,
        &format!("server::module_{}::handler_{s}", s % 97),
        &file,
        line,
    ));
    for i in 0..3u32 {
        frames.push(frame(
            ip + 0x20 + u64::from(i),
            &format!("tokio::runtime::task::harness::poll_{}", (i + j) % 5),
            "/root/.cargo/registry/src/index.crates.io-0000/tokio-1.54.1/src/runtime/task/harness.rs",
            100 + i + j,
        ));
    }
    for i in 0..6u32 {
        frames.push(frame(
            ip + 0x30 + u64::from(i),
            &format!("server::caller_{}", (i + s) % 40),
            "/work/server/src/main.rs",
            20 + i,
        ));
    }
    for i in 0..4u32 {
        frames.push(frame(
            ip + 0x40 + u64::from(i),
            &format!("std::rt::lang_start_internal_{i}"),
            "/rustc/0000/library/std/src/rt.rs",
            150 + i,
        ));
    }
    Stack {
        id,
        frames,
        user_frame: Some(10),
    }
}

/// The site entries of snapshot `k`: sites 1..=20 leak (every closed
/// epoch), up to 10% more are caches (epochs 0..5), 20% in-flight noise,
/// the rest warm-up (epoch 0).
fn entries(k: u32, sites: u32, out: &mut Vec<SiteLive>) {
    out.clear();
    for s in 1..=sites {
        for j in 0..STACKS_PER_SITE {
            let stack = s * 4 + j;
            let mut push = |epoch: u32, bytes: f64, blocks: f64| {
                out.push(SiteLive {
                    stack,
                    epoch,
                    bytes,
                    blocks,
                    samples: blocks as u64,
                })
            };
            if s <= 20 {
                for e in 0..k {
                    push(e, 4096.0 * f64::from(j + 1), f64::from(j + 1));
                }
            } else if s <= sites / 10 + 20 {
                for e in 0..5.min(k) {
                    push(e, 65536.0, 16.0);
                }
            } else if s <= 3 * sites / 10 + 20 {
                for e in k.saturating_sub(2)..=k {
                    let h = mix(u64::from(stack) << 32 ^ u64::from(k) << 8 ^ u64::from(e));
                    if !h.is_multiple_of(3) {
                        push(e, 1024.0 * ((h >> 8) % 4 + 1) as f64, 2.0);
                    }
                }
            } else if k > 0 {
                push(0, 8192.0, 2.0);
            }
        }
    }
    out.sort_by_key(|x| (x.stack, x.epoch));
}

fn series_report(sites: u32, on_disk: &str) -> alloc_report::Report {
    let mut s = common::snap(0, &[]);
    s.sampling = Sampling {
        mode: SampleMode::Interval(256 * 1024),
        ..Sampling::default()
    };
    s.stacks = (1..=sites)
        .flat_map(|site| (0..STACKS_PER_SITE).map(move |j| (site, j)))
        .map(|(site, j)| stack(site, j, on_disk))
        .collect();
    s.stacks.sort_by_key(|st| st.id);
    let mut file = SnapshotFile::new(s);
    let mut analyzer = Analyzer::new(&ClassifyOptions::default());
    for k in 0..SNAPSHOTS {
        let s = &mut file.snapshot;
        s.epoch = k;
        s.timestamp_unix_ns = 1_700_000_000_000_000_000 + u64::from(k) * 1_000_000_000;
        entries(k, sites, &mut s.sites);
        common::exact_from_sites(s, k);
        file.cycles = Some(u64::from(k) * (CYCLES / u64::from(SNAPSHOTS - 1)));
        analyzer.push(&file);
    }
    analyzer.finish()
}

/// The page that opens `report` in a frame and times it and three
/// interactions, writing the figures into its own body.
const MEASURE: &str = r#"<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="f" style="width:1280px;height:900px"></iframe><script>
var f=document.getElementById('f');
f.onload=function(){var w=f.contentWindow,d=w.document,n=w.performance.getEntriesByType('navigation')[0];
function time(fn){var t=performance.now();fn();d.body.offsetHeight;return performance.now()-t;}
var sites=d.querySelectorAll('details.site');
var open=time(function(){for(var i=0;i<sites.length;i++)sites[i].open=true;});
var input=d.getElementById('flame-search'),search=-1,zoom=-1;
if(input){search=time(function(){input.value='handler';input.dispatchEvent(new w.Event('input'));});
var g=d.querySelectorAll('#flame-svg g.f');zoom=time(function(){g[Math.min(3,g.length-1)].dispatchEvent(new w.MouseEvent('click'));});}
document.getElementById('out').textContent='interactive_ms='+n.domInteractive.toFixed(0)+' load_ms='+n.loadEventStart.toFixed(0)+
' sites='+sites.length+' open_all_ms='+open.toFixed(0)+' search_ms='+search.toFixed(0)+' zoom_ms='+zoom.toFixed(0);};
f.src='REPORT';
</script></body></html>"#;

/// The figures of one run of the measuring page in Chromium.
fn browse(browser: &Path, dir: &Path, report: &str) -> Option<String> {
    let page = dir.join(format!("measure-{report}"));
    std::fs::write(&page, MEASURE.replace("REPORT", report)).ok()?;
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--allow-file-access-from-files",
            "--window-size=1400,1000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .ok()?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let at = dom.find("interactive_ms=")?;
    let rest = &dom[at..];
    Some(rest[..rest.find('<')?].to_string())
}

/// The median of the runs of one figure (`name=value`).
fn median(runs: &[String], name: &str) -> f64 {
    let mut v: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            r.split(' ')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|x| x.parse().ok())
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("bench/results"), PathBuf::from);
    let pages = root.join("../target/html-scale");
    std::fs::create_dir_all(&pages).expect("create target/html-scale");
    let on_disk = root.join("src/render/html.rs").display().to_string();
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    // The machine is shared: the load at the start goes beside the figures.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let mut text = format!(
        "alloc-report HTML at scale ({SNAPSHOTS} snapshots over {CYCLES} cycles, \
         {STACKS_PER_SITE} stacks of 24 frames per site; {} build; {} CPUs, load average {} \
         at the start; Chromium: {})\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" "),
        browser
            .as_ref()
            .map_or("not installed".to_string(), |b| b.display().to_string())
    );
    for sites in [100u32, 300, 1000] {
        let report = series_report(sites, &on_disk);
        let t = Instant::now();
        let html = render::report_html(&report);
        let render_ms = t.elapsed().as_secs_f64() * 1e3;
        let name = format!("report-{sites}.html");
        std::fs::write(pages.join(&name), &html).expect("write the page");
        let stacks = sites * STACKS_PER_SITE;
        let _ = write!(
            text,
            "{sites} sites ({} leaks), {stacks} stacks: HTML {} bytes ({:.0} per site, {:.0} \
             per stack), rendered in {render_ms:.0} ms",
            report
                .sites
                .iter()
                .filter(|v| v.kind.as_str() == "leak")
                .count(),
            html.len(),
            html.len() as f64 / f64::from(sites),
            html.len() as f64 / f64::from(stacks),
        );
        if let Some(b) = &browser {
            let runs: Vec<String> = (0..3).filter_map(|_| browse(b, &pages, &name)).collect();
            let _ = write!(
                text,
                "; in Chromium (median of {}): interactive {:.0} ms, loaded {:.0} ms, every \
                 site opened {:.0} ms, search {:.0} ms, zoom {:.0} ms",
                runs.len(),
                median(&runs, "interactive_ms"),
                median(&runs, "load_ms"),
                median(&runs, "open_all_ms"),
                median(&runs, "search_ms"),
                median(&runs, "zoom_ms"),
            );
            for r in &runs {
                let _ = write!(text, "\n    run: {r}");
            }
        }
        text.push('\n');
    }
    print!("{text}");
    std::fs::create_dir_all(&out_dir).expect("create the results directory");
    std::fs::write(out_dir.join("html_scale.txt"), text).expect("write html_scale.txt");
}
