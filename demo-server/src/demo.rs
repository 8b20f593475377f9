//! `demo`: every pattern, leaky and fixed, each in a fresh server process
//! (this executable, `serve`), soaked by this process; one verdict table and
//! `summary.json`.

use crate::patterns::{Pattern, Variant};
use crate::soak::{self, SoakOptions};
use serde::Serialize;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What `demo` runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Measured cycles per run.
    pub cycles: u64,
    /// Cycles per epoch.
    pub batch: u64,
    /// Cycles in flight at once.
    pub concurrency: usize,
    /// Where the runs' series, reports and `summary.json` go.
    pub out: PathBuf,
}

/// One line of `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// The pattern's name.
    pub pattern: &'static str,
    /// `leaky` or `fixed`.
    pub variant: &'static str,
    /// `leak`, `plateau`, `warmup` or `ok`, for the whole heap.
    pub verdict: &'static str,
    /// Surviving bytes per cycle (Theil–Sen slope), whole heap.
    pub bytes_per_cycle: f64,
    /// Surviving blocks per cycle, whole heap.
    pub blocks_per_cycle: f64,
    /// The call site with the most surviving bytes per cycle.
    pub top_site: Option<String>,
    /// Why the top site's survivors are alive, when it is a leak: the
    /// retention scan of the soak's last snapshot (`static`, `thread`,
    /// `cycle`, `unreferenced`, ...), its share and path, root first.
    pub cause: Option<alloc_report::analysis::Cause>,
    /// The run's HTML report, relative to the output directory.
    pub report: String,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Measured cycles per run.
    pub cycles: u64,
    /// One entry per run.
    pub runs: Vec<RunSummary>,
}

/// A server running in a child process, killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Its line-protocol address.
    pub server: SocketAddr,
    /// Its admin endpoint.
    pub admin: SocketAddr,
}

impl ServerProcess {
    /// Starts `program` with `args` (which must make it `serve`) and `envs`
    /// set (`None`: removed), and reads the addresses it prints first
    /// (`listening ADDR admin ADDR`).
    pub fn spawn<I, S>(
        program: &Path,
        args: I,
        envs: &[(&str, Option<&str>)],
    ) -> Result<ServerProcess, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut line = String::new();
        let read = match child.stdout.take() {
            Some(out) => BufReader::new(out).read_line(&mut line),
            None => Ok(0),
        };
        let addrs = match read {
            Ok(_) => parse_listening(&line),
            Err(e) => Err(e.to_string()),
        };
        match addrs {
            Ok((server, admin)) => Ok(ServerProcess {
                child,
                server,
                admin,
            }),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                Err(format!(
                    "{} did not start serving ({e}; first line {line:?}; {status:?})",
                    program.display()
                ))
            }
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `listening ADDR admin ADDR`.
fn parse_listening(line: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["listening", s, "admin", a] => Ok((
            s.parse().map_err(|e| format!("{s}: {e}"))?,
            a.parse().map_err(|e| format!("{a}: {e}"))?,
        )),
        _ => Err("expected 'listening ADDR admin ADDR'".to_string()),
    }
}

/// The arguments that make this executable serve `pattern` in `variant` on
/// free loopback ports.
pub fn serve_args(pattern: Pattern, variant: Variant) -> Vec<String> {
    vec![
        "serve".into(),
        "--pattern".into(),
        pattern.name().into(),
        "--variant".into(),
        variant.name().into(),
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--admin".into(),
        "127.0.0.1:0".into(),
    ]
}

/// One soak of a fresh server process, as `demo` and `bench` run it.
#[derive(Clone, Debug)]
pub(crate) struct FreshSoak {
    /// Measured cycles.
    pub(crate) cycles: u64,
    /// Cycles per epoch.
    pub(crate) batch: u64,
    /// Cycles in flight.
    pub(crate) concurrency: usize,
    /// Warm-up cycles (`None`: the soak's default).
    pub(crate) warmup: Option<u64>,
    /// Whether to draw a progress bar.
    pub(crate) progress: bool,
}

