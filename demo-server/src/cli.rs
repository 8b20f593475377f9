//! The command line (clap). Exit codes: 0 done, 1 a run failed, 2 bad
//! arguments.

use crate::bench::{self, BenchOptions};
use crate::client::Script;
use crate::demo::{self, DemoOptions};
use crate::patterns::{Pattern, Variant};
use crate::soak::{self, SoakOptions};
use crate::ServeOptions;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
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
        /// Where the reports and summary.json go.
        #[arg(long, default_value = "target/demo")]
        out: PathBuf,
    },
    /// Serve one pattern on loopback, with the admin endpoint.
    Serve {
        /// The leak pattern.
        #[arg(long, value_enum)]
        pattern: Pattern,
        /// Leaky or fixed.
        #[arg(long, value_enum, default_value_t = Variant::Leaky)]
        variant: Variant,
        /// The line-protocol address.
        #[arg(long, default_value = "127.0.0.1:7070")]
        addr: SocketAddr,
        /// The admin endpoint's address.
        #[arg(long, default_value_t = alloc_admin::DEFAULT_ADDR)]
        admin: SocketAddr,
        /// Allow a non-loopback admin address (it has no authentication).
        #[arg(long)]
        allow_remote_admin: bool,
        /// Lower the descriptor limit to leave only N descriptors free once
        /// listening (to test surviving accept errors).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        spare_fds: Option<u64>,
    },
    /// Soak any server that mounts the alloc-admin endpoint and write its
    /// series and report.
    Soak {
        /// The server's line-protocol address.
        #[arg(long)]
        server: SocketAddr,
        /// The server's admin endpoint.
        #[arg(long)]
        admin: SocketAddr,
        /// Measured cycles.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
        cycles: u64,
        /// Cycles per epoch (one snapshot each).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// Cycles in flight at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        concurrency: u64,
        /// Unmeasured cycles before the first snapshot.
        #[arg(long, default_value_t = 100)]
        warmup: u64,
        /// Idle connections held open for the whole soak.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        hold: u64,
        /// Where the series and the report go.
        #[arg(long, default_value = "target/soak")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Symbolise the server's stacks with this file for the module of
        /// the same GNU build id (the server's binary was rebuilt or moved
        /// since it started); repeatable.
        #[arg(long, value_name = "FILE")]
        binary: Vec<PathBuf>,
        /// For a server that is not the demo's: bytes each cycle sends
        /// (`\n`, `\r`, `\t`, `\\` escapes), instead of the demo protocol.
        #[arg(long)]
        send: Option<String>,
        /// With --send: a cycle is done when the answer ends with this
        /// (same escapes); without it, when the server closes.
        #[arg(long, requires = "send")]
        until: Option<String>,
    },
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
        /// Where the runs and throughput.json go.
        #[arg(long, default_value = "target/demo-bench")]
        out: PathBuf,
    },
}

/// Parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with 0; errors to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Cmd::Demo { cycles, batch, .. } = &cli.command {
        if batch > cycles {
            eprintln!("error: --batch {batch} is larger than --cycles {cycles}\n\nUsage: demo-server demo [OPTIONS]");
            return ExitCode::from(2);
        }
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> Result<(), String> {
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
        .map(drop),
        Cmd::Serve {
            pattern,
            variant,
            addr,
            admin,
            allow_remote_admin,
            spare_fds,
        } => crate::serve(&ServeOptions {
            pattern,
            variant,
            addr,
            admin,
            allow_remote_admin,
            spare_fds,
        }),
        Cmd::Soak {
            server,
            admin,
            cycles,
            batch,
            concurrency,
            warmup,
            hold,
            out,
            no_progress,
            binary,
            send,
            until,
        } => {
            let mut o = SoakOptions::new(server, admin, out);
            if let Some(send) = send {
                o.script = Script::Custom {
                    request: unescape(&send),
                    until: until.as_deref().map(unescape).unwrap_or_default(),
                };
            }
            o.cycles = cycles;
            o.batch = batch;
            o.concurrency = concurrency as usize;
            o.warmup = warmup;
            o.hold = hold as usize;
            o.progress = !no_progress;
            o.binaries = binary;
            let r = soak::run(&o)?;
            print!("{}", alloc_report::render::report_text(&r.report));
            println!(
                "\n{} cycles in {:.2} s ({:.0} cycles/s, snapshots included), {} failed and retried",
                r.cycles,
                r.seconds,
                r.cycles_per_second(),
                r.failed
            );
            println!(
                "verdict (whole heap): {} {:.1} bytes/cycle {:.2} blocks/cycle; top site: {}",
                r.verdict.kind.as_str(),
                r.verdict.bytes_per_cycle,
                r.verdict.blocks_per_cycle,
                r.top_site.as_deref().unwrap_or("-")
            );
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            println!(
                "tool memory in the server: {:.2} MiB at the first snapshot, {:.2} MiB at the last, {:.2} MiB at most",
                mib(r.tool_memory.first),
                mib(r.tool_memory.last),
                mib(r.tool_memory.max)
            );
            if let (Some(a), Some(b)) = r.rss {
                println!(
                    "server RSS: {:.1} MiB at the first snapshot, {:.1} MiB at the last",
                    mib(a),
                    mib(b)
                );
            }
            println!("series and report under {}", o.out.display());
            Ok(())
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
        }),
    }
}

/// `\n`, `\r`, `\t` and `\\` to their bytes; other text as it is.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"get a\nquit\r\n"), b"get a\nquit\r\n");
        assert_eq!(unescape(r"a\\b\x\"), b"a\\b\\x\\");
        assert_eq!(unescape("é"), "é".as_bytes());
    }
}
