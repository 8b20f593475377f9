//! The `alloc-report` binary on input that is not a regular file of a
//! sane size: a FIFO (given to `show`, inside a series directory, or at a
//! module path a snapshot names), a device, a directory where a file is
//! expected, a file over the size bound, and a series of two runs. Each is
//! exit 2 with one line naming the file, at once: never a wait on a FIFO,
//! never a read of the big file. A FIFO where a workspace's `Cargo.toml` is
//! looked for is skipped. Every run is killed after 10 s (a hang
//! fails the test).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloc_report::format::{encode, MAX_FILE_BYTES};
use alloc_report::{SeriesWriter, SnapshotFile};
use common::{snap, temp_dir};

/// Runs the binary with `args`; its exit code, its standard error, and how
/// long it took. Killed (and the test failed) after 10 s.
fn run(args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_alloc-report"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("alloc-report {args:?} still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    println!(
        "alloc-report {args:?}: {:?} in {took:?}: {err}",
        out.status.code()
    );
    (out.status.code(), err, took)
}

/// Expects exit 2 with one line on standard error holding each of `says`.
fn expect_refused(args: &[&str], says: &[&str]) {
    let (code, err, _) = run(args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: {s:?} not in {err}");
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
}

fn write_series(dir: &Path, n: u32) {
    let mut w = SeriesWriter::create(dir).unwrap();
    for k in 0..n {
        w.append(&snap(k, &[(0, 64, 1)]), Some(u64::from(k)))
            .unwrap();
    }
}

#[test]
fn a_fifo_is_refused_at_once() {
    let dir = temp_dir("hostile-fifo");
    let fifo = dir.join("snapshot.json");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    expect_refused(&["show", f], &[f, "a FIFO"]);
    // In a series directory, under a series file's name.
    let series = dir.join("series");
    write_series(&series, 6);
    let member = series.join("000003.json");
    std::fs::remove_file(&member).unwrap();
    mkfifo(&member);
    for cmd in ["show", "report", "check"] {
        expect_refused(
            &[cmd, series.to_str().unwrap()],
            &[member.to_str().unwrap(), "a FIFO"],
        );
    }
    // A device, and a directory where a file is expected.
    expect_refused(&["show", "/dev/zero"], &["/dev/zero", "a device"]);
    expect_refused(
        &["diff", series.to_str().unwrap(), f],
        &[series.to_str().unwrap(), "a directory"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fifo_at_a_module_path_is_refused_at_once() {
    let dir = temp_dir("hostile-module");
    let fifo = dir.join("server");
    mkfifo(&fifo);
    let base = 0x5555_0000_0000u64;
    let s = common::raw_snapshot(
        base + 0x1234,
        fifo.to_str().unwrap(),
        base,
        base + 0x10000,
        Some("0a1b2c3d".into()),
    );
    let file = dir.join("raw.json");
    std::fs::write(&file, encode(&SnapshotFile::new(s))).unwrap();
    expect_refused(
        &["show", file.to_str().unwrap()],
        &[fifo.to_str().unwrap(), "a FIFO"],
    );
    // A --binary that is a FIFO, too.
    expect_refused(
        &[
            "show",
            file.to_str().unwrap(),
            "--binary",
            fifo.to_str().unwrap(),
        ],
        &[fifo.to_str().unwrap(), "a FIFO"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The directories above a site's source file are searched for the
/// workspace's `Cargo.toml`: a FIFO there is no workspace, never a wait.
#[test]
fn a_fifo_where_a_manifest_is_looked_for_is_skipped() {
    let dir = temp_dir("hostile-manifest");
    std::fs::create_dir_all(dir.join("ws/src")).unwrap();
    mkfifo(&dir.join("ws/Cargo.toml"));
    let source = dir.join("ws/src/lib.rs");
    let mut s = snap(3, &[(1, 64, 1)]);
    s.stacks = vec![common::stack(
        1,
        source.to_str().unwrap(),
        7,
        "ws::grow",
        &[],
    )];
    s.sites = vec![alloc_snapshot::SiteLive {
        stack: 1,
        epoch: 1,
        bytes: 64.0,
        blocks: 1.0,
        samples: 1,
    }];
    let file = dir.join("sites.json");
    std::fs::write(&file, encode(&SnapshotFile::new(s))).unwrap();
    let (code, err, _) = run(&["report", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_over_the_bound_is_refused_from_its_size() {
    let dir = temp_dir("hostile-big");
    // 1 GiB of zeros, sparse: reading it would take a second or more and,
    // read whole, 1 GiB of memory.
    let big = dir.join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    const { assert!(1 << 30 > MAX_FILE_BYTES) };
    let b = big.to_str().unwrap();
    expect_refused(&["show", b], &[b, "1073741824 bytes", "refused unread"]);
    // Inside a series too.
    let series = dir.join("series");
    write_series(&series, 4);
    std::fs::rename(&big, series.join("000004.json")).unwrap();
    expect_refused(
        &["report", series.to_str().unwrap()],
        &["000004.json", "refused unread"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_series_of_two_runs_is_refused() {
    let dir = temp_dir("hostile-runs");
    let mut w = SeriesWriter::create(&dir).unwrap();
    for k in 0..8u32 {
        let pid = if k % 2 == 0 { 100 } else { 200 };
        let s = alloc_snapshot::Snapshot {
            run: Some(alloc_snapshot::RunIdentity {
                pid,
                started_unix_ns: 0,
                id: format!("{pid:032x}"),
            }),
            ..snap(k, &[(0, 64, 1)])
        };
        w.append(&s, Some(u64::from(k))).unwrap();
    }
    let d = dir.to_str().unwrap();
    for cmd in ["show", "report", "check"] {
        expect_refused(
            &[cmd, d],
            &["000001.json", "another process run", "pid 200"],
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
