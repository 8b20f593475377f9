//! A series is one process run, in order, with no file missing: files of
//! two runs interleaved, a gap or a repeated number in the numbering, and
//! epochs, cycles or timestamps going backwards are each refused, naming
//! the file; a series of files without a run identity (format version 3
//! and older) still reads.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use alloc_report::format::{encode, Problem};
use alloc_report::{read_series, SeriesReader, SeriesWriter, SnapshotFile};
use alloc_snapshot::{RunIdentity, Snapshot};
use common::{snap, temp_dir};

fn run(pid: u32, digit: char) -> Option<RunIdentity> {
    Some(RunIdentity {
        pid,
        started_unix_ns: 1_700_000_000_000_000_000 + u64::from(pid),
        id: digit.to_string().repeat(32),
    })
}

/// Snapshot `k` of a run: epoch `k`, one survivor per closed epoch.
fn of_run(k: u32, run: &Option<RunIdentity>) -> Snapshot {
    let live: Vec<(u32, u64, u64)> = (0..k).map(|e| (e, 64, 1)).collect();
    Snapshot {
        run: run.clone(),
        ..snap(k, &live)
    }
}

fn write_run(dir: &Path, n: u32, run: &Option<RunIdentity>) {
    let mut w = SeriesWriter::create(dir).unwrap();
    for k in 0..n {
        w.append(&of_run(k, run), Some(u64::from(k) * 100)).unwrap();
    }
}

/// Reads `dir` and expects a failure at `file` whose problem `ok` accepts.
fn expect_refused(dir: &Path, file: &str, ok: fn(&Problem) -> bool) -> String {
    let e = read_series(dir).unwrap_err();
    assert_eq!(e.path, dir.join(file), "{e}");
    assert!(ok(&e.problem), "{e}");
    e.to_string()
}

fn path(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("{k:06}.json"))
}

#[test]
fn one_run_reads_and_files_of_two_runs_interleaved_are_refused() {
    let dir = temp_dir("runs");
    let (a, b) = (run(100, 'a'), run(200, 'b'));
    write_run(&dir, 8, &a);
    assert_eq!(read_series(&dir).unwrap().len(), 8);
    // The odd files from another process that went through the same
    // epochs and cycles (a fixed server soaked beside a leaky one).
    for k in (1..8).step_by(2) {
        let f = SnapshotFile {
            cycles: Some(u64::from(k) * 100),
            snapshot: of_run(k, &b),
        };
        fs::write(path(&dir, k), encode(&f)).unwrap();
    }
    let msg = expect_refused(&dir, "000001.json", |p| matches!(p, Problem::OtherRun(_)));
    assert!(
        msg.contains("pid 200 run bbbb") && msg.contains("000000.json has pid 100 run aaaa"),
        "{msg}"
    );
    // The same pid and start time with another random id is another run
    // (a pid reused).
    let mut c = a.clone();
    c.as_mut().unwrap().id = "c".repeat(32);
    for k in (1..8).step_by(2) {
        let f = SnapshotFile {
            cycles: Some(u64::from(k) * 100),
            snapshot: of_run(k, &c),
        };
        fs::write(path(&dir, k), encode(&f)).unwrap();
    }
    expect_refused(&dir, "000001.json", |p| matches!(p, Problem::OtherRun(_)));
    fs::remove_dir_all(&dir).unwrap();
    // A file without a run identity among files with one.
    let dir = temp_dir("runs-none");
    write_run(&dir, 4, &a);
    let f = SnapshotFile::new(of_run(4, &None));
    fs::write(path(&dir, 4), encode(&f)).unwrap();
    let msg = expect_refused(&dir, "000004.json", |p| matches!(p, Problem::OtherRun(_)));
    assert!(msg.contains("no run identity"), "{msg}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_without_a_run_identity_still_read_as_one_series() {
    let dir = temp_dir("no-run");
    write_run(&dir, 6, &None);
    // Version 3 files (no `run` field at all), as older tools wrote them.
    let v3 = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v3-modules.json"),
    )
    .unwrap();
    let only = temp_dir("no-run-v3");
    fs::write(only.join("000000.json"), &v3).unwrap();
    fs::write(only.join("000001.json"), &v3).unwrap();
    assert_eq!(read_series(&only).unwrap().len(), 2);
    assert_eq!(read_series(&dir).unwrap().len(), 6);
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&only).unwrap();
}

