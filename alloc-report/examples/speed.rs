//! The analyser's speed benchmark, both parts in one run:
//!
//! - **analyse + render**: a series of 1,000 snapshots of a program with
//!   10,000 call sites (stacks of 8 frames) pushed through
//!   [`alloc_report::Analyzer`], then the text, JSON, HTML, pprof and folded
//!   renderers; goal under 1 s. Two mixes: *typical* (20 leaking sites, 500
//!   with in-flight noise, 1,500 caches, the rest warm-up allocations) and
//!   *all noisy* (every site has fluctuating survivors, so no site takes
//!   the flat fast path).
//! - **diff** of two snapshots of 100,000 call sites each; goal under
//!   100 ms.
//!
//! Snapshots are generated in memory (one at a time: the series is never
//! held whole) and their generation is not timed. Each figure is the median
//! of 3 runs (all runs are written too).
//!
//! `cargo run --release -p alloc-report --example speed [-- OUT_DIR]`
//! writes `speed.json` and `speed.txt` to OUT_DIR (default
//! `alloc-report/bench/results`). `SPEED_ONLY=typical|all_noisy|diff` runs
//! one part and writes nothing (for profiling).

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use alloc_report::analysis::{diff, ClassifyOptions};
use alloc_report::{render, Analyzer, SnapshotFile};
use alloc_snapshot::{SampleMode, Sampling, SiteLive, Stack};

/// The synthetic snapshots and stacks of the tests: one home for both.
#[path = "../tests/common/mod.rs"]
mod common;
use common::mix;

