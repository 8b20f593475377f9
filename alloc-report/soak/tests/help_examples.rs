//! Every `alloc-soak` example in its `--help` is accepted as printed: the
//! arguments parse (no usage error) and the run gets as far as the server,
//! which is not there in this test (exit 2 with a connection error). The
//! same options against a live service run in `tests/tests/axum_soak.rs`
//! (through the library) and `demo-server/tests/demo_runs.rs` (`--send`).

use std::process::Command;

/// Splits a shell line into words: single quotes group and are removed; a
/// backslash outside quotes escapes the next character.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            '\\' if !quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn every_help_example_parses_and_reaches_the_server() {
    let exe = env!("CARGO_BIN_EXE_alloc-soak");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    // Examples, with `\` continuation lines joined.
    let mut examples = Vec::new();
    let mut pending = String::new();
    for line in help
        .lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .skip(1)
    {
        let line = line.trim();
        let (text, more) = match line.strip_suffix('\\') {
            Some(t) => (t, true),
            None => (line, false),
        };
        pending.push_str(text);
        pending.push(' ');
        if !more {
            examples.push(std::mem::take(&mut pending));
        }
    }
    let ours: Vec<&String> = examples
        .iter()
        .filter(|e| e.starts_with("alloc-soak "))
        .collect();
    assert!(ours.len() >= 2, "{help}");
    for example in ours {
        let args = words(example);
        let out = Command::new(exe)
            .args(&args[1..])
            .arg("--no-progress")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{example}: {err}");
        assert!(
            err.starts_with("alloc-soak: admin") && !err.contains("Usage"),
            "{example}: not a connection error: {err}"
        );
    }
}

#[test]
fn shell_words() {
    assert_eq!(
        words(r"a 'b c' --send 'x\ny' d\ e"),
        ["a", "b c", "--send", r"x\ny", "d e"]
    );
}
