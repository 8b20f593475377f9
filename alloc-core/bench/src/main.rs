//! `alloc-bench overhead`: builds the child binaries, runs every workload
//! under every allocator in its own process, in interleaved rounds, and
//! writes the medians to `target/alloc-bench/overhead.json`, then prints a
//! table with ratios to plain jemalloc (the median of per-round ratios).
//!
//! Run it as `cargo run --release -p alloc-bench -- overhead` from anywhere
//! in the workspace; `alloc-bench overhead --help` lists the options.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use alloc_bench::workloads::Workload;
use serde::{Deserialize, Serialize};

/// Rounds below this many get a warning.
const MIN_GOOD_ROUNDS: u32 = 5;

/// dhat and every-allocation capture run this many times fewer operations
/// (per workload). `server` runs at full scale: a smaller run spends half its
/// connections filling the 10k live window (page faults of a 60 MiB heap),
/// which plain jemalloc, run at full scale, does not, and the ratio would be
/// of that warm-up rather than of the steady state.
fn dhat_divisor(w: Workload) -> f64 {
    match w {
        Workload::Server | Workload::ServerSoak => 1.0,
        _ => 50.0,
    }
}

/// One allocator: its report name, its child binary, and whether that binary
/// comes from the out-of-workspace plain-jemalloc package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Allocator {
    name: &'static str,
    bin: &'static str,
    plain: bool,
    /// Environment of the child (alloc-core's sampling mode).
    env: &'static [(&'static str, &'static str)],
    /// Cargo features of `alloc-bench` its binary is built with, in a build
    /// of its own (features unify across a build, so `jemalloc-stats` would
    /// otherwise compile jemalloc's statistics into every child).
    features: &'static str,
    /// Runs fewer operations (see [`dhat_divisor`]): a stack capture per
    /// allocation makes the full count take minutes.
    scaled_down: bool,
}

const ALLOCATORS: [Allocator; 8] = [
    Allocator {
        name: "jemalloc",
        bin: "bench-jemalloc-plain",
        plain: true,
        env: &[],
        features: "",
        scaled_down: false,
    },
    Allocator {
        name: "jemalloc-stats",
        bin: "bench-jemalloc-stats",
        plain: false,
        env: &[],
        features: "jemalloc-stats",
        scaled_down: false,
    },
    Allocator {
        name: "system",
        bin: "bench-system",
        plain: false,
        env: &[],
        features: "",
        scaled_down: false,
    },
    Allocator {
        name: "alloc-core",
        bin: "bench-alloc-core",
        plain: false,
        env: &[],
        features: "",
        scaled_down: false,
    },
    Allocator {
        name: "alloc-core-nosample",
        bin: "bench-alloc-core",
        plain: false,
        env: &[("ALLOC_CORE_SAMPLE", "off")],
        features: "",
        scaled_down: false,
    },
    Allocator {
        name: "alloc-core-all",
        bin: "bench-alloc-core",
        plain: false,
        env: &[("ALLOC_CORE_SAMPLE", "all")],
        features: "",
        scaled_down: true,
    },
    Allocator {
        name: "stats_alloc",
        bin: "bench-stats-alloc",
        plain: false,
        env: &[],
        features: "",
        scaled_down: false,
    },
    Allocator {
        name: "dhat",
        bin: "bench-dhat",
        plain: false,
        env: &[],
        features: "",
        scaled_down: true,
    },
];

const USAGE: &str = "\
usage: alloc-bench overhead [OPTIONS]

Runs each workload under each allocator in its own process, in interleaved
rounds, and writes the medians to target/alloc-bench/overhead.json.

