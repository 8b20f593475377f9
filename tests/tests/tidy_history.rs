//! Docs and comments say what is true now: no dates and no commit hashes in
//! the workspace's Markdown (README.md, ARCHITECTURE.md, the bench READMEs;
//! RESULTS.md and CHANGELOG.md are where dated runs and history belong, and
//! `results/` directories are left out), nor in its source: every `.rs` file
//! under a crate's `src/` or `examples/` and every `build.rs` (crate docs
//! included), and the comments of every `Cargo.toml`. Test code is not
//! scanned: its data holds hex strings on purpose.
//!
//! The rules, chosen so that code's hex constants, checksums, build ids and
//! addresses do not match:
//!
//! - **A date** is `YYYY-MM-DD` or `YYYY-MM` (a year 1900-2099, a month
//!   01-12, a day 01-31, not inside a longer run of digits), or a month's
//!   name (`Dec`, `December`, capitalised) followed by a year, with a day
//!   between or not (`Dec 2026`, `December 2, 2026`, `2 Dec 2026`).
//!   Dates are looked for in the whole text, code included.
//! - **A commit hash** is a word of 7 to 40 lowercase hex digits (not
//!   preceded by `0x`, and not part of a path, a version or a longer word:
//!   `/`, `-`, `.`, `:`, `_` or an alphanumeric on either side rule it
//!   out), in a commit-like context: the word before it (skipping
//!   punctuation) is `commit`, `commits`, `rev`, `revision`, `sha`,
//!   `hash` or `HEAD`, or, for a word that has both a letter and a digit,
//!   also `at`, `on`, `main`, `master`, `branch`, `merge`, `merged`,
//!   `before`, `after`, `since` or `from`. A word of digits alone needs
//!   the first list, or `at` right after `main`, `master`, `branch` or
//!   `HEAD` (`main at 6560678`). Hashes are looked for in Markdown text
//!   and in comments (`//`, `#` in `Cargo.toml`), not in code.
//!
//! A figure belongs to the run that measured it: put the run in RESULTS.md
//! and the story in the commit message or CHANGELOG.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Words before a hash that make any hex word a commit.
const STRONG: &[&str] = &[
    "commit", "commits", "rev", "revision", "sha", "hash", "head",
];
/// Words before a hash that make a hex word with a letter and a digit a
/// commit.
const WEAK: &[&str] = &[
    "at", "on", "main", "master", "branch", "merge", "merged", "before", "after", "since", "from",
];
/// Words before `at` that make a word of digits a commit.
const BRANCHES: &[&str] = &["main", "master", "branch", "head"];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn is_digit(b: Option<&u8>) -> bool {
    b.is_some_and(u8::is_ascii_digit)
}

/// `YYYY-MM-DD` or `YYYY-MM` at every position of `line`.
fn numeric_dates(line: &str) -> Vec<String> {
    let b = line.as_bytes();
    let num = |i: usize, n: usize| -> Option<u32> {
        let digits = b.get(i..i + n)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| line[i..i + n].parse().expect("digits"))
    };
    let mut out = Vec::new();
    for i in 0..b.len() {
        if i > 0 && b[i - 1].is_ascii_digit() {
            continue;
        }
        let Some(year) = num(i, 4) else { continue };
        if !(1900..=2099).contains(&year) || b.get(i + 4) != Some(&b'-') {
            continue;
        }
        let Some(month) = num(i + 5, 2) else { continue };
        if !(1..=12).contains(&month) || is_digit(b.get(i + 7)) {
            continue;
        }
        let mut end = i + 7;
        if b.get(i + 7) == Some(&b'-') && !is_digit(b.get(i + 10)) {
            if let Some(day) = num(i + 8, 2) {
                if (1..=31).contains(&day) {
                    end = i + 10;
                }
            }
        }
        out.push(line[i..end].to_string());
    }
    out
}

/// Whether `word` is a year 1900-2099 (four digits).
fn is_year(word: &str) -> bool {
    word.len() == 4
        && word.bytes().all(|c| c.is_ascii_digit())
        && (word.starts_with("19") || word.starts_with("20"))
}

/// Whether `word` is a day of the month.
fn is_day(word: &str) -> bool {
    (1..=2).contains(&word.len())
        && word.bytes().all(|c| c.is_ascii_digit())
        && (1..=31).contains(&word.parse::<u32>().unwrap_or(0))
}

/// Whether `word` names a month: in full, or its first three letters
/// (with or without a full stop), capitalised.
fn is_month(word: &str) -> bool {
    let word = word.trim_end_matches('.');
    MONTHS
        .iter()
        .any(|m| word == *m || (word.len() == 3 && m.starts_with(word)))
}

/// Month-name dates: `Dec 2026`, `December 2, 2026`, `2 Dec 2026`.
fn named_dates(line: &str) -> Vec<String> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '`' | '*' | '_' | ';'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !is_month(w) {
            continue;
        }
        let next = |k: usize| {
            words
                .get(i + k)
                .map(|w| w.trim_end_matches([',', '.', ':']))
        };
        let hit = match (next(1), next(2)) {
            (Some(y), _) if is_year(y) => Some(2),
            (Some(d), Some(y)) if is_day(d) && is_year(y) => Some(3),
            _ => None,
        };
        if let Some(n) = hit {
            out.push(words[i..i + n].join(" "));
        } else if i > 0 && is_day(words[i - 1]) && next(1).is_some_and(is_year) {
            out.push(words[i - 1..i + 2].join(" "));
        }
    }
    out
}

