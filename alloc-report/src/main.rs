//! `alloc-report`: the command line over the `alloc_report` library.
//!
//! It uses the system allocator: it analyses files written by another
//! process, and measuring itself would tell nothing.

#![forbid(unsafe_code)]

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloc_report::analysis::{diff_in, site_survivor_matrix_in, survivor_matrix, ClassifyOptions};
use alloc_report::{
    read_path, read_snapshot_file, render, Analyzer, Report, SeriesReader, SiteRule, SnapshotFile,
    Symbolizer, WorkspaceFinder,
};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const EXAMPLES: &str = "\
A series directory holds 000000.json, 000001.json, ... as written by
SeriesWriter; a soak's output directory (alloc-soak --out, whose series/
holds them) is accepted wherever a series is; a FILE is one snapshot file.
Only regular files are read (a FIFO, a device or a directory where a file
belongs is an error, never a wait), each of at most 256 MiB (a larger one
is refused from its size). A series is the snapshots of one process run:
files numbered without a gap, of one run identity, whose epochs, cycles
and timestamps never go backwards; anything else is refused, naming the
file.

Raw call stacks (as alloc-core's snapshot() and the admin endpoint write
them) are symbolised here from the debug information of the binaries the
process had loaded, read from the paths in the snapshot and checked by GNU
build id; give --binary FILE when a binary was rebuilt, moved, or the
snapshots come from another machine.

Exit status: 0 success (check: no leak), 1 check found a leak, 2 bad usage
or input (one line on standard error naming the file and the problem).

Examples:
  alloc-report show target/soak/series/000007.json
  alloc-report show target/soak
  alloc-report diff target/soak/series/000001.json target/soak/series/000010.json
  alloc-report report target/soak
  alloc-report report target/soak --format html --out report.html
  alloc-report report target/soak --html report.html --json report.json
  alloc-report report target/soak --format pprof --out survivors.pb.gz
      then: pprof -top survivors.pb.gz
            pprof -diff_base old.pb.gz -top survivors.pb.gz
            pprof -tagfocus birth_epoch=100: -top survivors.pb.gz
  alloc-report report target/soak --format folded | inferno-flamegraph > survivors.svg
  alloc-report check target/soak --max-bytes-per-cycle 64
  alloc-report report target/soak --binary saved/demo-server";

/// Survivors, trends and leak verdicts from alloc-core snapshots.
#[derive(Parser)]
#[command(name = "alloc-report", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Symbolise with this file the module that has its GNU build id (a
    /// copy of the binary that ran, or its separate debug file); repeatable.
    /// Other modules are read from the paths the process loaded them from.
    #[arg(long, global = true, value_name = "FILE")]
    binary: Vec<PathBuf>,
    /// Which frame of a stack is its site: `own-code`, the innermost frame
    /// of the program's own code (not the standard library, not a crate
    /// from a registry, a git checkout or a vendor/ directory; the label
    /// adds the library call it made), or `first-non-std`, the first frame
    /// past the standard library whatever its crate (for soaking your own
    /// library).
    #[arg(long, global = true, value_name = "RULE", default_value = "own-code")]
    site_rule: SiteRule,
}