#[test]
fn a_gap_or_a_repeated_number_is_refused() {
    let dir = temp_dir("gap");
    write_run(&dir, 8, &run(7, 'd'));
    fs::remove_file(path(&dir, 4)).unwrap();
    let msg = expect_refused(&dir, "000005.json", |p| matches!(p, Problem::Numbering(_)));
    assert!(
        msg.contains("000004.json is missing") && msg.contains("000003.json"),
        "{msg}"
    );
    // The reader that streams a series refuses it before any file is read.
    assert!(SeriesReader::open(&dir).is_err());
    fs::remove_file(path(&dir, 5)).unwrap();
    let msg = expect_refused(&dir, "000006.json", |p| matches!(p, Problem::Numbering(_)));
    assert!(
        msg.contains("000004.json to 000005.json are missing"),
        "{msg}"
    );
    // A series may start past 0 (its first files removed), but not skip.
    for k in 0..4 {
        fs::remove_file(path(&dir, k)).unwrap();
    }
    assert_eq!(read_series(&dir).unwrap().len(), 2);
    // One number under two names.
    fs::copy(path(&dir, 6), dir.join("6.json")).unwrap();
    let msg = expect_refused(&dir, "6.json", |p| matches!(p, Problem::Numbering(_)));
    assert!(msg.contains("000006.json has the same number"), "{msg}");
    fs::remove_dir_all(&dir).unwrap();
}

/// Names of any width are ordered by number: a short name is no way
/// around the checks, and a number past `u64` is refused, not a panic.
#[test]
fn numbers_of_any_width_are_ordered_by_number() {
    let dir = temp_dir("widths");
    write_run(&dir, 4, &run(8, 'f'));
    fs::copy(path(&dir, 3), dir.join("5.json")).unwrap();
    let msg = expect_refused(&dir, "5.json", |p| matches!(p, Problem::Numbering(_)));
    assert!(msg.contains("000004.json is missing"), "{msg}");
    fs::rename(dir.join("5.json"), dir.join("0.json")).unwrap();
    let msg = expect_refused(&dir, "000000.json", |p| matches!(p, Problem::Numbering(_)));
    assert!(msg.contains("0.json has the same number"), "{msg}");
    fs::remove_file(dir.join("0.json")).unwrap();
    let huge = "99999999999999999999999.json";
    fs::copy(path(&dir, 3), dir.join(huge)).unwrap();
    let msg = expect_refused(&dir, huge, |p| matches!(p, Problem::Numbering(_)));
    assert!(msg.contains("too large"), "{msg}");
    fs::remove_file(dir.join(huge)).unwrap();
    // The writer refuses to go past the last number rather than wrap.
    fs::copy(path(&dir, 3), dir.join(format!("{}.json", u64::MAX))).unwrap();
    let e = SeriesWriter::create(&dir).unwrap_err();
    assert!(e.to_string().contains("no series number after"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn epochs_cycles_or_timestamps_going_backwards_are_refused() {
    let r = run(9, 'e');
    type Damage = fn(&mut SnapshotFile);
    let cases: [(&str, Damage, &str); 3] = [
        (
            "epoch",
            |f| {
                f.snapshot = Snapshot {
                    run: f.snapshot.run.clone(),
                    ..snap(2, &[])
                }
            },
            "epoch 2 is before",
        ),
        ("cycles", |f| f.cycles = Some(50), "cycles 50 is fewer"),
        (
            "timestamp",
            |f| f.snapshot.timestamp_unix_ns -= 10_000_000,
            "timestamp",
        ),
    ];
    for (name, damage, says) in cases {
        let dir = temp_dir(&format!("back-{name}"));
        write_run(&dir, 8, &r);
        let mut f = SnapshotFile {
            cycles: Some(500),
            snapshot: of_run(5, &r),
        };
        damage(&mut f);
        fs::write(path(&dir, 5), encode(&f)).unwrap();
        let msg = expect_refused(&dir, "000005.json", |p| matches!(p, Problem::OutOfOrder(_)));
        assert!(msg.contains(says), "{name}: {msg}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