options:
  --rounds N          rounds (default 7; at least 1, below 5 is noisy)
  --scale F           multiply every workload's operation count (default 1.0)
  --workloads a,b     among: single, mt2, xfree, server, single-soak,
                      server-soak (default: all)
  --allocators a,b    among: jemalloc, jemalloc-stats, system, alloc-core
                      (default: sampling every 1 MiB), alloc-core-nosample,
                      alloc-core-all (every allocation sampled), stats_alloc,
                      dhat (default: all)
  --no-plain          leave out `jemalloc` (plain, built outside the workspace,
                      which compiles jemalloc once more); ratios are then to
                      jemalloc-stats
  --out PATH          where to write the JSON
                      (default: <target dir>/alloc-bench/overhead.json)
  --bin-dir DIR       run the workspace child binaries found in DIR instead
                      of building them with `cargo build --release`
  -h, --help          this text
";

/// Options of `overhead`.
#[derive(Debug)]
struct Options {
    rounds: u32,
    scale: f64,
    workloads: Vec<Workload>,
    allocators: Vec<Allocator>,
    out: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
}

/// What `main` should do.
enum Parsed {
    Run(Options),
    Help,
}

fn parse_list<T: Copy + PartialEq>(
    flag: &str,
    value: &str,
    known: &[&str],
    lookup: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let v = lookup(item).ok_or_else(|| {
            format!(
                "{flag}: unknown name {item:?} (known: {})",
                known.join(", ")
            )
        })?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(format!("{flag} needs at least one name"));
    }
    Ok(out)
}

fn parse_args(args: Vec<OsString>) -> Result<Parsed, String> {
    let mut args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    if args.is_empty() {
        return Err("missing subcommand (the only one is `overhead`)".into());
    }
    let sub = args.remove(0);
    match sub.as_str() {
        "overhead" => {}
        "-h" | "--help" | "help" => return Ok(Parsed::Help),
        other => {
            return Err(format!(
                "unknown subcommand {other:?} (the only one is `overhead`)"
            ))
        }
    }
    let mut opts = Options {
        rounds: 7,
        scale: 1.0,
        workloads: Workload::ALL.to_vec(),
        allocators: ALLOCATORS.to_vec(),
        out: None,
        bin_dir: None,
    };
    let mut flags = Flags::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            flag.as_str(),
            "--rounds" | "--scale" | "--workloads" | "--allocators" | "--out" | "--bin-dir"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
            }
        } else {
            if inline.is_some() {
                return Err(format!("{flag} takes no value"));
            }
            String::new()
        };
        if set_option(&mut opts, &mut flags, &flag, value)? {
            return Ok(Parsed::Help);
        }
    }
    if flags.no_plain {
        if flags.allocators_given && opts.allocators.iter().any(|a| a.plain) {
            return Err("--no-plain contradicts --allocators jemalloc".into());
        }
        opts.allocators.retain(|a| !a.plain);
        if opts.allocators.is_empty() {
            return Err("--no-plain leaves no allocator to run".into());
        }
    }
    Ok(Parsed::Run(opts))
}

/// Flags that matter once all are read.
#[derive(Default)]
struct Flags {
    no_plain: bool,
    allocators_given: bool,
}

/// Sets the option `flag` (with its `value`, empty for a flag without
/// one); true for `--help`.
fn set_option(
    opts: &mut Options,
    flags: &mut Flags,
    flag: &str,
    value: String,
) -> Result<bool, String> {
    match flag {
        "-h" | "--help" => return Ok(true),
        "--rounds" => {
            opts.rounds = value
                .parse::<u32>()
                .ok()
                .filter(|&r| r >= 1)
                .ok_or_else(|| format!("--rounds wants a whole number >= 1, not {value:?}"))?;
        }
        "--scale" => {
            opts.scale = value
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("--scale wants a positive number, not {value:?}"))?;
        }
        "--workloads" => {
            let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
            opts.workloads = parse_list(flag, &value, &names, Workload::from_name)?;
        }
        "--allocators" => {
            let names: Vec<&str> = ALLOCATORS.iter().map(|a| a.name).collect();
            opts.allocators = parse_list(flag, &value, &names, |n| {
                ALLOCATORS.iter().copied().find(|a| a.name == n)
            })?;
            flags.allocators_given = true;
        }
        "--out" => opts.out = Some(PathBuf::from(value)),
        "--bin-dir" => opts.bin_dir = Some(PathBuf::from(value)),
        "--no-plain" => flags.no_plain = true,
        other if other.starts_with('-') => {
            return Err(format!("unknown option {other:?} (see --help)"))
        }
        other => return Err(format!("unexpected argument {other:?} (see --help)")),
    }
    Ok(false)
}

