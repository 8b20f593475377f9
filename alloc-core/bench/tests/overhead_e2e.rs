//! End-to-end tests of `alloc-bench overhead`: the driver runs every child
//! binary (already built by `cargo test` for this package) at a tiny scale
//! and writes a JSON report with one row per workload x allocator.
//!
//! The plain-jemalloc baseline lives outside the workspace and compiles
//! jemalloc once more (3-4 minutes on 2 cores), so the default test
//! leaves it out with `--no-plain`; the ignored test builds and runs it
//! (`cargo test -p alloc-bench -- --ignored`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DRIVER: &str = env!("CARGO_BIN_EXE_alloc-bench");
const WORKLOADS: [&str; 6] = [
    "single",
    "mt2",
    "xfree",
    "server",
    "single-soak",
    "server-soak",
];

/// The directory holding the child binaries cargo built for this test run.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bench-system"))
        .parent()
        .expect("binary has a parent directory")
        .to_path_buf()
}

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = bin_dir()
        .join("alloc-bench-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn driver(args: &[&str]) -> Output {
    Command::new(DRIVER)
        .args(args)
        .output()
        .expect("run the alloc-bench driver")
}

/// Runs `overhead` for one round at scale 0.001 with children from
/// `bin_dir`, writing to `out`, plus `extra` arguments.
fn tiny_overhead(bin_dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "overhead",
        "--rounds",
        "1",
        "--scale",
        "0.001",
        "--bin-dir",
        bin_dir.to_str().expect("UTF-8 path"),
        "--out",
        out.to_str().expect("UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    driver(&args)
}

fn assert_rows(json_path: &Path, rounds: u64, allocators: &[&str]) {
    let text = std::fs::read_to_string(json_path).expect("report written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(v["rounds"].as_u64(), Some(rounds), "{text}");
    let rows = v["rows"].as_array().expect("rows array");
    assert_eq!(rows.len(), WORKLOADS.len() * allocators.len(), "{text}");
    for w in WORKLOADS {
        for a in allocators {
            let row = rows
                .iter()
                .find(|r| r["workload"] == *w && r["allocator"] == *a)
                .unwrap_or_else(|| panic!("no row for {w} / {a} in {text}"));
            let ns = row["ns_per_op"].as_f64().expect("ns_per_op is a number");
            let rss = row["peak_rss_kib"]
                .as_u64()
                .expect("peak_rss_kib is a number");
            assert!(ns > 0.0 && ns.is_finite(), "{w}/{a}: ns_per_op {ns}");
            assert!(rss > 0, "{w}/{a}: peak_rss_kib {rss}");
            assert!(row["ops"].as_u64().unwrap_or(0) > 0, "{w}/{a}: ops");
        }
    }
}

#[test]
fn overhead_at_tiny_scale_reports_every_workload_and_allocator() {
    let dir = scratch("e2e");
    let out = dir.join("overhead.json");
    let bins = bin_dir();
    let res = tiny_overhead(&bins, &out, &["--no-plain"]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "driver failed\n{stderr}\n{stdout}");
    // One progress line per child run, a warning about the single round.
    assert!(stderr.contains("below 5"), "{stderr}");
    assert_eq!(
        stderr.matches("ns/op").count(),
        WORKLOADS.len() * 7,
        "{stderr}"
    );
    assert!(stdout.contains("ratio to jemalloc-stats"), "{stdout}");
    assert_rows(
        &out,
        1,
        &[
            "jemalloc-stats",
            "system",
            "alloc-core",
            "alloc-core-nosample",
            "alloc-core-all",
            "stats_alloc",
            "dhat",
        ],
    );
    // dhat's profile goes next to the report, not to the working directory.
    assert!(dir.join("dhat-heap-single.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_are_rejected_with_a_message() {
    for (args, needle) in [
        (&["overhead", "--rounds", "0"][..], "--rounds"),
        (&["overhead", "--rounds", "many"][..], "--rounds"),
        (&["overhead", "--scale", "-1"][..], "--scale"),
        (&["overhead", "--workloads", "single,bogus"][..], "bogus"),
        (&["overhead", "--allocators", "tcmalloc"][..], "tcmalloc"),
        (&["overhead", "--frobnicate"][..], "--frobnicate"),
        (&["overhead", "--out"][..], "needs a value"),
        (
            &["overhead", "--no-plain", "--allocators", "jemalloc"][..],
            "contradicts",
        ),
        (&["nonsense"][..], "subcommand"),
        (&[][..], "subcommand"),
    ] {
        let res = driver(args);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let help = driver(&["overhead", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--rounds"));
}

#[test]
fn a_failing_child_fails_the_driver_with_its_stderr() {
    let dir = scratch("failing");
    // A "child binary" directory where bench-system is a script that fails.
    let fake = dir.join("bins");
    std::fs::create_dir_all(&fake).expect("mkdir");
    let script = fake.join("bench-system");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'boom: out of spoons' >&2\nexit 3\n",
    )
    .expect("write script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let out = dir.join("overhead.json");
    let res = tiny_overhead(&fake, &out, &["--allocators", "system"]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("out of spoons"), "{stderr}");
    assert!(!out.exists(), "no report after a failed child");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Builds the out-of-workspace plain-jemalloc child (compiles jemalloc
/// without `stats`, slow) and runs it next to jemalloc-stats.
#[test]
#[ignore = "compiles jemalloc once more outside the workspace (3-4 min on 2 cores)"]
fn overhead_with_plain_jemalloc_build() {
    let dir = scratch("plain");
    let out = dir.join("overhead.json");
    let bins = bin_dir();
    let res = tiny_overhead(&bins, &out, &["--allocators", "jemalloc,jemalloc-stats"]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "driver failed\n{stderr}\n{stdout}");
    assert!(stdout.contains("ratio to jemalloc)"), "{stdout}");
    assert_rows(&out, 1, &["jemalloc", "jemalloc-stats"]);
    let _ = std::fs::remove_dir_all(&dir);
}
