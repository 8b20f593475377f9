//! No function of the workspace's source is longer than [`MAX_LINES`]
//! lines: a long orchestration reads as named steps (as
//! `Analyzer::finish` does), each a function of its own. Every `.rs` file
//! under a `src/` directory of the workspace (beside a `Cargo.toml`) is
//! read; a function counts from the line of its `fn` to the line of its
//! closing brace, its doc comments and attributes left out. Test code is
//! not held to it: a `#[test]` function, and anything inside an item
//! marked `#[cfg(test)]` (a `mod tests`).
//!
//! [`ALLOWED`] names the functions still over the limit (none today), each with why;
//! an entry whose function is no longer over it is reported, so that the
//! list only shrinks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The most lines a function may have.
const MAX_LINES: usize = 80;

/// Functions allowed over [`MAX_LINES`] for now (`path::name`, the path
/// from the workspace root), and why.
const ALLOWED: &[(&str, &str)] = &[];

/// A function longer than [`MAX_LINES`].
#[derive(Debug, PartialEq)]
struct Long {
    name: String,
    line: usize,
    lines: usize,
}

/// The functions of `src` over [`MAX_LINES`] lines, test code left out.
fn long_functions(src: &str) -> Vec<Long> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line, mut depth) = (0, 1, 0usize);
    // Open functions: (name, line of `fn`, depth of its body).
    let mut open: Vec<(String, usize, usize)> = Vec::new();
    // A `fn` seen whose body has not opened yet: (name, line, paren depth).
    let mut pending: Option<(String, usize)> = None;
    let mut parens = 0usize;
    // An item marked test-only is coming; its body is skipped.
    let mut test_attr = false;
    // Inside test code up to this depth's closing brace.
    let mut test_until: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => line += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut nest = 0;
                while i < b.len() {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    if b[i..].starts_with(b"/*") {
                        nest += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'"' => {
                i = skip_string(b, i, 0, &mut line);
                continue;
            }
            b'r' if raw_string_start(b, i).is_some() => {
                let (hashes, quote) = raw_string_start(b, i).unwrap_or_default();
                i = skip_string(b, quote, hashes, &mut line);
                continue;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\u{1F600}'), or a lifetime.
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 2;
                } else if let Some(len) = std::str::from_utf8(&b[i + 1..b.len().min(i + 6)])
                    .ok()
                    .or_else(|| std::str::from_utf8(&b[i + 1..]).ok())
                    .and_then(|s| s.chars().next())
                    .filter(|ch| !ch.is_ascii())
                    .map(char::len_utf8)
                {
                    if b.get(i + 1 + len) == Some(&b'\'') {
                        i += 1 + len;
                    }
                }
            }
            b'#' if b.get(i + 1) == Some(&b'[') => {
                let end = b[i..]
                    .iter()
                    .position(|&x| x == b']')
                    .map_or(b.len(), |p| i + p);
                let attr: String = String::from_utf8_lossy(&b[i + 2..end])
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if attr == "test" || attr == "cfg(test)" || attr.ends_with("::test") {
                    test_attr = true;
                }
            }
            b'(' | b'[' => parens += 1,
            b')' | b']' => parens = parens.saturating_sub(1),
            b';' if parens == 0 => {
                // The end of an item without a body (a trait's `fn`, a
                // `use`): neither a function nor test code opens here.
                pending = None;
                test_attr = false;
            }
            b'{' => {
                depth += 1;
                if test_attr && test_until.is_none() {
                    test_until = Some(depth);
                }
                test_attr = false;
                if let Some((name, at)) = pending.take() {
                    open.push((name, at, depth));
                }
            }
            b'}' => {
                if let Some(&(_, _, d)) = open.last() {
                    if d == depth {
                        let (name, at, _) = open.pop().unwrap_or_default();
                        let lines = line - at + 1;
                        if lines > MAX_LINES && test_until.is_none() {
                            out.push(Long {
                                name,
                                line: at,
                                lines,
                            });
                        }
                    }
                }
                if test_until == Some(depth) {
                    test_until = None;
                }
                depth = depth.saturating_sub(1);
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if &b[start..i] == b"fn" && (start == 0 || !is_ident(b[start - 1])) {
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let name_start = j;
                    while j < b.len() && is_ident(b[j]) {
                        j += 1;
                    }
                    if j > name_start {
                        let name = String::from_utf8_lossy(&b[name_start..j]).into_owned();
                        pending = Some((name, line));
                        parens = 0;
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// At `i`, a raw string's `r#"`: its number of `#` and the index of `"`.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident(b[i - 1]) && b[i - 1] != b'b' {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'#') {
        j += 1;
    }
    (b.get(j) == Some(&b'"')).then_some((j - i - 1, j))
}

/// Past the string whose opening quote is at `quote` (`hashes` for a raw
/// string), counting its lines.
fn skip_string(b: &[u8], quote: usize, hashes: usize, line: &mut usize) -> usize {
    let mut i = quote + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if hashes == 0 => {
                if b.get(i + 1) == Some(&b'\n') {
                    *line += 1;
                }
                i += 2;
                continue;
            }
            b'\n' => *line += 1,
            b'"' if b[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&x| x == b'#')
                .count()
                == hashes =>
            {
                return i + 1 + hashes;
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Every `.rs` file under the `src/` directories of the crates below
/// `dir` (a `src/` beside a `Cargo.toml`; `in_src`: `dir` is inside one),
/// `target/` and hidden directories left out.
fn source_files(dir: &Path, in_src: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !path.is_dir() {
            if in_src && name.ends_with(".rs") {
                out.push(path);
            }
        } else if !name.starts_with('.') && name != "target" {
            let src = in_src || (name == "src" && dir.join("Cargo.toml").is_file());
            source_files(&path, src, out);
        }
    }
}

/// The parser on cases whose answer is known.
fn self_check() {
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let f = |name: &str, n: usize| format!("fn {name}() {{\n{}}}\n", body(n));
    let found = long_functions(&f("long", 79));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].name.as_str(), found[0].lines), ("long", 81));
    assert!(long_functions(&f("short", 78)).is_empty());
    let test_code = format!(
        "#[cfg(test)]\nmod tests {{\n{}}}\n#[test]\n{}",
        f("in_mod", 90),
        f("a_test", 90)
    );
    assert!(long_functions(&test_code).is_empty());
    let tricky = format!(
        "const S: &str = \"}}\";\nconst C: char = '{{';\nfn r<'a>(x: &'a str) {{ let _ = r#\"}}\"#; }}\n{}",
        f("after", 85)
    );
    let found = long_functions(&tricky);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].name.as_str(), found[0].line), ("after", 4));
    let decl = format!("trait T {{ fn d(&self); }}\n{}", f("after_decl", 85));
    assert_eq!(long_functions(&decl)[0].name, "after_decl");
}

