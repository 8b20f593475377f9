//! Every command the README shows is one that something runs: a command
//! line of `.ci/run` (the CI; a README command may leave off arguments the
//! CI adds at the end, as `--out` for the demo), an example of
//! `alloc-soak --help` (run as printed by `soak_help_examples.rs`) or an
//! example of `alloc-report --help` (run as printed by alloc-report's
//! `tests/help_examples.rs`). The README's commands are the lines of its
//! fenced `sh` blocks (a trailing `\` joins lines, a ` #` comment is left
//! out) and any inline code span that starts with a program the README
//! tells users to run. The README's two commands must stay exactly
//! `cargo run --release -p demo-server -- demo` and `cargo test --workspace`.
//! Nothing is run here: the check reads the files.

use std::path::Path;
use std::process::ExitCode;

/// Inline code that starts with one of these is a command.
const PROGRAMS: &[&str] = &[
    "cargo ",
    "alloc-soak ",
    "alloc-report ",
    "demo-server ",
    "go ",
    "curl ",
];

/// The README's two commands, exactly.
const TWO_COMMANDS: [&str; 2] = [
    "cargo run --release -p demo-server -- demo",
    "cargo test --workspace",
];

/// `line` without a trailing ` # comment` outside single or double quotes,
/// its words separated by one space.
fn normalise(line: &str) -> String {
    let (mut single, mut double) = (false, false);
    let mut end = line.len();
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
        prev = c;
    }
    line[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Shell lines with their `\` continuations joined, normalised, non-empty.
fn shell_lines(text: &str) -> Vec<String> {
    text.replace("\\\n", " ")
        .lines()
        .map(normalise)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The commands of a Markdown text: lines of fenced `sh`/`shell`/`bash`
/// blocks, and inline code spans that start with one of [`PROGRAMS`].
fn markdown_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<(bool, String)> = None;
    for line in text.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut block, fence) {
            (None, Some(info)) => {
                let shell = matches!(info.trim(), "sh" | "shell" | "bash");
                block = Some((shell, String::new()));
            }
            (Some((shell, body)), Some(_)) => {
                if *shell {
                    out.extend(shell_lines(body));
                }
                block = None;
            }
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {
                for (k, span) in line.split('`').enumerate() {
                    if k % 2 == 1 && PROGRAMS.iter().any(|p| span.starts_with(p)) {
                        out.push(normalise(span));
                    }
                }
            }
        }
    }
    out
}

/// `line` without its leading `NAME=value` assignments.
fn without_assignments(mut line: &str) -> &str {
    loop {
        let name_len = line
            .bytes()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
            .count();
        if name_len == 0 || line.as_bytes().get(name_len) != Some(&b'=') {
            return line;
        }
        let value = &line[name_len + 1..];
        let end = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].find(q).map_or(value.len(), |i| i + 2),
            _ => value.find(' ').unwrap_or(value.len()),
        };
        line = value[end..].trim_start();
    }
}

/// The command lines of a shell script: continuations joined, leading
/// `NAME=value` assignments left out (control lines and `step` markers
/// stay as they are: they match no README command).
fn script_commands(text: &str) -> Vec<String> {
    shell_lines(text)
        .iter()
        .map(|l| without_assignments(l).to_string())
        .collect()
}

/// The body of `const EXAMPLES: &str = "...";` in a Rust source file, as
/// the string it denotes (`\\`, `\"`, `\n` escapes and `\` line
/// continuations).
fn rust_examples(source: &str) -> String {
    let start = source
        .find("const EXAMPLES: &str = \"")
        .expect("a const EXAMPLES")
        + "const EXAMPLES: &str = \"".len();
    let mut out = String::new();
    let mut chars = source[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('\n') => {
                    // A continuation: the next line's leading spaces go too.
                    let rest: String = chars.clone().collect();
                    let skipped = rest.len() - rest.trim_start().len();
                    for _ in 0..rest[..skipped].chars().count() {
                        chars.next();
                    }
                }
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    panic!("EXAMPLES has no closing quote");
}

/// Whether `cmd` is `run`, or `run` with more arguments at its end.
fn covers(run: &str, cmd: &str) -> bool {
    run == cmd
        || run
            .strip_prefix(cmd)
            .is_some_and(|rest| rest.starts_with(' '))
}

fn self_check() {
    let md = "Run\n\n```sh\ncargo test --workspace   # the tests\nalloc-soak --server a \\\n    --admin b\n```\n\n```rust\nlet x = 1;\n```\n\nthen `alloc-report report target/soak` and `a-word`.\n";
    assert_eq!(
        markdown_commands(md),
        [
            "cargo test --workspace",
            "alloc-soak --server a --admin b",
            "alloc-report report target/soak"
        ]
    );
    assert_eq!(normalise("--send 'a # b' # c"), "--send 'a # b'");
    assert_eq!(
        script_commands("RUSTDOCFLAGS=\"-D warnings\" cargo doc\nA=1 B=2 cargo x \\\n  --y\n"),
        ["cargo doc", "cargo x --y"]
    );
    assert_eq!(
        rust_examples("const EXAMPLES: &str = \"\\\n    Examples:\n  a \\\\\n      b 'c\\\\n'\";"),
        "Examples:\n  a \\\n      b 'c\\n'"
    );
    assert!(covers(
        "cargo run -p x -- demo --out d",
        "cargo run -p x -- demo"
    ));
    assert!(!covers(
        "cargo run -p x -- demonstrate",
        "cargo run -p x -- demo"
    ));
}

fn main() -> ExitCode {
    self_check();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let readme = markdown_commands(&read("README.md"));
    let ci = script_commands(&read(".ci/run"));
    let soak = shell_lines(alloc_soak::cli::EXAMPLES);
    let report = shell_lines(&rust_examples(&read("alloc-report/src/main.rs")));
    assert!(soak.len() >= 2 && report.len() >= 5, "{soak:?} {report:?}");

    let mut problems = Vec::new();
    for two in TWO_COMMANDS {
        if !readme.iter().any(|c| c == two) {
            problems.push(format!("README.md no longer shows `{two}` as a command"));
        }
    }
    for cmd in &readme {
        let run_by = if ci.iter().any(|run| covers(run, cmd)) {
            ".ci/run"
        } else if soak.iter().any(|run| run == cmd) {
            "alloc-soak --help (tests/tests/soak_help_examples.rs)"
        } else if report.iter().any(|run| run == cmd) {
            "alloc-report --help (alloc-report/tests/help_examples.rs)"
        } else {
            problems.push(format!(
                "README.md shows `{cmd}`, which no test or CI step runs: run it in \
                 .ci/run or a test, or take it out of the README"
            ));
            continue;
        };
        println!("{cmd}\n    run by {run_by}");
    }
    for p in &problems {
        eprintln!("readme_commands: {p}");
    }
    if problems.is_empty() {
        println!("\n1 passed, 0 failed");
        ExitCode::SUCCESS
    } else {
        println!("\n0 passed, 1 failed");
        ExitCode::FAILURE
    }
}
