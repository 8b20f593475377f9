//! The snapshot file format: exact round trips, and an error naming the file
//! and the problem for every damaged file (never a panic, never a partial
//! result).

mod common;

use std::fs;
use std::path::Path;

use alloc_report::format::{decode, encode, Problem, FORMAT_VERSION};
use alloc_report::{read_path, read_series, read_snapshot_file, SeriesWriter, SnapshotFile};
use alloc_snapshot::{AddrRange, Bucket, Histogram, Module, RunIdentity, SiteLive};
use common::{fold, snap, stack, temp_dir, Rng};

fn sample() -> SnapshotFile {
    let mut s = snap(
        12,
        &[
            (0, 100, 1),
            (3, 4096, 2),
            (7, 48, 1),
            (11, 12, 3),
            (12, 999, 9),
        ],
    );
    // Call-site data, so that damage to it is covered too.
    s.stacks = vec![
        stack(1, "src/conn.rs", 42, "conn::track", &["main"]),
        stack(3, "src/cache.rs", 7, "cache::insert", &[]),
    ];
    s.stacks[1].frames[0].file = None;
    s.sites = vec![
        SiteLive {
            stack: 1,
            epoch: 3,
            bytes: 4096.5,
            blocks: 2.25,
            samples: 2,
        },
        SiteLive {
            stack: 1,
            epoch: 11,
            bytes: 12.0,
            blocks: 1.0,
            samples: 1,
        },
        SiteLive {
            stack: 3,
            epoch: 7,
            bytes: 48.0,
            blocks: 1.0,
            samples: 1,
        },
    ];
    s.sampling.mode = alloc_snapshot::SampleMode::Interval(16384);
    s.sampling.live_sampled = 4;
    s.histograms.alloc_size = Histogram {
        buckets: vec![
            Bucket {
                low: 8,
                high: 15,
                count: 30,
            },
            Bucket {
                low: 4096,
                high: 4096,
                count: 2,
            },
        ],
    };
    // Loaded modules, so that damage to them is covered too.
    s.modules = vec![
        Module {
            path: "/srv/bin/server".into(),
            base: 0x5555_5555_4000,
            ranges: vec![
                AddrRange {
                    start: 0x5555_5556_0000,
                    end: 0x5555_5570_0000,
                },
                AddrRange {
                    start: 0x5555_5580_0000,
                    end: 0x5555_5581_0000,
                },
            ],
            build_id: Some("0a1b2c3d4e5f60718293a4b5c6d7e8f901234567".into()),
        },
        Module {
            path: "/lib/x86_64-linux-gnu/libc.so.6".into(),
            base: 0x7f00_0000_0000,
            ranges: vec![AddrRange {
                start: 0x7f00_0002_8000,
                end: 0x7f00_001b_d000,
            }],
            build_id: None,
        },
    ];
    // The run, so that damage to it is covered too.
    s.run = Some(RunIdentity {
        pid: 4242,
        started_unix_ns: 1_699_999_990_000_000_000,
        id: "0123456789abcdef0123456789abcdef".into(),
    });
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
    let mut rng = Rng::with_seed(42);
    let mut checksum_caught = 0;
    for at in 0..bytes.len() {
        for _ in 0..4 {
            let mut damaged = bytes.clone();
            damaged[at] ^= rng.u8(1..);
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
    assert!(text.contains("\"version\":5,"), "{text}");
    let newer = text.replace("\"version\":5", "\"version\":6");
    let p = expect_error(&dir, "newer.json", newer.as_bytes());
    assert_eq!(p, Problem::NewerVersion(6));
    assert!(p.to_string().contains("newer"), "{p}");
    assert!(p.to_string().contains(&FORMAT_VERSION.to_string()));
    // A newer file need not look like this version at all.
    let p = expect_error(
        &dir,
        "v9.json",
        b"{\"format\":\"alloc-snapshot\",\"version\":9,\"x\":[]}\n",
    );
    assert_eq!(p, Problem::NewerVersion(9));
    let zero = text.replace("\"version\":5", "\"version\":0");
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

/// A version 1 file as the first tool wrote it (no call-site fields), and
/// one from the builds in between (the call-site fields present, empty).
/// Both were written by an independent implementation of the format
/// (`tests/data/`), checksum included.
#[test]
fn version_1_files_still_read() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for name in ["v1-original.json", "v1-interim.json"] {
        let path = data.join(name);
        let f = read_snapshot_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.snapshot.epoch, 7, "{name}");
        assert_eq!(f.snapshot.totals.live_bytes, 4640);
        assert_eq!(f.snapshot.epochs.len(), 3);
        assert!(f.snapshot.sites.is_empty() && f.snapshot.stacks.is_empty());
        assert_eq!(f.snapshot.sampling, alloc_snapshot::Sampling::default());
        assert!(f.snapshot.modules.is_empty());
        // Written back, it is a version 5 file that reads the same.
        let again = decode(&encode(&f)).unwrap();
        assert_eq!(again, f);
    }
    let original = fs::read_to_string(data.join("v1-original.json")).unwrap();
    let interim = fs::read_to_string(data.join("v1-interim.json")).unwrap();
    let dir = temp_dir("v1");
    // A changed digit is caught by the version 1 checksum.
    let changed = original.replace("\"live_bytes\":288", "\"live_bytes\":289");
    assert!(matches!(
        expect_error(&dir, "v1-changed.json", changed.as_bytes()),
        Problem::Checksum { .. }
    ));
    // Some call-site fields but not all: refused, and the message says so.
    let partial = interim.replace("\"sites\":[],", "");
    let p = expect_error(&dir, "v1-partial.json", partial.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("snapshot.sites") && m.contains("all or none")),
        "{p}"
    );
    // Truncation anywhere in a version 1 file is an error too.
    for cut in 0..original.len() {
        expect_error(&dir, "v1-cut.json", &original.as_bytes()[..cut]);
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A version 2 file (call-site data, no `modules`), written by an
/// independent implementation of the format (`tests/data/v2-sites.json`,
/// checksum included), reads with no modules; one that has `modules` is
/// refused.
#[test]
fn version_2_files_still_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2-sites.json");
    let f = read_snapshot_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.cycles, Some(70));
    assert_eq!(f.snapshot.stacks.len(), 2);
    assert_eq!(f.snapshot.stacks[0].label(), "src/conn.rs:42 conn::track");
    assert_eq!(f.snapshot.sites.len(), 2);
    assert!(f.snapshot.modules.is_empty());
    assert_eq!(decode(&encode(&f)).unwrap(), f);
    let text = fs::read_to_string(&path).unwrap();
    let dir = temp_dir("v2");
    let changed = text.replace("\"line\":42", "\"line\":43");
    assert!(matches!(
        expect_error(&dir, "v2-changed.json", changed.as_bytes()),
        Problem::Checksum { .. }
    ));
    let with_modules = text.replace("}},\"checksum\"", "},\"modules\":[]},\"checksum\"");
    assert_ne!(with_modules, text);
    let p = expect_error(&dir, "v2-modules.json", with_modules.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("unknown field snapshot.modules")),
        "{p}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// FNV-1a 64 of `bytes`, as the format's checksum writes it (an
/// independent implementation, for files written by hand here).
fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// `text` (a whole file) with its checksum recomputed over its body.
fn with_checksum(text: &str) -> String {
    let at = text.rfind(",\"checksum\"").unwrap();
    let body = format!("{}}}", &text[..at]);
    format!(
        "{},\"checksum\":\"{}\"}}\n",
        &text[..at],
        fnv1a64(body.as_bytes())
    )
}

/// A version 4 file (every field but `retention`, written here by hand with
/// its own checksum) reads with no retention scan; one that has
/// `retention` is refused; a version 5 file without it is refused.
#[test]
fn version_4_files_still_read_and_version_5_requires_retention() {
    let dir = temp_dir("v4-read");
    let text = String::from_utf8(encode(&sample())).unwrap();
    assert!(text.contains(",\"retention\":null}"), "{text}");
    let v4 = with_checksum(
        &text
            .replace("\"version\":5", "\"version\":4")
            .replace(",\"retention\":null}", "}"),
    );
    let f = decode(v4.as_bytes()).unwrap_or_else(|e| panic!("{e}: {v4}"));
    assert_eq!(f.snapshot.retention, None);
    assert_eq!(f, decode(text.as_bytes()).unwrap());
    let v4_with = with_checksum(&text.replace("\"version\":5", "\"version\":4"));
    let p = expect_error(&dir, "v4-retention.json", v4_with.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("unknown field snapshot.retention")),
        "{p}"
    );
    let v5_without = with_checksum(&text.replace(",\"retention\":null}", "}"));
    let p = expect_error(&dir, "v5-no-retention.json", v5_without.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("missing field snapshot.retention")),
        "{p}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// A retention scan round-trips, and its indices are checked: blocks
/// sorted and disjoint, stacks known, holders and referrers in range.
#[test]
fn retention_scans_round_trip_and_are_checked() {
    use alloc_snapshot::{Holder, RetainedBlock, Retention, RetentionThread};
    let dir = temp_dir("retention");
    let mut f = sample();
    let block = |addr, held_by, referrers| RetainedBlock {
        addr,
        size: 48,
        stack: 1,
        epoch: 3,
        held_by,
        referrers,
    };
    f.snapshot.retention = Some(Retention {
        threads: vec![RetentionThread {
            tid: 7,
            name: "main".into(),
            main: true,
        }],
        blocks: vec![
            block(
                0x1000,
                Some(Holder::Static {
                    module: 0,
                    offset: 0x40,
                    symbol: Some("server::CONNECTIONS".into()),
                }),
                vec![],
            ),
            block(
                0x2000,
                Some(Holder::Block {
                    block: 0,
                    offset: 8,
                }),
                vec![],
            ),
            block(0x3000, None, vec![3]),
            block(0x4000, None, vec![2]),
            block(
                0x5000,
                Some(Holder::Thread {
                    thread: 0,
                    tls: true,
                }),
                vec![],
            ),
        ],
        scan: alloc_snapshot::RetentionScan::default(),
    });
    assert_eq!(decode(&encode(&f)).unwrap(), f);
    type Damage = fn(&mut Retention);
    let invalid: Vec<(&str, Damage, &str)> = vec![
        ("overlap", |r| r.blocks[1].addr = 0x1010, "overlaps"),
        ("stack", |r| r.blocks[0].stack = 9, "stack 9"),
        (
            "module",
            |r| {
                r.blocks[0].held_by = Some(Holder::Static {
                    module: 5,
                    offset: 0,
                    symbol: None,
                })
            },
            "module 5",
        ),
        (
            "thread",
            |r| {
                r.blocks[4].held_by = Some(Holder::Thread {
                    thread: 1,
                    tls: false,
                })
            },
            "thread 1",
        ),
        (
            "self",
            |r| {
                r.blocks[1].held_by = Some(Holder::Block {
                    block: 1,
                    offset: 0,
                })
            },
            "held by block 1",
        ),
        (
            "referrer",
            |r| r.blocks[2].referrers = vec![9],
            "referrer 9",
        ),
        (
            "held-and-referred",
            |r| r.blocks[0].referrers = vec![2],
            "lists referrers",
        ),
    ];
    for (name, damage, needle) in invalid {
        let mut g = f.clone();
        damage(g.snapshot.retention.as_mut().unwrap());
        let p = expect_error(&dir, &format!("{name}.json"), &encode(&g));
        assert!(
            matches!(&p, Problem::Invalid(m) if m.contains(needle)),
            "{name}: {p}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A version 3 file (modules, no `run`), written by an independent
/// implementation of the format (`tests/data/v3-modules.json`, checksum
/// included), reads with no run identity; one that has `run` is refused.
#[test]
fn version_3_files_still_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v3-modules.json");
    let f = read_snapshot_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.cycles, Some(70));
    assert_eq!(f.snapshot.modules.len(), 1);
    assert_eq!(f.snapshot.modules[0].build_id.as_deref(), Some("0a1b2c3d"));
    assert_eq!(f.snapshot.run, None);
    assert_eq!(decode(&encode(&f)).unwrap(), f);
    let text = fs::read_to_string(&path).unwrap();
    let dir = temp_dir("v3");
    let changed = text.replace("\"base\":4194304", "\"base\":4194305");
    assert_ne!(changed, text);
    assert!(matches!(
        expect_error(&dir, "v3-changed.json", changed.as_bytes()),
        Problem::Checksum { .. }
    ));
    let with_run = text.replace("]},\"checksum\"", "],\"run\":null},\"checksum\"");
    assert_ne!(with_run, text);
    let p = expect_error(&dir, "v3-run.json", with_run.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("unknown field snapshot.run")),
        "{p}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// In version 5 every field is required, at every depth, and the call-site
/// data, the modules and the run identity must be consistent.
#[test]
fn version_5_requires_every_field_and_checks_it() {
    let dir = temp_dir("v4");
    let text = String::from_utf8(encode(&sample())).unwrap();
    for field in [
        "sampling",
        "stacks",
        "sites",
        "histograms",
        "modules",
        "run",
        "retention",
    ] {
        // The same file without the field (the schema is checked before
        // the checksum, so key order and checksum do not matter here).
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["snapshot"].as_object_mut().unwrap().remove(field);
        let cut = format!("{v}\n");
        let p = expect_error(&dir, &format!("no-{field}.json"), cut.as_bytes());
        assert!(
            matches!(&p, Problem::Schema(m) if m.contains(&format!("missing field snapshot.{field}"))),
            "{field}: {p}"
        );
    }
    // A frame without its line (null is required for absent).
    let no_line = text.replacen(",\"line\":42}", "}", 1);
    assert_ne!(no_line, text);
    let p = expect_error(&dir, "no-line.json", no_line.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("missing field") && m.contains("line")),
        "{p}"
    );
    // An integer where a float estimate belongs.
    let int = text.replace("\"bytes\":48.0", "\"bytes\":48");
    let p = expect_error(&dir, "int.json", int.as_bytes());
    assert!(
        matches!(&p, Problem::Schema(m) if m.contains("sites[2].bytes")),
        "{p}"
    );

    type Damage = fn(&mut SnapshotFile);
    let invalid: Vec<(&str, Damage, &str)> = vec![
        (
            "unknown-stack",
            |f| f.snapshot.sites[2].stack = 9,
            "not in stacks",
        ),
        (
            "unsorted-sites",
            |f| f.snapshot.sites.swap(0, 1),
            "sorted by stack",
        ),
        (
            "future-site",
            |f| f.snapshot.sites[1].epoch = 99,
            "born in epoch 99",
        ),
        ("negative", |f| f.snapshot.sites[0].bytes = -1.0, "negative"),
        (
            "unsorted-stacks",
            |f| f.snapshot.stacks.swap(0, 1),
            "sorted by id",
        ),
        (
            "user-frame",
            |f| f.snapshot.stacks[0].user_frame = Some(7),
            "user_frame 7",
        ),
        (
            "bucket",
            |f| f.snapshot.histograms.alloc_size.buckets.swap(0, 1),
            "alloc_size",
        ),
        (
            "module-path",
            |f| f.snapshot.modules[1].path.clear(),
            "modules[1] has an empty path",
        ),
        (
            "build-id-case",
            |f| f.snapshot.modules[0].build_id = Some("0A1B".into()),
            "lowercase hex",
        ),
        (
            "build-id-odd",
            |f| f.snapshot.modules[0].build_id = Some("0a1".into()),
            "whole bytes",
        ),
        (
            "range-reversed",
            |f| {
                let r = &mut f.snapshot.modules[1].ranges[0];
                std::mem::swap(&mut r.start, &mut r.end);
            },
            "modules[1] (/lib/x86_64-linux-gnu/libc.so.6) has address range",
        ),
        (
            "ranges-unsorted",
            |f| f.snapshot.modules[0].ranges.swap(0, 1),
            "sorted, disjoint",
        ),
        (
            "below-bias",
            |f| f.snapshot.modules[1].base = 0x7f00_0003_0000,
            "not below the load bias",
        ),
        (
            "modules-overlap",
            |f| {
                f.snapshot.modules[1].base = 0x5555_5580_0000;
                f.snapshot.modules[1].ranges[0].start = 0x5555_5580_8000;
            },
            "modules[0] and modules[1] both hold address 0x555555808000",
        ),
        (
            "run-id-short",
            |f| f.snapshot.run.as_mut().unwrap().id.truncate(30),
            "32 lowercase hex digits",
        ),
        (
            "run-id-case",
            |f| f.snapshot.run.as_mut().unwrap().id = "0123456789ABCDEF".repeat(2),
            "32 lowercase hex digits",
        ),
        (
            "run-pid",
            |f| f.snapshot.run.as_mut().unwrap().pid = 0,
            "run.pid is 0",
        ),
    ];
    for (name, damage, says) in invalid {
        let mut f = sample();
        damage(&mut f);
        let p = expect_error(&dir, &format!("{name}.json"), &encode(&f));
        assert!(
            matches!(&p, Problem::Invalid(m) if m.contains(says)),
            "{name}: {p}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_estimates_are_written_as_zero_and_read_back() {
    let mut f = sample();
    f.snapshot.sites[0].bytes = f64::NAN;
    f.snapshot.sites[1].blocks = f64::INFINITY;
    let back = decode(&encode(&f)).unwrap();
    assert_eq!(back.snapshot.sites[0].bytes, 0.0);
    assert_eq!(back.snapshot.sites[1].blocks, 0.0);
}
