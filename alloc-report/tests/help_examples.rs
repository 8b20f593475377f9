//! Every example in `alloc-report --help` runs as printed, from a directory
//! laid out as the examples assume: `target/soak` is a soak's output
//! directory (its series in `series/`), `saved/demo-server` a binary.
//! A pipe's right-hand side (another tool) is left out; `then:` lines are
//! pprof's, tested in `pprof_tool.rs`.

mod common;

use std::process::Command;

use alloc_report::SeriesWriter;
use common::{model, temp_dir};

#[test]
fn every_help_example_runs_as_printed() {
    let exe = env!("CARGO_BIN_EXE_alloc-report");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();

    let dir = temp_dir("help-examples");
    let soak = dir.join("target/soak");
    let mut w = SeriesWriter::create(&soak.join("series")).unwrap();
    for f in model(20, |k, e| (u64::from(e < k) * 100, u64::from(e < k))) {
        w.append(&f.snapshot, None).unwrap();
    }
    std::fs::write(soak.join("report.txt"), "a soak's report\n").unwrap();
    std::fs::create_dir_all(dir.join("saved")).unwrap();
    std::fs::copy(exe, dir.join("saved/demo-server")).unwrap();

    let examples: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .filter_map(|l| l.trim().strip_prefix("alloc-report "))
        .collect();
    assert!(examples.len() >= 10, "{help}");
    for example in examples {
        let ours = example.split(" | ").next().unwrap();
        let args: Vec<&str> = ours.split_whitespace().collect();
        let out = Command::new(exe)
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let code = out.status.code();
        // `check` on this leaking series finds the leak (1); everything
        // else succeeds.
        let expected = if args[0] == "check" { 1 } else { 0 };
        assert_eq!(
            code,
            Some(expected),
            "alloc-report {example}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
