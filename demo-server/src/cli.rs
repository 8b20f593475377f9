//! The command line (clap). Exit codes: 0 done, 1 a run failed (or, for
//! `soak`, a leak), 2 bad arguments.

use crate::bench::{self, BenchOptions};
use crate::demo::{self, DemoOptions};
use crate::patterns::{Pattern, Variant};
use crate::soak;
use crate::ServeOptions;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A TCP server with classic leak patterns, leaky and fixed, measured by
/// alloc-core; its soak driver; the demo.
#[derive(Debug, Parser)]
#[command(name = "demo-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every pattern, leaky and fixed, each in a fresh server process,
    /// and print the verdicts.
    Demo {
        /// Measured cycles per run.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=10_000_000))]
        cycles: u64,
        /// Cycles per epoch (one snapshot each).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        batch: u64,
        /// Cycles in flight at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        concurrency: u64,
        /// Where the reports and summary.json go: one soak's directory per
        /// pattern and variant, an earlier demo's soak there replaced (its
        /// series and report files only; alloc-soak --replace).
        #[arg(long, default_value = "target/demo")]
        out: PathBuf,
    },
    /// Serve one pattern on loopback, with the admin endpoint.
    Serve(ServeOptions),
    /// Soak any server that mounts the alloc-admin endpoint and write its
    /// series and report (the `alloc-soak` tool). Exit 0: no leak; 1: a
    /// leak; 2: an error.
    Soak(Box<alloc_soak::cli::SoakArgs>),
    /// Throughput: the same server over alloc-core and over plain jemalloc,
    /// side by side (build with --release).
    Bench {
        /// Measured cycles per run.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(100..))]
        cycles: u64,
        /// Cycles per epoch.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// Cycles in flight.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        concurrency: u64,
        /// Rounds (each runs both builds).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        rounds: u64,
        /// The pattern the servers run.
        #[arg(long, value_enum, default_value_t = Pattern::GlobalList)]
        pattern: Pattern,
        /// The variant the servers run.
        #[arg(long, value_enum, default_value_t = Variant::Fixed)]
        variant: Variant,
        /// Where the runs and throughput.json go: one soak's directory per
        /// round and build, an earlier run's soak there replaced (its series
        /// and report files only; alloc-soak --replace).
        #[arg(long, default_value = "target/demo-bench")]
        out: PathBuf,
    },
}

/// Parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    let cli: Cli = match alloc_soak::cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Cmd::Demo { cycles, batch, .. } = &cli.command {
        if batch > cycles {
            eprintln!("error: --batch {batch} is larger than --cycles {cycles}\n\nUsage: demo-server demo [OPTIONS]");
            return ExitCode::from(2);
        }
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> Result<ExitCode, String> {
    match cmd {
        Cmd::Demo {
            cycles,
            batch,
            concurrency,
            out,
        } => demo::run(&DemoOptions {
            cycles,
            batch,
            concurrency: concurrency as usize,
            out,
        })
        .map(|_| ExitCode::SUCCESS),
        Cmd::Serve(options) => crate::serve(&options).map(|()| ExitCode::SUCCESS),
        Cmd::Soak(args) => {
            // An error is exit 2 here: 1 means a leak.
            let ran = args.options().and_then(|o| soak::run(&o).map(|r| (r, o)));
            let (r, o) = match ran {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("demo-server: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            alloc_soak::cli::print_outcome(&r, &o.out);
            if r.leaks(args.max_bytes_per_cycle) {
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench {
            cycles,
            batch,
            concurrency,
            rounds,
            pattern,
            variant,
            out,
        } => bench::run(&BenchOptions {
            cycles,
            batch,
            concurrency: concurrency as usize,
            rounds: rounds as usize,
            pattern,
            variant,
            out,
        })
        .map(|()| ExitCode::SUCCESS),
    }
}