/// The line a child prints on stdout.
#[derive(Debug, Deserialize)]
struct ChildReport {
    workload: String,
    allocator: String,
    ns_per_op: f64,
    peak_rss_kib: u64,
    ops: u64,
}

/// One row of the JSON report (medians over rounds).
#[derive(Debug, Serialize)]
struct Row {
    workload: String,
    allocator: String,
    ns_per_op: f64,
    peak_rss_kib: u64,
    ops: u64,
    ns_per_op_ratio: Option<f64>,
    peak_rss_ratio: Option<f64>,
    ns_per_op_rounds: Vec<f64>,
    peak_rss_kib_rounds: Vec<u64>,
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report {
    rounds: u32,
    scale: f64,
    ratio_base: Option<String>,
    dhat_scale_note: String,
    cpus: usize,
    rows: Vec<Row>,
}

/// The workspace root (this package is `alloc-core/bench`).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent().and_then(Path::parent) {
        Some(root) if root.join("Cargo.toml").is_file() => root.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The workspace's target directory, from `cargo metadata`.
fn target_dir(root: &Path) -> Result<PathBuf, String> {
    let out = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    v.get("target_directory")
        .and_then(|t| t.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".into())
}

/// Runs `cargo build` with `args` (plus JSON messages) and returns the
/// executables it produced, by binary name.
fn cargo_build(root: &Path, args: &[&OsString]) -> Result<HashMap<String, PathBuf>, String> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    eprintln!("alloc-bench: running {:?}", cmd);
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build failed ({})", out.status));
    }
    let mut exes = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg.get("reason").and_then(|r| r.as_str()) != Some("compiler-artifact") {
            continue;
        }
        let (Some(exe), Some(name)) = (
            msg.get("executable").and_then(|e| e.as_str()),
            msg.pointer("/target/name").and_then(|n| n.as_str()),
        ) else {
            continue;
        };
        exes.insert(name.to_string(), PathBuf::from(exe));
    }
    Ok(exes)
}

/// Builds (or finds) every child binary needed; returns them by allocator.
fn child_binaries(
    opts: &Options,
    root: &Path,
    target: Option<&Path>,
) -> Result<HashMap<&'static str, PathBuf>, String> {
    let mut bins = HashMap::new();
    let workspace: Vec<&Allocator> = opts.allocators.iter().filter(|a| !a.plain).collect();
    if !workspace.is_empty() {
        let found: HashMap<String, PathBuf> = match &opts.bin_dir {
            Some(dir) => workspace
                .iter()
                .map(|a| {
                    let p = dir.join(format!("{}{}", a.bin, std::env::consts::EXE_SUFFIX));
                    (a.bin.to_string(), p)
                })
                .collect(),
            None => build_workspace_binaries(root, target, &workspace)?,
        };
        for a in workspace {
            let path = found
                .get(a.bin)
                .ok_or_else(|| format!("cargo built no binary {}", a.bin))?;
            if !path.is_file() {
                return Err(format!(
                    "child binary for {} not found at {}",
                    a.name,
                    path.display()
                ));
            }
            bins.insert(a.name, path.clone());
        }
    }
    if let Some(plain) = opts.allocators.iter().find(|a| a.plain) {
        let target = target.ok_or("no target directory for the plain-jemalloc build")?;
        bins.insert(plain.name, build_plain(root, target, plain)?);
    }
    Ok(bins)
}