impl FreshSoak {
    /// Soaks `pattern` (`variant`) in a fresh `exe serve` at the defaults
    /// (`ALLOC_CORE_SAMPLE` removed from its environment, whatever this
    /// process's says), writing into `out`; the server is stopped after.
    pub(crate) fn run(
        &self,
        exe: &Path,
        pattern: Pattern,
        variant: Variant,
        out: PathBuf,
    ) -> Result<soak::SoakOutcome, String> {
        let server = ServerProcess::spawn(
            exe,
            serve_args(pattern, variant),
            &[("ALLOC_CORE_SAMPLE", None)],
        )?;
        let mut opts = SoakOptions::new(server.server, server.admin, out);
        opts.cycles = self.cycles;
        opts.batch = self.batch;
        opts.concurrency = self.concurrency;
        if let Some(w) = self.warmup {
            opts.warmup = w;
        }
        opts.progress = self.progress;
        // The directory is the demo's own, one per pattern and variant: an
        // earlier run's soak there is replaced (its files only).
        opts.replace = true;
        soak::run(&opts).map_err(|e| e.to_string())
    }
}

/// Runs the demo; prints the table and writes the reports and the summary.
pub fn run(o: &DemoOptions) -> Result<Summary, String> {
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut runs = Vec::new();
    let shape = FreshSoak {
        cycles: o.cycles,
        batch: o.batch,
        concurrency: o.concurrency,
        warmup: None,
        progress: true,
    };
    for pattern in Pattern::ALL {
        for &variant in pattern.variants() {
            eprintln!("{pattern} ({variant}): {} cycles", o.cycles);
            let dir_name = format!("{pattern}-{variant}");
            let outcome = shape
                .run(&exe, pattern, variant, o.out.join(&dir_name))
                .map_err(|e| format!("{pattern} ({variant}): {e}"))?;
            let v = &outcome.verdict;
            let cause = outcome
                .report
                .sites
                .iter()
                .find(|s| Some(&s.site) == outcome.top_site.as_ref())
                .and_then(|s| s.cause.clone());
            runs.push(RunSummary {
                pattern: pattern.name(),
                variant: variant.name(),
                verdict: v.kind.as_str(),
                bytes_per_cycle: v.bytes_per_cycle,
                blocks_per_cycle: v.blocks_per_cycle,
                top_site: outcome.top_site.as_deref().map(workspace_relative),
                cause,
                report: format!("{dir_name}/report.html"),
            });
        }
    }
    let summary = Summary {
        cycles: o.cycles,
        runs,
    };
    let table = table(&summary);
    print!("{table}");
    let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n";
    soak::write_files(
        &o.out,
        &[
            ("summary.json", json.as_bytes()),
            ("report.txt", table.as_bytes()),
        ],
    )
    .map_err(|e| e.to_string())?;
    println!(
        "\nreports under {}: summary.json, report.txt, <pattern>-<variant>/report.{{txt,json,html}} and series/",
        o.out.display()
    );
    Ok(summary)
}

/// A site label with this workspace's root taken off its path
/// (`demo-server/src/patterns/cycle.rs:89 ...`), as in the summary.
pub fn workspace_relative(label: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("");
    match label.strip_prefix(root) {
        Some(rest) if !root.is_empty() => rest.trim_start_matches('/').to_string(),
        _ => label.to_string(),
    }
}

/// The verdict table.
pub fn table(s: &Summary) -> String {
    let mut t = format!(
        "{:<16} {:<7} {:>8} {:>12} {:>13}  {:<17} {}\n",
        "pattern", "variant", "verdict", "bytes/cycle", "blocks/cycle", "cause", "top site"
    );
    for r in &s.runs {
        let cause = r.cause.as_ref().map_or_else(
            || "-".to_string(),
            |c| format!("{} {:.0}%", c.kind.as_str(), c.share * 100.0),
        );
        let _ = writeln!(
            t,
            "{:<16} {:<7} {:>8} {:>12.1} {:>13.2}  {:<17} {}",
            r.pattern,
            r.variant,
            r.verdict,
            r.bytes_per_cycle,
            r.blocks_per_cycle,
            cause,
            r.top_site.as_deref().unwrap_or("-")
        );
    }
    for r in s.runs.iter().filter(|r| r.cause.is_some()) {
        if let Some(c) = &r.cause {
            let _ = writeln!(t, "{} ({}): {}", r.pattern, r.variant, c.line());
        }
    }
    t
}
