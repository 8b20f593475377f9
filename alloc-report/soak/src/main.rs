//! `alloc-soak`: soak a server that mounts the alloc-admin endpoint and
//! gate on the verdict. Exit codes: 0 no leak, 1 a leak (above
//! `--threshold`), 2 an error or bad arguments.
//!
//! The system allocator: the soak driver measures another process.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use alloc_soak::cli::{print_outcome, SoakArgs};
use clap::Parser;

/// Soak a server that mounts the alloc-admin endpoint: cycles in batches, a
/// snapshot at quiescence after each, the series, the report and a verdict.
/// Exit 0: no leak; 1: a leak; 2: an error.
#[derive(Debug, Parser)]
#[command(
    name = "alloc-soak",
    version,
    after_help = "Examples:
  alloc-soak --server 127.0.0.1:3000 --admin 127.0.0.1:3000 --admin-prefix /admin \\
      --http 'GET /hello/u{cycle}' --cycles 20000 --batch 1000 --concurrency 32 \\
      --requests-per-conn 10
  alloc-soak --server 127.0.0.1:7070 --admin 127.0.0.1:7171 \\
      --send 'set k{key} v{cycle}\\nquit\\n' --until 'bye\\n' --hold 100
  alloc-report report target/soak"
)]
struct Cli {
    #[command(flatten)]
    soak: SoakArgs,
}

fn main() -> ExitCode {
    let cli: Cli = match alloc_soak::cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let outcome = cli
        .soak
        .options()
        .and_then(|o| alloc_soak::soak::run(&o).map(|r| (r, o.out)));
    match outcome {
        Ok((r, out)) => {
            print_outcome(&r, &out);
            ExitCode::from(r.exit_code(cli.soak.threshold))
        }
        Err(e) => {
            eprintln!("alloc-soak: {e}");
            ExitCode::from(2)
        }
    }
}