#[derive(Subcommand)]
enum Command {
    /// Print one snapshot file, or every snapshot of a series directory
    /// with its survivor matrix (whole heap, then the top call sites).
    Show {
        /// A snapshot file or a series directory.
        path: PathBuf,
        /// How many call sites' matrices to print for a series.
        #[arg(long, default_value_t = 5)]
        sites: usize,
    },
    /// Compare two snapshot files by birth epoch and by call site
    /// (appeared, freed, survived).
    Diff {
        /// The older snapshot file.
        old: PathBuf,
        /// The newer snapshot file.
        new: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
    },
    /// A verdict per call site (leaks first) and for the whole heap, with
    /// growth per cycle of the live heap, RSS and allocator memory.
    Report {
        /// A series directory (or one snapshot file).
        path: PathBuf,
        /// Output format of --out (standard output if no --out).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Where to write --format (`-` is standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Also write the JSON report here.
        #[arg(long, value_name = "OUT")]
        json: Option<PathBuf>,
        /// Also write the HTML report here.
        #[arg(long, value_name = "OUT")]
        html: Option<PathBuf>,
        /// Also write the pprof profile of the survivors here.
        #[arg(long, value_name = "OUT")]
        pprof: Option<PathBuf>,
        /// Also write folded stacks of the survivors here.
        #[arg(long, value_name = "OUT")]
        folded: Option<PathBuf>,
    },
    /// Like report, then exit 1 if the whole heap or a site leaks more than
    /// N bytes per cycle, else 0. A trend needs a series: a single FILE, or
    /// fewer than 6 snapshots, is never called a leak.
    Check {
        /// A series directory or one snapshot file.
        path: PathBuf,
        /// Leaks of at most this many bytes per cycle pass.
        #[arg(long, value_name = "N", default_value_t = 0.0, value_parser = parse_bytes)]
        max_bytes_per_cycle: f64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for a terminal.
    Text,
    /// JSON for machines.
    Json,
    /// A self-contained HTML page: sites with their stacks and source, charts, an icicle graph.
    Html,
    /// A gzipped pprof profile of the survivors (binary).
    Pprof,
    /// Folded stacks of the survivors, for flame-graph tools.
    Folded,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    /// A table for a terminal.
    Text,
    /// JSON for machines.
    Json,
}

fn parse_bytes(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{v:?} is not a number of bytes"))
}

/// A failure: a one-line message and exit status 2.
struct Fail(String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // Help and version go to standard output; a closed pipe is fine.
                let mut text = e.to_string();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                let _ = emit(text.as_bytes());
                return ExitCode::SUCCESS;
            }
            // Usage errors: one line, exit 2.
            let text = e.to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let line = line.join(" ");
            let line = line.trim_start_matches("error: ");
            eprintln!("alloc-report: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    match symbolizer(&cli.binary, cli.site_rule).and_then(|mut sym| {
        let code = run(cli.command, &mut sym)?;
        for unused in sym.unused_files() {
            eprintln!(
                "alloc-report: warning: --binary {} matched no module of the snapshots",
                unused.display()
            );
        }
        Ok(code)
    }) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("alloc-report: {}", msg.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

/// Writes to standard output; a closed pipe (`| head`) ends quietly.
fn emit(bytes: &[u8]) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Fail(e.to_string())),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `out` (`-` is standard output), atomically.
fn write_out(out: &Path, bytes: &[u8]) -> Result<(), Fail> {
    if out == Path::new("-") {
        emit(bytes)
    } else {
        alloc_report::format::write_atomic(out, bytes)
            .map_err(|e| Fail(format!("{}: {e}", out.display())))
    }
}

/// A symboliser that uses the `--binary` files and the `--site-rule`.
fn symbolizer(files: &[PathBuf], rule: SiteRule) -> Result<Symbolizer, Fail> {
    let mut sym = Symbolizer::new();
    sym.set_site_rule(rule);
    for f in files {
        sym.use_file(f)?;
    }
    Ok(sym)
}

/// Symbolises the raw stacks of `file` (read from `path`).
fn symbolize(
    sym: &mut Symbolizer,
    path: &Path,
    mut file: SnapshotFile,
) -> Result<SnapshotFile, Fail> {
    sym.symbolize(&mut file.snapshot)
        .map_err(|e| Fail(format!("{}: {e}", path.display())))?;
    Ok(file)
}

/// Reads one snapshot file and symbolises it.
fn read_file(sym: &mut Symbolizer, path: &Path) -> Result<SnapshotFile, Fail> {
    let file = read_snapshot_file(path)?;
    symbolize(sym, path, file)
}

/// Reads a series directory or one file, symbolised.
fn read_all(sym: &mut Symbolizer, path: &Path) -> Result<Vec<SnapshotFile>, Fail> {
    read_path(path)?
        .into_iter()
        .map(|f| symbolize(sym, path, f))
        .collect()
}