/// Commit hashes in commit-like context in `text` (prose or a comment).
fn hashes(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let word_char =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'-' | b'.' | b':');
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() || (i > 0 && word_char(b[i - 1])) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let word = &text[i..j];
        // A `.` or `:` after the word ends a sentence or a clause, unless a
        // word character follows it (`abc1234.rs`, `abc1234:5`).
        let after_ok = match b.get(j) {
            None => true,
            Some(&b'.' | &b':') => !b.get(j + 1).is_some_and(|&d| word_char(d)),
            Some(&c) => !word_char(c),
        };
        let is_hex = (7..=40).contains(&word.len())
            && word
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if is_hex && after_ok && !text[..i].ends_with("0x") {
            let before: Vec<String> = text[..i]
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .rev()
                .take(2)
                .map(str::to_ascii_lowercase)
                .collect();
            let prev = before.first().map(String::as_str).unwrap_or("");
            let prev2 = before.get(1).map(String::as_str).unwrap_or("");
            let mixed = word.bytes().any(|c| c.is_ascii_digit())
                && word.bytes().any(|c| c.is_ascii_alphabetic());
            let commit = STRONG.contains(&prev)
                || (mixed && WEAK.contains(&prev))
                || (prev == "at" && BRANCHES.contains(&prev2));
            if commit {
                out.push(format!("{prev} {word}"));
            }
        }
        i = j;
    }
    out
}

/// The comment of a line of Rust (after a `//` outside a string literal),
/// or of a `Cargo.toml` line (after a `#` outside one).
fn comment<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
        } else if line[i..].starts_with(marker) {
            return Some(&line[i + marker.len()..]);
        }
    }
    None
}

/// What a file may not hold, one problem per line found.
fn check_text(name: &str, text: &str, comment_marker: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for d in numeric_dates(line).into_iter().chain(named_dates(line)) {
            out.push(format!("{name}:{}: a date ({d})", n + 1));
        }
        let prose = match comment_marker {
            None => Some(line),
            Some(m) => comment(line, m),
        };
        for h in prose.map(hashes).unwrap_or_default() {
            out.push(format!("{name}:{}: a commit hash ({h})", n + 1));
        }
    }
    out
}

/// The files the rules apply to, relative to the workspace root.
fn files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "results") {
                files(root, &path, out);
            }
            continue;
        }
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let in_tests = parts.iter().skip(1).any(|p| p == "tests");
        let keep = if name.ends_with(".md") {
            !(parts.len() == 1 && (name == "RESULTS.md" || name == "CHANGELOG.md"))
        } else if name.ends_with(".rs") {
            !in_tests && (name == "build.rs" || parts.iter().any(|p| p == "src" || p == "examples"))
        } else {
            name == "Cargo.toml"
        };
        if keep {
            out.push(rel);
        }
    }
}

fn problems(root: &Path) -> (usize, Vec<String>) {
    let mut list = Vec::new();
    files(root, root, &mut list);
    let mut out = Vec::new();
    for rel in &list {
        let text = std::fs::read_to_string(root.join(rel)).expect("a text file");
        let name = rel.display().to_string();
        let marker = match rel.extension().and_then(|e| e.to_str()) {
            Some("rs") => Some("//"),
            Some("toml") => Some("#"),
            _ => None,
        };
        out.extend(check_text(&name, &text, marker));
    }
    for needed in ["README.md", "ARCHITECTURE.md", "alloc-core/src/lib.rs"] {
        if !list.iter().any(|p| p == Path::new(needed)) {
            out.push(format!("{needed} was not scanned"));
        }
    }
    (list.len(), out)
}

/// The rules on lines they must flag and lines they must let through.
fn self_check() {
    let flagged = [
        "measured on 2026-12-02 at 04:34 UTC",
        "the 2026-12 runs",
        "(2026-11-24-throughput.txt)",
        "in Dec 2026",
        "on December 2, 2026",
        "on 2 Dec 2026",
        "The same soaks on main at 6560678 ran",
        "main at a496063 (the record",
        "before the change (commit 90f30d9)",
        "the tree at commit 49790b6e",
        "branch fastpath at e278d7c.",
    ];
    for line in flagged {
        assert!(
            !check_text("t", line, None).is_empty(),
            "the rules miss {line:?}"
        );
    }
    let clean = [
        "let checksum = \"fnv1a64:0123456789abcdef\";",
        "/rustc/59807616e1b2c3d4/library/std/src/thread/mod.rs",
        "index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/lib.rs",
        "at 0x7f3a2b1c4d5e the block starts",
        "build id 0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        "at 1000000 cycles",
        "a bound of 4294967295 at most",
        "conn.0000000042",
        "2,000 cycles, 16 at a time, batch 1000",
        "May the block be freed on another thread",
        "version 2019 of the format",
        "ranges 2000-3000 bytes",
    ];
    for line in clean {
        let found = check_text("t", line, None);
        assert!(found.is_empty(), "false positive on {line:?}: {found:?}");
    }
    // In Rust, hashes count only in comments; dates count everywhere.
    assert!(check_text("t", "let s = \"at deadbeef1\";", Some("//")).is_empty());
    assert!(!check_text("t", "let s = 1; // at deadbeef1", Some("//")).is_empty());
    assert!(!check_text("t", "let s = \"2026-12-02\";", Some("//")).is_empty());
}

fn main() -> ExitCode {
    self_check();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let (scanned, found) = problems(root);
    for p in &found {
        eprintln!("tidy: {p}");
    }
    if found.is_empty() {
        println!("tidy_history: {scanned} files without dates or commit hashes");
        println!("\n1 passed, 0 failed");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "tidy: {} hits; dated runs go in RESULTS.md, history in commit messages and CHANGELOG.md",
            found.len()
        );
        println!("\n0 passed, 1 failed");
        ExitCode::FAILURE
    }
}
