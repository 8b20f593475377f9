//! `bench`: the throughput of the soak driver against the same server built
//! twice, once over alloc-core (`demo-server`, in its default configuration)
//! and once over plain jemalloc (`demo-server-jemalloc`), in interleaved
//! rounds, as cycles per second and their ratio.
//!
//! Both builds link the same jemalloc (tikv-jemallocator as the workspace
//! builds it: without statistics unless something in the build turns on
//! alloc-core's opt-in `jemalloc-stats`, since Cargo unifies features); the
//! only difference is the global allocator.

use crate::demo::FreshSoak;
use crate::patterns::{Pattern, Variant};
use crate::soak;
use std::fmt::Write as _;
use std::path::PathBuf;

/// What `bench` runs.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Measured cycles per run.
    pub cycles: u64,
    /// Cycles per epoch.
    pub batch: u64,
    /// Cycles in flight.
    pub concurrency: usize,
    /// Rounds; each runs both builds, the order alternating.
    pub rounds: usize,
    /// The pattern the servers run.
    pub pattern: Pattern,
    /// The variant the servers run.
    pub variant: Variant,
    /// Where the runs and `throughput.json` go.
    pub out: PathBuf,
}

/// Runs the benchmark, prints the table, writes `throughput.json`.
pub fn run(o: &BenchOptions) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let plain = me.with_file_name(format!(
        "demo-server-jemalloc{}",
        std::env::consts::EXE_SUFFIX
    ));
    if !plain.is_file() {
        return Err(format!(
            "{} is missing: build both binaries (cargo build --release -p demo-server)",
            plain.display()
        ));
    }
    let builds = [("jemalloc", plain), ("alloc-core", me)];
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut tool_max = 0u64;
    // The servers' default configuration: whatever sampling alloc-core
    // starts with, not the demo's.
    let shape = FreshSoak {
        cycles: o.cycles,
        batch: o.batch,
        concurrency: o.concurrency,
        warmup: Some(o.batch),
        progress: false,
    };
    for round in 0..o.rounds {
        for i in 0..2 {
            // Alternate which build goes first.
            let i = if round % 2 == 0 { i } else { 1 - i };
            let (label, exe) = &builds[i];
            let out = o.out.join(format!("round{round}-{label}"));
            let outcome = shape
                .run(exe, o.pattern, o.variant, out)
                .map_err(|e| format!("{label}, round {round}: {e}"))?;
            let rate = outcome.cycles_per_second();
            if *label == "alloc-core" {
                tool_max = tool_max.max(outcome.tool_memory.max);
            }
            eprintln!("round {round}: {label:<10} {rate:>9.0} cycles/s");
            rates[i].push(rate);
        }
    }
    let ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(a, j)| a / j).collect();
    let (jm, am, rm) = (median(&rates[0]), median(&rates[1]), median(&ratios));
    let mut t = format!(
        "{} cycles per run, batch {}, concurrency {}, {} rounds, pattern {} ({})\n",
        o.cycles, o.batch, o.concurrency, o.rounds, o.pattern, o.variant
    );
    let _ = writeln!(t, "{:<12} {:>12} {:>8}", "allocator", "cycles/s", "ratio");
    let _ = writeln!(t, "{:<12} {:>12.0} {:>8.2}", "jemalloc", jm, 1.0);
    let _ = writeln!(t, "{:<12} {:>12.0} {:>8.2}", "alloc-core", am, rm);
    let _ = writeln!(
        t,
        "(median of the rounds; the ratio is the median of per-round ratios)"
    );
    print!("{t}");
    let json = serde_json::json!({
        "cycles": o.cycles, "batch": o.batch, "concurrency": o.concurrency,
        "rounds": o.rounds, "pattern": o.pattern.name(), "variant": o.variant.name(),
        "jemalloc_cycles_per_second": rates[0], "alloc_core_cycles_per_second": rates[1],
        "ratios": ratios, "median_jemalloc": jm, "median_alloc_core": am, "median_ratio": rm,
        "alloc_core_tool_bytes_max": tool_max,
    });
    soak::write_files(
        &o.out,
        &[
            ("throughput.json", (json.to_string() + "\n").as_bytes()),
            ("throughput.txt", t.as_bytes()),
        ],
    )
    .map_err(|e| e.to_string())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