/// `n` stacks of 8 frames, ids 1..=n, each with its own user frame
/// (an allocator frame, the site, six callers).
fn stacks(n: u32) -> Vec<Stack> {
    const CALLERS: [&str; 6] = [
        "server::caller_0",
        "server::caller_1",
        "server::caller_2",
        "server::caller_3",
        "server::caller_4",
        "server::caller_5",
    ];
    (1..=n)
        .map(|id| {
            common::stack(
                id,
                &format!("src/module_{}.rs", id % 97),
                10 + id % 500,
                &format!("server::module_{}::handler_{id}", id % 97),
                &CALLERS,
            )
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Mix {
    Typical,
    AllNoisy,
}

/// The site entries of snapshot `k` (epoch k) for `sites` sites.
fn site_entries(k: u32, sites: u32, mix_kind: Mix, out: &mut Vec<SiteLive>) {
    out.clear();
    let noisy = |id: u32, e: u32, out: &mut Vec<SiteLive>| {
        let h = mix(u64::from(id) << 32 ^ u64::from(k) << 8 ^ u64::from(e));
        if !h.is_multiple_of(3) {
            let n = (h >> 8) % 4 + 1;
            out.push(SiteLive {
                stack: id,
                epoch: e,
                bytes: 4096.0 * n as f64,
                blocks: 8.0 * n as f64,
                samples: n,
            });
        }
    };
    for id in 1..=sites {
        let class = if mix_kind == Mix::AllNoisy {
            1
        } else if id <= 20 {
            0
        } else if id <= 520 {
            1
        } else if id <= 2020 {
            2
        } else {
            3
        };
        match class {
            // Leak: one entry per closed epoch, kept.
            0 => out.extend((0..k).map(|e| SiteLive {
                stack: id,
                epoch: e,
                bytes: 16384.0,
                blocks: 4.0,
                samples: 1,
            })),
            // In-flight work of the last 3 epochs.
            1 => {
                for e in k.saturating_sub(3)..=k {
                    noisy(id, e, out);
                }
            }
            // A cache filled in epochs 0..5.
            2 => out.extend((0..5.min(k)).map(|e| SiteLive {
                stack: id,
                epoch: e,
                bytes: 65536.0,
                blocks: 16.0,
                samples: 4,
            })),
            // Warm-up: allocated in epoch 0.
            _ => {
                if k > 0 {
                    out.push(SiteLive {
                        stack: id,
                        epoch: 0,
                        bytes: 8192.0,
                        blocks: 2.0,
                        samples: 1,
                    })
                }
            }
        }
    }
}

fn fill(file: &mut SnapshotFile, k: u32, sites: u32, mix_kind: Mix) {
    let s = &mut file.snapshot;
    s.epoch = k;
    s.timestamp_unix_ns = 1_700_000_000_000_000_000 + u64::from(k) * 1_000_000_000;
    site_entries(k, sites, mix_kind, &mut s.sites);
    // Exact counters: the sites' estimates per epoch, plus in-flight work.
    common::exact_from_sites(s, k);
    file.cycles = Some(u64::from(k) * 10);
}

fn empty_file(stacks: Vec<Stack>) -> SnapshotFile {
    let mut s = common::snap(0, &[]);
    s.exact_window = 256;
    s.sampling = Sampling {
        mode: SampleMode::Interval(512 * 1024),
        ..Sampling::default()
    };
    s.stacks = stacks;
    SnapshotFile::new(s)
}

struct AnalyseRun {
    analyse: Duration,
    finish: Duration,
    render: Duration,
    entries_last: usize,
    leaks: usize,
    html_bytes: usize,
    pprof_bytes: usize,
}

fn analyse_once(snapshots: u32, sites: u32, mix_kind: Mix) -> AnalyseRun {
    let mut file = empty_file(stacks(sites));
    let mut analyzer = Analyzer::new(&ClassifyOptions::default());
    let mut analyse = Duration::ZERO;
    for k in 0..snapshots {
        fill(&mut file, k, sites, mix_kind);
        let t = Instant::now();
        analyzer.push(&file);
        analyse += t.elapsed();
    }
    let entries_last = file.snapshot.sites.len();
    drop(file);
    let t = Instant::now();
    let report = analyzer.finish();
    let finish = t.elapsed();
    analyse += finish;
    let t = Instant::now();
    let text = render::report_text(&report);
    let json = render::report_json(&report);
    let html = render::report_html(&report);
    let pprof = render::pprof(&report);
    let folded = render::folded(&report);
    let render_time = t.elapsed();
    std::hint::black_box((&text, &json, &folded));
    AnalyseRun {
        analyse,
        finish,
        render: render_time,
        entries_last,
        leaks: report
            .sites
            .iter()
            .filter(|v| v.kind == alloc_report::VerdictKind::Leak)
            .count(),
        html_bytes: html.len(),
        pprof_bytes: pprof.len(),
    }
}

fn diff_once(sites: u32) -> (Duration, Duration, usize) {
    let st = stacks(sites);
    let mut old = empty_file(st.clone());
    let mut new = empty_file(st);
    fill(&mut old, 50, sites, Mix::AllNoisy);
    fill(&mut new, 60, sites, Mix::AllNoisy);
    let t = Instant::now();
    let d = diff(&old.snapshot, &new.snapshot);
    let diff_time = t.elapsed();
    let t = Instant::now();
    let text = render::diff_text(&d);
    let render_time = t.elapsed();
    std::hint::black_box(&text);
    (diff_time, render_time, d.sites.len())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> std::io::Result<()> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results").to_string());
    let reps = 3;
    let mut text = String::new();
    let mut json = serde_json::Map::new();
    // The machine's load when the run started: other work on a shared
    // machine slows every figure.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = writeln!(
        text,
        "alloc-report speed ({} build, {} CPUs, load average {load} at the start, \
         unix time {unix}, median of {reps} runs)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    json.insert("load_average_at_start".into(), serde_json::json!(load));
    json.insert("unix_time".into(), serde_json::json!(unix));
    json.insert(
        "command".into(),
        serde_json::json!("cargo run --release -p alloc-report --example speed"),
    );
    // SPEED_ONLY=diff|typical|all_noisy runs one part (for profiling).
    let only = std::env::var("SPEED_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    for (name, mix_kind) in [("typical", Mix::Typical), ("all_noisy", Mix::AllNoisy)] {
        if !wanted(name) {
            continue;
        }
        let runs: Vec<AnalyseRun> = (0..reps)
            .map(|_| analyse_once(1000, 10_000, mix_kind))
            .collect();
        let a = median(runs.iter().map(|r| r.analyse).collect());
        let r = median(runs.iter().map(|r| r.render).collect());
        let f = median(runs.iter().map(|r| r.finish).collect());
        let total = median(runs.iter().map(|r| r.analyse + r.render).collect());
        let last = &runs[0];
        let _ = writeln!(
            text,
            "analyse+render 1000 snapshots x 10000 sites ({name}): {:.0} ms \
             (analyse {:.0} ms of which classification {:.0} ms, render {:.0} ms; {} site entries in the last snapshot, \
             {} leaks, HTML {} KiB, pprof {} KiB) goal < 1000 ms: {}",
            ms(total),
            ms(a),
            ms(f),
            ms(r),
            last.entries_last,
            last.leaks,
            last.html_bytes / 1024,
            last.pprof_bytes / 1024,
            if total < Duration::from_secs(1) { "met" } else { "NOT met" }
        );
        json.insert(
            format!("analyse_render_{name}"),
            serde_json::json!({
                "snapshots": 1000, "sites": 10000,
                "total_ms": ms(total), "analyse_ms": ms(a), "classify_ms": ms(f), "render_ms": ms(r),
                "runs_total_ms": runs.iter().map(|r| ms(r.analyse + r.render)).collect::<Vec<_>>(),
                "site_entries_last_snapshot": last.entries_last,
                "leaks": last.leaks,
                "goal_ms": 1000, "met": total < Duration::from_secs(1),
            }),
        );
    }
    if !wanted("diff") {
        print!("{text}");
        return Ok(());
    }
    let runs: Vec<(Duration, Duration, usize)> = (0..reps).map(|_| diff_once(100_000)).collect();
    let d = median(runs.iter().map(|r| r.0).collect());
    let dr = median(runs.iter().map(|r| r.1).collect());
    let _ = writeln!(
        text,
        "diff of two snapshots of 100000 sites: {:.1} ms (text rendering {:.1} ms more) \
         goal < 100 ms: {}",
        ms(d),
        ms(dr),
        if d < Duration::from_millis(100) {
            "met"
        } else {
            "NOT met"
        }
    );
    json.insert(
        "diff".into(),
        serde_json::json!({
            "sites": 100000, "diff_ms": ms(d), "render_ms": ms(dr),
            "runs_diff_ms": runs.iter().map(|r| ms(r.0)).collect::<Vec<_>>(),
            "sites_in_diff": runs[0].2,
            "goal_ms": 100, "met": d < Duration::from_millis(100),
        }),
    );
    print!("{text}");
    if only.is_some() {
        // A partial run does not replace the results.
        return Ok(());
    }
    std::fs::create_dir_all(&out_dir)?;
    let dir = std::path::Path::new(&out_dir);
    std::fs::write(dir.join("speed.txt"), &text)?;
    let mut j = serde_json::to_string_pretty(&serde_json::Value::Object(json))?;
    j.push('\n');
    std::fs::write(dir.join("speed.json"), j)?;
    eprintln!("wrote {}/speed.{{txt,json}}", dir.display());
    Ok(())
}
