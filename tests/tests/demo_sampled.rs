//! Interval sampling names the leaking line in a real server: each leaky
//! pattern's server runs with call sites sampled about once every 8 KiB
//! (`ALLOC_CORE_SAMPLE=8KiB`, not every allocation as the demo does), is
//! soaked for the demo's default 2,000 cycles in batches of 100, and the top
//! call site must be in the pattern's own source file with its estimated
//! bytes per cycle within 25% of the true per-connection figure.

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::demo::{serve_args, ServerProcess};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{options, run_checks, server_role, soak, SERVER_ROLE};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn check(pattern: Pattern) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let server = ServerProcess::spawn(
        &exe,
        serve_args(pattern, Variant::Leaky),
        &[
            (SERVER_ROLE, Some("1")),
            ("ALLOC_CORE_SAMPLE", Some("8KiB")),
        ],
    )
    .expect("start the server child");
    let name = format!("{pattern}-sampled");
    let mut o = options(&server, &name, 2000, 100);
    o.warmup = 50;
    let r = soak(&o);
    let (true_bytes, _) = pattern.true_leak_per_connection().unwrap();
    let top = r
        .report
        .sites
        .iter()
        .filter(|v| v.site != alloc_report::analysis::ALL_SITES)
        .max_by(|a, b| a.bytes_per_cycle.total_cmp(&b.bytes_per_cycle))
        .unwrap_or_else(|| panic!("{pattern}: no sampled site"));
    // A pattern may leak from more than one line of its module: add up the
    // leaking sites in its file.
    let in_file: f64 = r
        .report
        .sites
        .iter()
        .filter(|v| v.site.contains(pattern.source_file()) && v.kind.as_str() == "leak")
        .map(|v| v.bytes_per_cycle)
        .sum();
    let error = (in_file - true_bytes).abs() / true_bytes;
    println!(
        "{pattern}: top site {} at {:.1} B/cycle; all leaking sites in {}: {in_file:.1} B/cycle \
         (true {true_bytes}), error {:.1}%",
        top.site,
        top.bytes_per_cycle,
        pattern.source_file(),
        error * 100.0
    );
    assert!(
        top.site.contains(pattern.source_file()),
        "{pattern}: top site {}",
        top.site
    );
    assert_eq!(top.kind.as_str(), "leak", "{pattern}: {top:?}");
    assert!(
        error <= 0.25,
        "{pattern}: estimated {in_file:.1} B/cycle, true {true_bytes}"
    );
    let _ = std::fs::remove_dir_all(&o.out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    run_checks(&[
        ("global_list_sampled", || check(Pattern::GlobalList)),
        ("cycle_sampled", || check(Pattern::Cycle)),
        ("logger_registry_sampled", || check(Pattern::LoggerRegistry)),
    ])
}