/// Builds the workspace's children: binaries with features of their own
/// first, each copied out of the way (the plain build after them puts its
/// own binary of the same name in the same place), then the rest.
fn build_workspace_binaries(
    root: &Path,
    target: Option<&Path>,
    workspace: &[&Allocator],
) -> Result<HashMap<String, PathBuf>, String> {
    let mut found = HashMap::new();
    for a in workspace.iter().filter(|a| !a.features.is_empty()) {
        let args: Vec<OsString> = [
            "--release",
            "-p",
            "alloc-bench",
            "--bin",
            a.bin,
            "--features",
            a.features,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let built = cargo_build(root, &args.iter().collect::<Vec<_>>())?;
        let exe = built
            .get(a.bin)
            .ok_or_else(|| format!("cargo built no binary {}", a.bin))?;
        let target = target.ok_or("no target directory for a feature build")?;
        let dir = target.join("alloc-bench").join(a.features);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let to = dir.join(exe.file_name().unwrap_or(a.bin.as_ref()));
        std::fs::copy(exe, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", exe.display(), to.display()))?;
        found.insert(a.bin.to_string(), to);
    }
    let args: Vec<OsString> = ["--release", "-p", "alloc-bench", "--bins"]
        .iter()
        .map(OsString::from)
        .collect();
    let plain = cargo_build(root, &args.iter().collect::<Vec<_>>())?;
    for (bin, exe) in plain {
        found.entry(bin).or_insert(exe);
    }
    Ok(found)
}

/// Builds the out-of-workspace `plain-jemalloc` baseline into a target
/// directory of its own.
fn build_plain(root: &Path, target: &Path, plain: &Allocator) -> Result<PathBuf, String> {
    let manifest = root.join("alloc-core/bench/plain-jemalloc/Cargo.toml");
    let plain_target = target.join("alloc-bench").join("plain");
    let args: Vec<OsString> = vec![
        "--release".into(),
        "--manifest-path".into(),
        manifest.into_os_string(),
        "--target-dir".into(),
        plain_target.into_os_string(),
    ];
    let found = cargo_build(root, &args.iter().collect::<Vec<_>>())?;
    found
        .get(plain.bin)
        .cloned()
        .ok_or_else(|| format!("cargo built no binary {}", plain.bin))
}

/// Runs one child process and parses its JSON line.
fn run_child(
    exe: &Path,
    allocator: &Allocator,
    workload: Workload,
    scale: f64,
    out_dir: &Path,
) -> Result<ChildReport, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("--workload")
        .arg(workload.name())
        .arg("--scale")
        .arg(format!("{scale}"))
        .arg("--out-dir")
        .arg(out_dir)
        .envs(allocator.env.iter().copied())
        .stdin(Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fail = |why: String| {
        format!(
            "{} / {} failed: {why}\ncommand: {:?}\n--- child stderr ---\n{}--- end ---",
            workload.name(),
            allocator.name,
            cmd,
            stderr
        )
    };
    if !out.status.success() {
        return Err(fail(format!("exit status {}", out.status)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| fail(format!("no JSON line on stdout (stdout: {stdout:?})")))?;
    let report: ChildReport =
        serde_json::from_str(line).map_err(|e| fail(format!("bad JSON line {line:?}: {e}")))?;
    // Variants of one binary (alloc-core's sampling modes) report its name.
    let expected = allocator.name.split_once("-nosample").map_or(
        allocator
            .name
            .strip_suffix("-all")
            .unwrap_or(allocator.name),
        |(base, _)| base,
    );
    if report.workload != workload.name() || report.allocator != expected {
        return Err(fail(format!(
            "child reported {} / {}",
            report.workload, report.allocator
        )));
    }
    if !(report.ns_per_op.is_finite() && report.ns_per_op > 0.0) || report.peak_rss_kib == 0 {
        return Err(fail(format!("implausible figures in {line:?}")));
    }
    Ok(report)
}

fn median_f64(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn median_u64(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]).div_ceil(2)
    }
}

/// The median over rounds of `xs[i] / base[i]`: each round runs every
/// allocator back to back, so a machine that speeds up or slows down between
/// rounds moves both sides of a pair alike, where a ratio of two medians
/// could pair a fast round with a slow one.
fn paired_ratio(xs: &[f64], base: Option<&[f64]>) -> Option<f64> {
    let r: Vec<f64> = xs
        .iter()
        .zip(base?)
        .filter(|(_, b)| **b > 0.0)
        .map(|(x, b)| x / b)
        .collect();
    (!r.is_empty()).then(|| median_f64(&r))
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("({r:.0})"),
        Some(r) if r >= 10.0 => format!("({r:.1})"),
        Some(r) => format!("({r:.2})"),
        None => String::new(),
    }
}

/// The two tables printed at the end.
fn render_table(report: &Report, workloads: &[Workload], allocators: &[Allocator]) -> String {
    let cell = |w: Workload, a: &Allocator| {
        report
            .rows
            .iter()
            .find(|r| r.workload == w.name() && r.allocator == a.name)
    };
    let base = report.ratio_base.as_deref().unwrap_or("-");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nns per op (server: per connection), median of {} rounds, scale {}, (ratio to {base})",
        report.rounds, report.scale
    );
    let header = |s: &mut String| {
        let _ = write!(s, "{:<20}", "allocator");
        for w in workloads {
            let _ = write!(s, " {:>18}", w.name());
        }
        let _ = writeln!(s);
    };
    header(&mut s);
    for a in allocators {
        let _ = write!(s, "{:<20}", a.name);
        for &w in workloads {
            let text = cell(w, a)
                .map(|r| format!("{:.1} {}", r.ns_per_op, fmt_ratio(r.ns_per_op_ratio)))
                .unwrap_or_default();
            let _ = write!(s, " {text:>18}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\npeak RSS MiB (ratio to {base})");
    header(&mut s);
    for a in allocators {
        let _ = write!(s, "{:<20}", a.name);
        for &w in workloads {
            let text = cell(w, a)
                .map(|r| {
                    format!(
                        "{:.1} {}",
                        r.peak_rss_kib as f64 / 1024.0,
                        fmt_ratio(r.peak_rss_ratio)
                    )
                })
                .unwrap_or_default();
            let _ = write!(s, " {text:>18}");
        }
        let _ = writeln!(s);
    }
    if allocators.iter().any(|a| a.scaled_down) {
        let _ = writeln!(s, "\n{}", report.dhat_scale_note);
    }
    s
}

/// The overhead benchmark: the output's place, the children built, the
/// rounds run, the medians and ratios written and printed.
fn run(opts: Options) -> Result<(), String> {
    if opts.rounds < MIN_GOOD_ROUNDS {
        eprintln!(
            "alloc-bench: warning: --rounds {} is below {MIN_GOOD_ROUNDS}; medians of so few rounds are noisy",
            opts.rounds
        );
    }
    let root = workspace_root();
    let needs_target = opts.out.is_none()
        || opts
            .allocators
            .iter()
            .any(|a| a.plain || (!a.features.is_empty() && opts.bin_dir.is_none()));
    let target = if needs_target {
        Some(target_dir(&root)?)
    } else {
        None
    };
    let out_path = match (&opts.out, &target) {
        (Some(p), _) => p.clone(),
        (None, Some(t)) => t.join("alloc-bench").join("overhead.json"),
        (None, None) => unreachable!("the target directory is looked up when --out is absent"),
    };
    let out_dir = match out_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    // The child's --out-dir must not depend on its working directory.
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);

    let bins = child_binaries(&opts, &root, target.as_deref())?;
    let samples = run_rounds(&opts, &bins, &out_dir)?;
    let report = overhead_report(&opts, &samples);
    let mut json = serde_json::to_string_pretty(&report)
        .map_err(|e| format!("cannot serialise the report: {e}"))?;
    json.push('\n');
    alloc_snapshot::file::write_atomic(&out_path, json.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", out_path.display()))?;
    print!(
        "{}",
        render_table(&report, &opts.workloads, &opts.allocators)
    );
    println!("\nwrote {}", out_path.display());
    Ok(())
}

/// Each round's report of each workload and allocator.
type Samples = HashMap<(Workload, &'static str), Vec<ChildReport>>;

/// The rounds: in each, every workload under every allocator, interleaved,
/// one child process each (a line on stderr per child).
fn run_rounds(
    opts: &Options,
    bins: &HashMap<&'static str, PathBuf>,
    out_dir: &Path,
) -> Result<Samples, String> {
    let mut samples: Samples = HashMap::new();
    let total = opts.rounds as usize * opts.workloads.len() * opts.allocators.len();
    let mut done = 0;
    for round in 1..=opts.rounds {
        for &w in &opts.workloads {
            for a in &opts.allocators {
                let scale = if a.scaled_down {
                    opts.scale / dhat_divisor(w)
                } else {
                    opts.scale
                };
                let exe = &bins[a.name];
                let started = Instant::now();
                let report = run_child(exe, a, w, scale, out_dir)?;
                done += 1;
                eprintln!(
                    "[{done:>3}/{total}] round {round}/{}  {:<11} {:<19} {:>10.1} ns/op {:>9} KiB  ops {:>9}  ({:.1} s)",
                    opts.rounds,
                    w.name(),
                    a.name,
                    report.ns_per_op,
                    report.peak_rss_kib,
                    report.ops,
                    started.elapsed().as_secs_f64()
                );
                samples.entry((w, a.name)).or_default().push(report);
            }
        }
    }
    Ok(samples)
}

/// The report: per workload and allocator the medians over the rounds
/// and their ratios to jemalloc's (paired by round).
fn overhead_report(opts: &Options, samples: &Samples) -> Report {
    let ratio_base = opts
        .allocators
        .iter()
        .find(|a| a.name == "jemalloc")
        .or_else(|| opts.allocators.iter().find(|a| a.name == "jemalloc-stats"))
        .or(opts.allocators.first())
        .map(|a| a.name);
    let mut rows = Vec::new();
    for &w in &opts.workloads {
        let medians = |name: &str| {
            samples.get(&(w, name)).map(|v| {
                let ns: Vec<f64> = v.iter().map(|r| r.ns_per_op).collect();
                let rss: Vec<u64> = v.iter().map(|r| r.peak_rss_kib).collect();
                (median_f64(&ns), median_u64(&rss), ns, rss, v[0].ops)
            })
        };
        let base = ratio_base.and_then(medians);
        for a in &opts.allocators {
            let Some((ns, rss, ns_rounds, rss_rounds, ops)) = medians(a.name) else {
                continue;
            };
            rows.push(Row {
                workload: w.name().to_string(),
                allocator: a.name.to_string(),
                ns_per_op: ns,
                peak_rss_kib: rss,
                ops,
                ns_per_op_ratio: paired_ratio(&ns_rounds, base.as_ref().map(|b| &b.2[..])),
                peak_rss_ratio: paired_ratio(
                    &rss_rounds.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                    base.as_ref()
                        .map(|b| b.3.iter().map(|&v| v as f64).collect::<Vec<_>>())
                        .as_deref(),
                ),
                ns_per_op_rounds: ns_rounds,
                peak_rss_kib_rounds: rss_rounds,
            });
        }
    }
    Report {
        rounds: opts.rounds,
        scale: opts.scale,
        ratio_base: ratio_base.map(str::to_string),
        dhat_scale_note: format!(
            "dhat and alloc-core-all run 1/{} of the operations (server and server-soak: \
             all of them); their figures are per op, their peak RSS is of that smaller run",
            dhat_divisor(Workload::Single)
        ),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        rows,
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(opts)) => match run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("alloc-bench: error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("alloc-bench: error: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
