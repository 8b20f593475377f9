//! `demo-server`: a small TCP server with a classic leak and its fix,
//! measured by alloc-core's epoch accounting.
//!
//! `demo-server demo [--cycles N] [--out DIR]` serves real connections on
//! 127.0.0.1, runs connect/use/disconnect cycles against itself for each
//! pattern variant, closes an epoch after every batch, and prints how many
//! bytes born in closed epochs survive per cycle.
//!
//! This is the first, small version: patterns `global-list` and `cycle`, an
//! in-process server, and a simple slope for the verdict. The admin endpoint,
//! the soak driver and the report crate's verdicts come with later issues.

// The demo measures itself: alloc-core over jemalloc is its global allocator.
#[global_allocator]
static GLOBAL: alloc_core::EpochAlloc<alloc_core::Jemalloc> =
    alloc_core::EpochAlloc::new(alloc_core::Jemalloc);

mod patterns;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: demo-server demo [--cycles N] [--batch N] [--out DIR]

Runs every leak pattern, leaky and fixed, against a server on 127.0.0.1 and
prints bytes surviving per connect/disconnect cycle.

  --cycles N   cycles per run (default 2000, 10..=1000000)
  --batch N    cycles per epoch (default 100, 1..=cycles)
  --out DIR    where the per-run snapshots and report go (default target/demo)";

struct Options {
    cycles: u32,
    batch: u32,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        cycles: 2000,
        batch: 100,
        out: PathBuf::from("target/demo"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--cycles" => o.cycles = number(&value("--cycles")?, "--cycles", 10, 1_000_000)?,
            "--batch" => o.batch = number(&value("--batch")?, "--batch", 1, 1_000_000)?,
            "--out" => o.out = PathBuf::from(value("--out")?),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if o.batch > o.cycles {
        return Err(format!(
            "--batch {} is larger than --cycles {}",
            o.batch, o.cycles
        ));
    }
    Ok(o)
}

fn number(text: &str, name: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name} must be a whole number in {min}..={max}, not '{text}'"
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => match parse(&args[1..]) {
            Ok(o) => match patterns::run_all(o.cycles, o.batch, &o.out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("demo-server: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("demo-server: {e}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
