//! End to end: `demo-server demo` serves real loopback connections for every
//! pattern and reports the leaky variants as leaking an exact number of blocks
//! per cycle and the fixed variants as clean; bad flags exit 2.

use std::path::PathBuf;
use std::process::Command;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("demo-runs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn leaky_variants_leak_and_fixed_ones_do_not() {
    let out = out_dir("verdicts");
    let res = Command::new(env!("CARGO_BIN_EXE_demo-server"))
        .args(["demo", "--cycles", "300", "--batch", "30", "--out"])
        .arg(&out)
        .output()
        .expect("run demo-server");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary.json"))
            .expect("summary.json is JSON");
    let runs = summary["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4, "{summary}");
    for run in runs {
        let (pattern, variant) = (
            run["pattern"].as_str().unwrap(),
            run["variant"].as_str().unwrap(),
        );
        let blocks = run["blocks_per_cycle"].as_f64().unwrap();
        let bytes = run["bytes_per_cycle"].as_f64().unwrap();
        match variant {
            "leaky" => {
                assert_eq!(run["verdict"], "leak", "{pattern} leaky: {run}");
                // Whole blocks per connection, exactly (the registry vector's
                // growth only adds bytes).
                assert_eq!(blocks.fract(), 0.0, "{pattern}: {blocks} blocks per cycle");
                assert!(blocks >= 5.0 && bytes > 1000.0, "{pattern}: {run}");
            }
            "fixed" => {
                assert_eq!(run["verdict"], "ok", "{pattern} fixed: {run}");
                assert_eq!((blocks, bytes), (0.0, 0.0), "{pattern} fixed: {run}");
            }
            other => panic!("unknown variant {other}"),
        }
        let series = out.join(run["series"].as_str().unwrap());
        let files = std::fs::read_dir(&series).expect("snapshot series").count();
        assert_eq!(
            files,
            11,
            "{}: one snapshot before and one per batch",
            series.display()
        );
        assert!(out.join(run["report"].as_str().unwrap()).is_file(), "{run}");
    }
    assert!(stdout.contains("global-list"), "{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn absurd_flags_exit_2_with_a_message() {
    for args in [
        &["demo", "--cycles", "0"][..],
        &["demo", "--cycles", "lots"],
        &["demo", "--batch", "500", "--cycles", "100"],
        &["demo", "--out"],
        &["demo", "--frobnicate"],
        &["serve-forever"],
    ] {
        let res = Command::new(env!("CARGO_BIN_EXE_demo-server"))
            .args(args)
            .output()
            .expect("run demo-server");
        assert_eq!(res.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains("usage"), "{args:?}: {err}");
    }
}
