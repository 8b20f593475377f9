//! The snapshot file format: exact round trips, and an error naming the file
//! and the problem for every damaged file (never a panic, never a partial
//! result).

mod common;

use std::fs;
use std::path::Path;

use alloc_report::format::{decode, encode, Problem, FORMAT_VERSION};
use alloc_report::{read_path, read_series, read_snapshot_file, SeriesWriter, SnapshotFile};
use common::{fold, snap, temp_dir, Rng};

fn sample() -> SnapshotFile {
    let s = snap(
        12,
        &[
            (0, 100, 1),
            (3, 4096, 2),
            (7, 48, 1),
            (11, 12, 3),
            (12, 999, 9),
        ],
    );
    SnapshotFile {
        cycles: Some(120),
        snapshot: fold(s, 6),
    }
}

/// Which problem a damaged file must give.
type IsExpected = fn(&Problem) -> bool;

/// Reads `bytes` from a file and expects an error naming that file.
fn expect_error(dir: &Path, name: &str, bytes: &[u8]) -> Problem {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    match read_snapshot_file(&path) {
        Ok(f) => panic!("{name}: read as {f:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
            assert!(msg.len() > path.display().to_string().len() + 5, "{msg}");
            e.problem
        }
    }
}

#[test]
fn round_trip_is_exact() {
    let dir = temp_dir("roundtrip");
    let file = sample();
    let path = dir.join("one.json");
    alloc_report::write_snapshot_file(&path, &file).unwrap();
    assert_eq!(read_snapshot_file(&path).unwrap(), file);
    assert_eq!(fs::read(&path).unwrap(), encode(&file));
    let no_cycles = SnapshotFile::new(snap(0, &[]));
    assert_eq!(decode(&encode(&no_cycles)).unwrap(), no_cycles);
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncation_at_every_byte_offset_is_an_error() {
    let dir = temp_dir("truncate");
    let bytes = encode(&sample());
    for cut in 0..bytes.len() {
        let p = expect_error(&dir, "cut.json", &bytes[..cut]);
        if cut == 0 {
            assert_eq!(p, Problem::Empty);
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_single_byte_flip_is_an_error() {
    let dir = temp_dir("flip");
    let bytes = encode(&sample());
    let mut rng = Rng(42);
    let mut checksum_caught = 0;
    for at in 0..bytes.len() {
        for _ in 0..4 {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 + rng.below(255) as u8;
            if let Problem::Checksum { .. } = expect_error(&dir, "flip.json", &damaged) {
                checksum_caught += 1;
            }
        }
    }
    // Changed digits still parse; only the checksum sees them.
    assert!(checksum_caught > 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_newer_version_is_refused_with_a_clear_message() {
    let dir = temp_dir("version");
    let text = String::from_utf8(encode(&sample())).unwrap();
    let newer = text.replace("\"version\":1", "\"version\":2");
    let p = expect_error(&dir, "newer.json", newer.as_bytes());
    assert_eq!(p, Problem::NewerVersion(2));
    assert!(p.to_string().contains("newer"), "{p}");
    assert!(p.to_string().contains(&FORMAT_VERSION.to_string()));
    // A newer file need not look like this version at all.
    let p = expect_error(
        &dir,
        "v9.json",
        b"{\"format\":\"alloc-snapshot\",\"version\":9,\"x\":[]}\n",
    );
    assert_eq!(p, Problem::NewerVersion(9));
    let zero = text.replace("\"version\":1", "\"version\":0");
    assert!(matches!(
        expect_error(&dir, "zero.json", zero.as_bytes()),
        Problem::BadVersion(_)
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn other_damage_is_named() {
    let dir = temp_dir("damage");
    let text = String::from_utf8(encode(&sample())).unwrap();
    let cases: Vec<(&str, String, IsExpected)> = vec![
        ("empty.json", String::new(), |p| *p == Problem::Empty),
        ("spaces.json", "   \n".into(), |p| {
            matches!(p, Problem::Truncated(_))
        }),
        ("garbage.json", "\u{0}\u{1}garbage".into(), |p| {
            matches!(p, Problem::Syntax(_))
        }),
        ("array.json", "[1,2]\n".into(), |p| {
            matches!(p, Problem::NotASnapshot(_))
        }),
        ("other.json", text.replace("alloc-snapshot", "pprof"), |p| {
            matches!(p, Problem::NotASnapshot(_))
        }),
        ("no-newline.json", text.trim_end().into(), |p| {
            matches!(p, Problem::Truncated(_))
        }),
        ("extra.json", text.replacen('{', "{\"extra\":1,", 1), |p| {
            matches!(p, Problem::Schema(_))
        }),
        (
            "null-rss.json",
            text.replace("\"rss_bytes\":8388608,", ""),
            |p| matches!(p, Problem::Schema(_)),
        ),
        (
            "changed.json",
            text.replace("\"live_bytes\":4096", "\"live_bytes\":4097"),
            |p| matches!(p, Problem::Checksum { .. }),
        ),
        (
            "reversed.json",
            {
                let mut f = sample();
                f.snapshot.epochs.swap(0, 1);
                String::from_utf8(encode(&f)).unwrap()
            },
            |p| matches!(p, Problem::Invalid(_)),
        ),
    ];
    for (name, content, ok) in cases {
        let p = expect_error(&dir, name, content.as_bytes());
        assert!(ok(&p), "{name}: {p:?}");
    }
    let missing = dir.join("missing.json");
    let e = read_snapshot_file(&missing).unwrap_err();
    assert!(matches!(e.problem, Problem::Io(_)) && e.path == missing);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_bad_file_fails_the_whole_series_and_is_named() {
    let dir = temp_dir("series");
    let mut w = SeriesWriter::create(&dir).unwrap();
    for k in 0..5 {
        w.append(&snap(k, &[(k, 10, 1)]), Some(u64::from(k)))
            .unwrap();
    }
    assert_eq!(read_series(&dir).unwrap().len(), 5);
    assert_eq!(read_path(&dir).unwrap().len(), 5);
    // Unrelated and temporary files are ignored.
    fs::write(dir.join("notes.txt"), "hi").unwrap();
    fs::write(dir.join(".000005.json.tmp-1"), "{").unwrap();
    assert_eq!(read_series(&dir).unwrap().len(), 5);
    // Numbering continues after the highest file.
    let p = SeriesWriter::create(&dir)
        .unwrap()
        .append(&snap(5, &[]), Some(5))
        .unwrap();
    assert!(p.ends_with("000005.json"), "{}", p.display());

    let bad = dir.join("000002.json");
    let good = fs::read(&bad).unwrap();
    fs::write(&bad, &good[..good.len() / 2]).unwrap();
    let e = read_series(&dir).unwrap_err();
    assert_eq!(e.path, bad);
    assert!(matches!(e.problem, Problem::Truncated(_)), "{e}");
    fs::write(&bad, &good).unwrap();

    // Going backwards in epochs is an error naming the later file.
    let back = dir.join("000003.json");
    let text = String::from_utf8(encode(&SnapshotFile {
        cycles: Some(3),
        snapshot: snap(1, &[]),
    }))
    .unwrap();
    fs::write(&back, text).unwrap();
    let e = read_series(&dir).unwrap_err();
    assert_eq!(e.path, back);
    assert!(matches!(e.problem, Problem::OutOfOrder(_)), "{e}");
    fs::remove_dir_all(&dir).unwrap();

    let empty = temp_dir("series-empty");
    let e = read_series(&empty).unwrap_err();
    assert_eq!(e.problem, Problem::EmptySeries);
    fs::remove_dir_all(&empty).unwrap();
}
