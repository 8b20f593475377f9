//! Conventions of this package, checked cheaply: every test file under
//! `tests/tests/` has its `[[test]]` entry with `harness = false` in
//! `tests/Cargo.toml` (without it the file runs under libtest, which finds
//! no `#[test]` in a file with its own `main` and passes with zero tests),
//! every entry names a file, every file has a `main` and opens with `//!`,
//! and the index in `src/lib.rs` lists every file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// `[[test]]` entries of a Cargo manifest: name to `harness = false`.
fn test_entries(manifest: &str) -> Result<BTreeMap<String, bool>, String> {
    let mut entries = BTreeMap::new();
    let mut current: Option<(Option<String>, bool)> = None;
    let mut close = |cur: Option<(Option<String>, bool)>| -> Result<(), String> {
        if let Some((name, no_harness)) = cur {
            let name = name.ok_or("a [[test]] entry without a name")?;
            if entries.insert(name.clone(), no_harness).is_some() {
                return Err(format!("[[test]] {name} appears twice"));
            }
        }
        Ok(())
    };
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            close(current.take())?;
            if line == "[[test]]" {
                current = Some((None, false));
            }
            continue;
        }
        let Some((name, no_harness)) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim() {
            "name" => *name = Some(value.trim().trim_matches('"').to_string()),
            "harness" => *no_harness = value.trim() == "false",
            _ => {}
        }
    }
    close(current)?;
    Ok(entries)
}

fn problems(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("tests/Cargo.toml");
    let entries = match test_entries(&manifest) {
        Ok(e) => e,
        Err(e) => return vec![format!("tests/Cargo.toml: {e}")],
    };
    let index = std::fs::read_to_string(root.join("src/lib.rs")).expect("tests/src/lib.rs");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("tests")).expect("tests/tests") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a test file");
            files.push((stem, text));
        }
    }
    files.sort();
    for (stem, text) in &files {
        match entries.get(stem) {
            None => out.push(format!(
                "tests/tests/{stem}.rs has no [[test]] entry in tests/Cargo.toml \
                 (add one with harness = false)"
            )),
            Some(false) => out.push(format!(
                "[[test]] {stem} in tests/Cargo.toml lacks harness = false: it would run \
                 under libtest and pass with zero tests"
            )),
            Some(true) => {}
        }
        if !text.contains("fn main()") {
            out.push(format!("tests/tests/{stem}.rs has no fn main()"));
        }
        if !text.starts_with("//!") {
            out.push(format!("tests/tests/{stem}.rs does not open with //!"));
        }
        if !index.contains(&format!("`{stem}.rs`")) {
            out.push(format!(
                "tests/tests/{stem}.rs is not in the test index in tests/src/lib.rs"
            ));
        }
    }
    for name in entries.keys() {
        if !files.iter().any(|(stem, _)| stem == name) {
            out.push(format!(
                "[[test]] {name} in tests/Cargo.toml names no tests/tests/{name}.rs"
            ));
        }
    }
    if files.len() < 10 {
        out.push(format!("only {} test files found", files.len()));
    }
    out
}

fn main() -> ExitCode {
    // The checker itself, on manifests it must refuse and accept.
    let bad = "[[test]]\nname = \"a\"\n\n[[test]]\nname = \"b\"\nharness = false\n";
    let parsed = test_entries(bad).expect("a manifest");
    assert_eq!(parsed.get("a"), Some(&false));
    assert_eq!(parsed.get("b"), Some(&true));
    assert!(test_entries("[[test]]\nharness = false\n").is_err());

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = problems(root);
    for p in &found {
        eprintln!("tidy: {p}");
    }
    if found.is_empty() {
        println!("tidy: every test file has harness = false, a main and an index line");
        println!("\n1 passed, 0 failed");
        ExitCode::SUCCESS
    } else {
        println!("\n0 passed, 1 failed");
        ExitCode::FAILURE
    }
}