/// Reads and analyses `path` (a series directory or one file), one file
/// at a time, with a progress bar on a terminal for long series.
fn analyse(path: &Path, sym: &mut Symbolizer) -> Result<Report, Fail> {
    let opts = ClassifyOptions::default();
    let mut analyzer = Analyzer::new(&opts);
    let mut roots = WorkspaceFinder::new();
    let mut push = |file: SnapshotFile| {
        roots.scan(&file.snapshot);
        analyzer.push_in(&file, roots.workspaces());
    };
    if !path.is_dir() {
        push(read_file(sym, path)?);
        return Ok(analyzer.finish());
    }
    let reader = SeriesReader::open(path)?;
    let bar = if io::stderr().is_terminal() && reader.total() >= 20 {
        let bar = ProgressBar::with_draw_target(
            Some(reader.total() as u64),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} snapshots, {elapsed} (eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("reading");
        bar
    } else {
        ProgressBar::hidden()
    };
    for file in reader {
        push(symbolize(sym, path, file?)?);
        bar.inc(1);
    }
    bar.set_message("analysing");
    let report = analyzer.finish();
    bar.finish_and_clear();
    Ok(report)
}

fn render(report: &Report, format: Format) -> Vec<u8> {
    match format {
        Format::Text => render::report_text(report).into_bytes(),
        Format::Json => render::report_json(report).into_bytes(),
        Format::Html => render::report_html(report).into_bytes(),
        Format::Pprof => render::pprof(report),
        Format::Folded => render::folded(report).into_bytes(),
    }
}

fn run(command: Command, sym: &mut Symbolizer) -> Result<ExitCode, Fail> {
    match command {
        Command::Show { path, sites } => {
            if path.is_dir() {
                let series = read_all(sym, &path)?;
                let mut text = render::series_text(&survivor_matrix(&series), &series);
                let roots = WorkspaceFinder::of(series.iter().map(|f| &f.snapshot));
                let by_site = site_survivor_matrix_in(&series, &roots);
                let epochs: Vec<u32> = series.iter().map(|f| f.snapshot.epoch).collect();
                text.push_str(&render::site_matrix_text(&by_site, &epochs, sites));
                emit(text.as_bytes())?;
            } else {
                emit(render::snapshot_text(&read_file(sym, &path)?).as_bytes())?;
            }
        }
        Command::Diff { old, new, format } => {
            let old = read_file(sym, &old)?;
            let new = read_file(sym, &new)?;
            let roots = WorkspaceFinder::of([&old.snapshot, &new.snapshot]);
            let d = diff_in(&old.snapshot, &new.snapshot, &roots);
            let text = match format {
                DiffFormat::Text => render::diff_text(&d),
                DiffFormat::Json => {
                    let mut s = serde_json::to_string_pretty(&d)?;
                    s.push('\n');
                    s
                }
            };
            emit(text.as_bytes())?;
        }
        Command::Report {
            path,
            format,
            out,
            json,
            html,
            pprof,
            folded,
        } => {
            let report = analyse(&path, sym)?;
            let mut to_stdout = false;
            for (target, f) in [
                (&json, Format::Json),
                (&html, Format::Html),
                (&pprof, Format::Pprof),
                (&folded, Format::Folded),
            ] {
                if let Some(t) = target {
                    to_stdout |= t == Path::new("-");
                    write_out(t, &render(&report, f))?;
                }
            }
            match out {
                Some(o) => write_out(&o, &render(&report, format))?,
                None if to_stdout && format == Format::Text => {}
                None => {
                    if format == Format::Pprof && io::stdout().is_terminal() {
                        return Err(Fail(
                            "a pprof profile is binary: give --out FILE or redirect standard \
                             output"
                                .into(),
                        ));
                    }
                    emit(&render(&report, format))?;
                }
            }
        }
        Command::Check {
            path,
            max_bytes_per_cycle,
        } => {
            let report = analyse(&path, sym)?;
            emit(render::report_text(&report).as_bytes())?;
            if report.leaks(max_bytes_per_cycle) {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