fn main() -> ExitCode {
    self_check();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut files = Vec::new();
    source_files(root, false, &mut files);
    let mut problems = Vec::new();
    let mut allowed_seen = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let src = std::fs::read_to_string(path).expect("a source file");
        for long in long_functions(&src) {
            let key = format!("{rel}::{}", long.name);
            if ALLOWED.iter().any(|(k, _)| *k == key) {
                allowed_seen.push(key);
                continue;
            }
            problems.push(format!(
                "{rel}:{} fn {}: {} lines (at most {MAX_LINES}: split it into named steps)",
                long.line, long.name, long.lines
            ));
        }
    }
    for (key, why) in ALLOWED {
        if !allowed_seen.iter().any(|k| k == key) {
            problems.push(format!(
                "{key} is allowed over {MAX_LINES} lines ({why}) but is not: take it off ALLOWED"
            ));
        }
    }
    for p in &problems {
        eprintln!("fn_length: {p}");
    }
    if problems.is_empty() {
        println!(
            "fn_length: {} files, no function over {MAX_LINES} lines but the {} allowed",
            files.len(),
            ALLOWED.len()
        );
        println!("\n1 passed, 0 failed");
        ExitCode::SUCCESS
    } else {
        println!("\n0 passed, 1 failed");
        ExitCode::FAILURE
    }
}
