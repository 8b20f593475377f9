//! `alloc-report`: the command line over the `alloc_report` library.
//!
//! It uses the system allocator: it analyses files written by another
//! process, and measuring itself would tell nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloc_report::analysis::{analyze, diff, survivor_matrix, ClassifyOptions};
use alloc_report::{read_path, read_snapshot_file, render};

const HELP: &str = "\
alloc-report: survivors, trends and leak verdicts from alloc-core snapshots

USAGE:
    alloc-report show FILE|DIR
    alloc-report diff OLD NEW
    alloc-report report DIR [--json OUT] [--html OUT] [--folded OUT]
    alloc-report check DIR|FILE [--max-bytes-per-cycle N]

COMMANDS:
    show     print one snapshot file, or every snapshot of a series directory
             and its survivor matrix
    diff     compare two snapshot files by birth epoch (appeared/freed/survived)
    report   verdict per site (leaking sites first), with growth per cycle of
             the live heap, RSS and allocator resident memory; OUT may be `-`
             for standard output
    check    like report, then exit 1 if a site is a leak of more than N bytes
             per cycle (default 0), else 0; a trend needs a series (a single
             FILE, or fewer than 6 snapshots, is never called a leak)

A series directory holds 000000.json, 000001.json, ... as written by the
library's SeriesWriter (the soak driver).

EXIT STATUS:
    0 success (check: no leak), 1 check found a leak, 2 bad usage or input

EXAMPLES:
    alloc-report show target/soak/000007.json
    alloc-report diff target/soak/000001.json target/soak/000050.json
    alloc-report report target/soak --html report.html --json report.json
    alloc-report check target/soak --max-bytes-per-cycle 64
";

/// A failure: a one-line message and exit status 2.
struct Fail(String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("alloc-report: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Writes to standard output; a closed pipe (`| head`) ends quietly.
fn emit(text: &str) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Fail(e.to_string())),
        _ => Ok(()),
    }
}

/// Writes `text` to `out` (`-` is standard output).
fn write_out(out: &Path, text: &str) -> Result<(), Fail> {
    if out == Path::new("-") {
        emit(text)
    } else {
        std::fs::write(out, text).map_err(|e| Fail(format!("{}: {e}", out.display())))
    }
}

/// Positional arguments and `--flag VALUE` options.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, String)>,
}

fn parse(args: &[String], known: &[&str]) -> Result<Args, Fail> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = it
                        .next()
                        .ok_or_else(|| Fail(format!("--{name} needs a value")))?;
                    (name.to_string(), v.clone())
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(Fail(format!("unknown option --{name} (see --help)")));
            }
            options.push((name, value));
        } else {
            positional.push(a.clone());
        }
    }
    Ok(Args {
        positional,
        options,
    })
}

impl Args {
    fn one(&self, what: &str) -> Result<PathBuf, Fail> {
        match self.positional.as_slice() {
            [p] => Ok(PathBuf::from(p)),
            _ => Err(Fail(format!("expected one {what} (see --help)"))),
        }
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn run(args: &[String]) -> Result<ExitCode, Fail> {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{HELP}");
        return Ok(ExitCode::from(2));
    };
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        emit(HELP)?;
        return Ok(ExitCode::SUCCESS);
    }
    let opts = ClassifyOptions::default();
    match cmd.as_str() {
        "--help" | "-h" | "help" => emit(HELP)?,
        "show" => {
            let path = parse(rest, &[])?.one("FILE or DIR")?;
            if path.is_dir() {
                let series = read_path(&path)?;
                emit(&render::series_text(&survivor_matrix(&series), &series))?;
            } else {
                emit(&render::snapshot_text(&read_snapshot_file(&path)?))?;
            }
        }
        "diff" => {
            let a = parse(rest, &[])?;
            let [old, new] = a.positional.as_slice() else {
                return Err(Fail("diff expects OLD and NEW files (see --help)".into()));
            };
            let old = read_snapshot_file(Path::new(old))?;
            let new = read_snapshot_file(Path::new(new))?;
            emit(&render::diff_text(&diff(&old.snapshot, &new.snapshot)))?;
        }
        "report" => {
            let a = parse(rest, &["json", "html", "folded"])?;
            let report = analyze(&read_path(&a.one("DIR")?)?, &opts);
            let mut to_stdout = false;
            for (name, render) in [
                ("json", render::report_json as fn(&_) -> String),
                ("html", render::report_html),
                ("folded", render::folded),
            ] {
                if let Some(out) = a.option(name) {
                    to_stdout |= out == "-";
                    write_out(Path::new(out), &render(&report))?;
                }
            }
            if !to_stdout {
                emit(&render::report_text(&report))?;
            }
        }
        "check" => {
            let a = parse(rest, &["max-bytes-per-cycle"])?;
            let max = match a.option("max-bytes-per-cycle") {
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        Fail(format!(
                            "--max-bytes-per-cycle: {v:?} is not a number of bytes"
                        ))
                    })?,
                None => 0.0,
            };
            let report = analyze(&read_path(&a.one("DIR or FILE")?)?, &opts);
            emit(&render::report_text(&report))?;
            if report.leaks(max) {
                return Ok(ExitCode::from(1));
            }
        }
        other => return Err(Fail(format!("unknown command {other:?} (see --help)"))),
    }
    Ok(ExitCode::SUCCESS)
}
