//! The `alloc-report` binary end to end on generated series directories.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use alloc_report::SeriesWriter;
use common::{model, site, site_series, temp_dir};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alloc-report"))
        .args(args)
        .output()
        .unwrap()
}

fn write_series(dir: &Path, live: impl FnMut(u32, u32) -> (u64, u64)) {
    let mut w = SeriesWriter::create(dir).unwrap();
    for f in model(20, live) {
        w.append(&f.snapshot, None).unwrap();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_exit_codes() {
    let leaky = temp_dir("cli-leaky");
    let fixed = temp_dir("cli-fixed");
    write_series(&leaky, |_, _| (200, 2));
    write_series(&fixed, |_, e| if e == 0 { (4096, 1) } else { (0, 0) });
    let (l, f) = (leaky.to_str().unwrap(), fixed.to_str().unwrap());

    let o = run(&["check", l]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains("leak"), "{}", stdout(&o));
    assert!(stdout(&o).contains("200.0"), "{}", stdout(&o));
    let o = run(&["check", l, "--max-bytes-per-cycle", "500"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = run(&["check", f]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("warmup"), "{}", stdout(&o));
    // One file has no trend: never a leak.
    let one = leaky.join("000019.json");
    let o = run(&["check", one.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");

    // Bad input: exit 2 and one line naming the file.
    let bad = leaky.join("000004.json");
    std::fs::write(&bad, b"{\"format\":").unwrap();
    let o = run(&["check", l]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("000004.json") && err.contains("truncated"),
        "{err}"
    );
    std::fs::remove_dir_all(&leaky).unwrap();
    std::fs::remove_dir_all(&fixed).unwrap();
}

#[test]
fn show_diff_report_and_usage() {
    let dir = temp_dir("cli-other");
    write_series(&dir, |_, _| (64, 1));
    let d = dir.to_str().unwrap();
    let first = dir.join("000001.json");
    let last = dir.join("000019.json");
    let (first, last) = (first.to_str().unwrap(), last.to_str().unwrap());

    let o = run(&["show", first]);
    assert!(
        o.status.success() && stdout(&o).contains("BIRTH EPOCH"),
        "{o:?}"
    );
    let o = run(&["show", d]);
    assert!(
        o.status.success() && stdout(&o).contains("SURVIVOR BYTES"),
        "{o:?}"
    );
    let o = run(&["diff", first, last]);
    assert!(
        o.status.success() && stdout(&o).contains("APPEARED"),
        "{o:?}"
    );

    let json = dir.join("report.json");
    let html = dir.join("report.html");
    let o = run(&[
        "report",
        d,
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(
        o.status.success() && stdout(&o).contains("VERDICT"),
        "{o:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["sites"][0]["kind"], "leak");
    assert_eq!(v["sites"][0]["site"], "(all)");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("</html>"));
    let o = run(&["report", d, "--json", "-"]);
    assert!(stdout(&o).trim_start().starts_with('{'), "{o:?}");

    let o = run(&["--help"]);
    assert!(
        o.status.success() && stdout(&o).contains("Examples:"),
        "{o:?}"
    );
    let o = run(&["report", "--help"]);
    assert!(o.status.success() && stdout(&o).contains("pprof"), "{o:?}");
    for args in [
        &[][..],
        &["frobnicate"],
        &["check"],
        &["check", d, "--bogus", "1"],
        &["check", d, "--max-bytes-per-cycle", "lots"],
        &["report", d, "--format", "xml"],
        &["diff", first],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("alloc-report: "), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_formats_and_outputs() {
    let dir = temp_dir("cli-formats");
    write_series(&dir, |_, _| (64, 1));
    let d = dir.to_str().unwrap();
    let o = run(&["report", d, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["overall"]["kind"], "leak");
    let o = run(&["report", d, "--format", "folded"]);
    assert!(stdout(&o).starts_with("(all);born_0 64"), "{o:?}");
    let pb = dir.join("survivors.pb.gz");
    let o = run(&[
        "report",
        d,
        "--format",
        "pprof",
        "--out",
        pb.to_str().unwrap(),
    ]);
    assert!(o.status.success() && o.stdout.is_empty(), "{o:?}");
    assert_eq!(&std::fs::read(&pb).unwrap()[..2], &[0x1f, 0x8b]);
    let html = dir.join("r.html");
    let o = run(&[
        "report",
        d,
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("<h2 id=\"sites\">Sites</h2>"));
    // Not a terminal: no progress bar on standard error.
    assert!(o.stderr.is_empty(), "{o:?}");
    let o = run(&[
        "diff",
        dir.join("000001.json").to_str().unwrap(),
        dir.join("000009.json").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["new_epoch"], 9);
    // A closed pipe is not an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_alloc-report"))
        .args(["show", d])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A snapshot with one raw stack at `main` of `binary` (loaded at a made-up
/// bias), the module listed as `path` with `build_id`, and survivors there.
fn raw_snapshot(binary: &Path, path: &str, build_id: Option<String>) -> alloc_report::SnapshotFile {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(binary).unwrap();
    let obj = object::File::parse(&*bytes).unwrap();
    let main = obj
        .symbols()
        .find(|s| s.name() == Ok("main"))
        .expect("the binary has a main symbol")
        .address();
    let base = 0x5555_0000_0000;
    // A return address just past main's first instruction.
    let end = base + (bytes.len() as u64).max(main + 0x1000);
    let s = common::raw_snapshot(base + main + 1, path, base, end, build_id);
    alloc_report::SnapshotFile::new(s)
}

#[test]
fn raw_stacks_are_symbolised_from_the_binary_or_a_clear_error() {
    let dir = temp_dir("cli-raw");
    let exe = Path::new(env!("CARGO_BIN_EXE_alloc-report"));
    let id = alloc_report::symbolize::file_build_id(exe).unwrap();
    assert!(id.is_some(), "the test binary has no build id");
    // A series of two: nothing, then the survivor at the raw stack.
    let file = dir.join("000001.json");
    let f = dir.to_str().unwrap();
    let write = |second: &alloc_report::SnapshotFile| {
        let mut first = second.clone();
        first.snapshot = alloc_snapshot::Snapshot {
            modules: second.snapshot.modules.clone(),
            ..common::snap(0, &[])
        };
        alloc_report::write_snapshot_file(&dir.join("000000.json"), &first).unwrap();
        alloc_report::write_snapshot_file(&file, second).unwrap();
    };

    // At its path with its build id: the site is named.
    let here = raw_snapshot(exe, exe.to_str().unwrap(), id.clone());
    write(&here);
    let o = run(&["report", f]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("\nmain "), "{}", stdout(&o));

    // Gone: exit 2, one line naming the module and the flag.
    let gone = raw_snapshot(exe, "/nonexistent/server", id.clone());
    write(&gone);
    for cmd in ["show", "report", "check"] {
        let o = run(&[cmd, f]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("cli-raw")
                && err.contains("/nonexistent/server")
                && err.contains("is gone")
                && err.contains("--binary FILE"),
            "{err}"
        );
    }
    // ... and --binary with the file that ran resolves it.
    let o = run(&["report", f, "--binary", exe.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("\nmain "), "{}", stdout(&o));
    assert!(o.stderr.is_empty(), "{o:?}");

    // Another build at the path: exit 2, both build ids named.
    let other = "00".repeat(20);
    let rebuilt = raw_snapshot(exe, exe.to_str().unwrap(), Some(other.clone()));
    write(&rebuilt);
    let o = run(&["report", f]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&other) && err.contains(id.as_deref().unwrap()) && err.contains("rebuilt"),
        "{err}"
    );
    // A --binary that is not an object file, or matches no module.
    std::fs::write(dir.join("notes.txt"), "hi").unwrap();
    let o = run(&[
        "report",
        f,
        "--binary",
        dir.join("notes.txt").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a readable object file"));
    write(&here);
    let o = run(&["report", f, "--binary", exe.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--site-rule`: by default a site is the program's own line calling a
/// dependency (the call after ` -> `); `first-non-std` takes the
/// dependency's frame, as for a library's own soak.
#[test]
fn the_site_rule_chooses_the_frame() {
    const LIB: &str = "/h/.cargo/registry/src/idx/bytes-1.12.2/src/bytes_mut.rs";
    let dir = temp_dir("cli-site-rule");
    let mut w = SeriesWriter::create(&dir).unwrap();
    for mut f in site_series(
        20,
        &[site("/w/svc/src/main.rs", 31, "svc::handle", 64, |_, _| 1)],
        0,
        1,
    ) {
        for st in &mut f.snapshot.stacks {
            let ip = st.frames[0].ip + 1;
            st.frames.insert(
                1,
                alloc_snapshot::Frame {
                    ip,
                    function: Some("bytes::bytes_mut::BytesMut::with_capacity".into()),
                    file: Some(LIB.into()),
                    line: Some(140),
                },
            );
        }
        w.append(&f.snapshot, f.cycles).unwrap();
    }
    let d = dir.to_str().unwrap();
    let top = |args: &[&str]| {
        let o = run(args);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["sites"][0]["site"].as_str().unwrap().to_string()
    };
    assert_eq!(
        top(&["report", d, "--format", "json"]),
        "svc/src/main.rs:31 svc::handle -> bytes::bytes_mut::BytesMut::with_capacity"
    );
    assert_eq!(
        top(&[
            "report",
            d,
            "--format",
            "json",
            "--site-rule",
            "first-non-std"
        ]),
        "bytes-1.12.2/src/bytes_mut.rs:140 bytes::bytes_mut::BytesMut::with_capacity"
    );
    let o = run(&["report", d, "--site-rule", "any"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
