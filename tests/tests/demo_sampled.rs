//! Interval sampling names the leaking line in a real server: each leaky
//! pattern's server runs with call sites sampled about once every 8 KiB
//! (`ALLOC_CORE_SAMPLE=8KiB`, not every allocation as the demo does, with a
//! fixed seed that `ALLOC_CORE_SEED` overrides), is soaked for the demo's
//! default 2,000 cycles in batches of 100, and then:
//!
//! - the top call site is in the pattern's own source file and is `leak`;
//! - the sampled estimate of the bytes the pattern's file keeps from the
//!   soak's epochs (summed over every site in the file, whatever its
//!   verdict) is within 5 standard errors of the exact survivors of those
//!   epochs, a bound from the samples it rests on (`estimates`);
//! - the exact survivors per cycle are the pattern's documented figure.

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::estimates;
use demo_server::demo::{serve_args, ServerProcess};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{options, run_checks, server_role, soak, SERVER_ROLE};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// The mean sampling interval of the servers, in bytes.
const INTERVAL: u64 = 8 << 10;

fn check(pattern: Pattern) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let seed = estimates::seed_env();
    let server = ServerProcess::spawn(
        &exe,
        serve_args(pattern, Variant::Leaky),
        &[
            (SERVER_ROLE, Some("1")),
            ("ALLOC_CORE_SAMPLE", Some("8KiB")),
            ("ALLOC_CORE_SEED", Some(&seed)),
        ],
    )
    .expect("start the server child");
    let name = format!("{pattern}-sampled");
    let mut o = options(&server, &name, 2000, 100);
    o.warmup = 50;
    let r = soak(&o);
    let series = alloc_snapshot::read_series(&o.out.join("series")).expect("the soak's series");
    let (first, last) = (&series[0], &series[series.len() - 1]);
    let (s0, s) = (&first.snapshot, &last.snapshot);
    // Blocks born from the first snapshot's epoch up to the last one's (the
    // soak's measured cycles), still live at the end.
    let born = s0.epoch..s.epoch;
    let exact: u64 = s
        .epochs
        .iter()
        .filter(|e| born.contains(&e.first) && born.contains(&e.last))
        .map(|e| e.live_bytes)
        .sum();
    let exact_blocks: u64 = s
        .epochs
        .iter()
        .filter(|e| born.contains(&e.first) && born.contains(&e.last))
        .map(|e| e.live_blocks)
        .sum();
    let in_file = |l: &&alloc_snapshot::SiteLive| {
        born.contains(&l.epoch)
            && s.stack(l.stack)
                .is_some_and(|st| st.label().contains(pattern.source_file()))
    };
    let estimate: f64 = s.sites.iter().filter(in_file).map(|l| l.bytes).sum();
    let samples: u64 = s.sites.iter().filter(in_file).map(|l| l.samples).sum();
    let cycles = (last.cycles.unwrap_or(0) - first.cycles.unwrap_or(0)) as f64;
    let (true_bytes, true_blocks) = pattern.true_leak_per_connection().unwrap();
    let top = r
        .report
        .sites
        .iter()
        .filter(|v| v.site != alloc_report::analysis::ALL_SITES)
        .max_by(|a, b| a.bytes_per_cycle.total_cmp(&b.bytes_per_cycle))
        .unwrap_or_else(|| panic!("{pattern}: no sampled site"));
    println!(
        "{pattern}: top site {} ({}) at {:.1} B/cycle; {samples} samples in {}; \
         exact survivors {:.1} B and {:.2} blocks per cycle over {cycles} cycles",
        top.site,
        top.kind.as_str(),
        top.bytes_per_cycle,
        pattern.source_file(),
        exact as f64 / cycles,
        exact_blocks as f64 / cycles,
    );
    estimates::check(
        &format!("demo_sampled.{pattern}.bytes"),
        estimate,
        exact as f64,
        estimates::sd_bytes(INTERVAL, exact as f64),
    );
    assert!(cycles >= 1000.0, "{pattern}: {cycles} cycles measured");
    let per_cycle = exact as f64 / cycles;
    assert!(
        (per_cycle - true_bytes).abs() <= 0.10 * true_bytes,
        "{pattern}: exact survivors {per_cycle:.1} B/cycle, documented {true_bytes}"
    );
    let blocks = exact_blocks as f64 / cycles;
    assert!(
        (blocks - true_blocks).abs() <= 0.10 * true_blocks,
        "{pattern}: exact survivors {blocks:.2} blocks/cycle, documented {true_blocks}"
    );
    assert!(
        top.site.contains(pattern.source_file()),
        "{pattern}: top site {}",
        top.site
    );
    assert_eq!(top.kind.as_str(), "leak", "{pattern}: {top:?}");
    let _ = std::fs::remove_dir_all(&o.out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    estimates::fix_seed();
    run_checks(&[
        ("global_list_sampled", || check(Pattern::GlobalList)),
        ("cycle_sampled", || check(Pattern::Cycle)),
        ("logger_registry_sampled", || check(Pattern::LoggerRegistry)),
    ])
}
