//! The pprof profile read by the real `pprof` (Go's `go tool pprof`):
//! `-top` shows the survivors by site, `-tagfocus` filters by birth epoch,
//! `-diff_base` subtracts an earlier profile.
//!
//! Needs Go (`apt-get install golang-go`). Without it the test says so and
//! passes; with `ALLOC_REPORT_REQUIRE_PPROF=1` a missing tool fails it.

mod common;

use std::path::Path;
use std::process::Command;

use alloc_report::{analyze, render, ClassifyOptions};
use common::{site, site_series, temp_dir};

fn go() -> Option<&'static str> {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("go")
}

/// A profile of a program that leaks 100 bytes per cycle at one site and
/// filled a 384-byte cache in its first 3 cycles, after `n` snapshots.
fn profile(dir: &Path, name: &str, n: u32) -> String {
    let series = site_series(
        n,
        &[
            site("src/conn.rs", 11, "conn::track", 100, |_, _| 1),
            site("src/cache.rs", 20, "cache::insert", 64, |_, e| {
                u64::from(e < 3) * 2
            }),
        ],
        0,
        1,
    );
    let path = dir.join(name);
    let report = analyze(&series, &ClassifyOptions::default());
    std::fs::write(&path, render::pprof(&report)).unwrap();
    path.to_str().unwrap().to_string()
}

fn pprof(go: &str, args: &[&str]) -> String {
    let out = Command::new(go)
        .args(["tool", "pprof", "-top", "-unit=B"])
        .args(args)
        .output()
        .expect("run go tool pprof");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pprof {args:?} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The flat bytes pprof shows for `function` (0 if it is not listed).
fn flat(top: &str, function: &str) -> u64 {
    top.lines()
        .find(|l| l.trim_end().ends_with(function))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.strip_suffix('B'))
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn go_pprof_reads_the_survivors() {
    let Some(go) = go() else {
        let required = std::env::var_os("ALLOC_REPORT_REQUIRE_PPROF").is_some();
        assert!(!required, "Go is not installed (apt-get install golang-go)");
        eprintln!("SKIPPED: Go is not installed; the profile was not read by pprof");
        return;
    };
    let dir = temp_dir("pprof-tool");
    let old = profile(&dir, "old.pb.gz", 20);
    let new = profile(&dir, "new.pb.gz", 30);

    // At epoch 29: 29 epochs x 100 bytes leaked, 3 x 2 x 64 in the cache.
    let top = pprof(go, &[&new]);
    assert_eq!(flat(&top, "conn::track"), 2900, "{top}");
    assert_eq!(flat(&top, "cache::insert"), 384, "{top}");
    assert!(top.contains("survivor_space"), "{top}");

    // Born in epoch 20 or later: 9 epochs of the leak, none of the cache.
    let top = pprof(go, &["-tagfocus=birth_epoch=20:", &new]);
    assert_eq!(flat(&top, "conn::track"), 900, "{top}");
    assert_eq!(flat(&top, "cache::insert"), 0, "{top}");

    // Against the profile 10 cycles earlier: 10 epochs more of the leak.
    let top = pprof(go, &["-diff_base", &old, &new]);
    assert_eq!(flat(&top, "conn::track"), 1000, "{top}");
    assert_eq!(flat(&top, "cache::insert"), 0, "{top}");

    // Blocks are the other sample type.
    let top = pprof(go, &["-sample_index=survivor_objects", &new]);
    assert!(top.contains("Type: survivor_objects"), "{top}");
    std::fs::remove_dir_all(&dir).unwrap();
}
