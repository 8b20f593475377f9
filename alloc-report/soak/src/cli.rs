//! The soak's command line: its arguments (clap), shared by the
//! `alloc-soak` binary and `demo-server soak`; the `alloc-soak` command
//! itself ([`main_from`], all the binary runs), its `--help` examples
//! ([`EXAMPLES`]) and what a soak prints.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use crate::client::Script;
use crate::soak::{SoakOptions, SoakOutcome};
use crate::SoakError;

/// What to soak and how; `--send` or `--http` say what a cycle does (the
/// demo server's protocol without either).
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The server's address: what each cycle connects to.
    #[arg(long)]
    pub server: SocketAddr,
    /// The server's alloc-admin endpoint. An answer with a body over 64 MiB
    /// is refused (from its Content-Length, unread, when it has one).
    #[arg(long)]
    pub admin: SocketAddr,
    /// Where the admin routes are mounted at --admin, when nested in the
    /// server's own router (e.g. /admin).
    #[arg(long, default_value = "")]
    pub admin_prefix: String,
    /// Measured cycles.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cycles: u64,
    /// Cycles per epoch (one snapshot each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Connections in flight at once (one cycle in flight on each).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub concurrency: u64,
    /// Cycles one connection carries in a row (keep-alive): with --http, a
    /// connection's requests but its last go without `Connection: close`;
    /// with --send, each cycle's bytes follow the previous answer (needs
    /// --until). A cycle is still one request; 1: a connection per cycle.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub requests_per_conn: u64,
    /// Unmeasured cycles before the first snapshot.
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// Idle connections held open for the whole soak (any protocol).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub hold: u64,
    /// Where the series (in its series/ folder) and the report
    /// (report.txt, report.json, report.html) go. A soak deletes nothing it
    /// did not write: an --out that holds an earlier soak's files, or
    /// anything in series/, is refused (exit 2) unless --replace.
    #[arg(long, default_value = "target/soak")]
    pub out: PathBuf,
    /// Replace an earlier soak in --out: delete its own files only (in
    /// series/, NNNNNN.json files that are snapshot files and the writer's
    /// temporary files; report.txt, report.json, report.html) and keep
    /// everything else. A file in series/ with a series file's name that
    /// is not a snapshot file is refused even so.
    #[arg(long)]
    pub replace: bool,
    /// Sent to the admin endpoint as `Authorization: Bearer TOKEN` on
    /// every request; default: the environment variable ALLOC_ADMIN_TOKEN
    /// (which, unlike the flag, other users' `ps` does not show).
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// How long one admin call keeps retrying while the endpoint answers
    /// 503 (busy), times out (10 s an attempt) or drops the connection:
    /// jittered exponential backoff from 100 ms, a line on standard error
    /// per retry; then the soak fails naming the call.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub admin_retry_secs: f64,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Symbolise the server's stacks with this file for the module of the
    /// same GNU build id (the server's binary was rebuilt or moved since it
    /// started); repeatable.
    #[arg(long, value_name = "FILE")]
    pub binary: Vec<PathBuf>,
    /// Which frame of a stack is its site: `own-code`, the innermost frame
    /// of the program's own code (not the standard library, not a crate
    /// from a registry, a git checkout or a vendor/ directory; the label
    /// adds the library call it made), or `first-non-std`, the first frame
    /// past the standard library whatever its crate (for soaking your own
    /// library).
    #[arg(long, value_name = "RULE", default_value = "own-code")]
    pub site_rule: alloc_report::SiteRule,
    /// Raw TCP: the bytes each cycle sends (`\n`, `\r`, `\t`, `\\`
    /// escapes; `{cycle}` and `{key}` filled in per cycle).
    #[arg(long, conflicts_with = "http")]
    pub send: Option<String>,
    /// With --send: a cycle is done when the answer ends with this (same
    /// escapes, templated as --send); without it, when the server closes.
    #[arg(long, requires = "send")]
    pub until: Option<String>,
    /// HTTP/1.1: one request per cycle, `METHOD PATH` (the path templated:
    /// `GET /users/{cycle}`); a cycle must answer 2xx.
    #[arg(long, value_name = "METHOD PATH")]
    pub http: Option<String>,
    /// With --http: a header line (`Name: value`); repeatable.
    #[arg(long, requires = "http")]
    pub header: Vec<String>,
    /// With --http: the request body (templated).
    #[arg(long, requires = "http")]
    pub body: Option<String>,
    /// Exit 1 if the whole heap or any site leaks more than N bytes per
    /// cycle (as `alloc-report check --max-bytes-per-cycle`); leaks of at
    /// most N pass. `--threshold`, its former name, is an alias.
    #[arg(
        long,
        alias = "threshold",
        value_name = "N",
        default_value_t = 0.0,
        value_parser = parse_bytes
    )]
    pub max_bytes_per_cycle: f64,
    /// Take the last snapshot without a retention scan (by default it has
    /// one, and each leak site's cause is reported: static, thread, cycle,
    /// unreferenced).
    #[arg(long)]
    pub no_retention: bool,
}

impl SoakArgs {
    /// The soak options these arguments describe.
    pub fn options(&self) -> Result<SoakOptions, SoakError> {
        let mut o = SoakOptions::new(self.server, self.admin, self.out.clone());
        o.admin_prefix = self.admin_prefix.clone();
        if let Some(send) = &self.send {
            crate::template::validate(send)?;
            if let Some(until) = &self.until {
                crate::template::validate(until)?;
            }
            o.script = Script::Custom {
                request: unescape(send),
                until: self.until.as_deref().map(unescape).unwrap_or_default(),
            };
        }
        if let Some(http) = &self.http {
            let Some((method, path)) = http.trim().split_once(' ') else {
                return Err(SoakError::Options(format!(
                    "--http {http:?}: expected METHOD PATH, e.g. 'GET /'"
                )));
            };
            crate::template::validate(path)?;
            let body = self.body.clone().unwrap_or_default();
            crate::template::validate(&body)?;
            o.script = Script::Http {
                method: method.to_string(),
                path: path.trim().to_string(),
                headers: self.header.clone(),
                body: body.into_bytes(),
            };
        }
        o.cycles = self.cycles;
        o.batch = self.batch;
        o.concurrency = self.concurrency as usize;
        o.requests_per_connection = self.requests_per_conn;
        o.warmup = self.warmup;
        o.hold = self.hold as usize;
        o.progress = !self.no_progress;
        o.binaries = self.binary.clone();
        o.site_rule = self.site_rule;
        o.retention = !self.no_retention;
        o.replace = self.replace;
        o.admin_token = self
            .admin_token
            .clone()
            .or_else(|| std::env::var(TOKEN_VAR).ok())
            .filter(|t| !t.is_empty());
        o.admin_retry_for = Duration::from_secs_f64(self.admin_retry_secs);
        Ok(o)
    }
}

/// The environment variable that holds the admin token when
/// `--admin-token` is not given.
pub const TOKEN_VAR: &str = "ALLOC_ADMIN_TOKEN";

/// A number of seconds: finite, not negative, at most a day.
fn parse_seconds(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s))
        .ok_or_else(|| format!("{v:?} is not a number of seconds from 0 to 86400"))
}

/// A number of bytes per cycle: finite, not negative (as `alloc-report
/// check` reads it).
fn parse_bytes(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{v:?} is not a number of bytes"))
}

/// The examples at the end of `alloc-soak --help`, as printed: the first
/// soaks the axum example service (`alloc-admin`'s
/// `examples/axum_service.rs`: `/hello/{name}`, the admin routes nested at
/// `/admin`, port 3000), the second the demo server's line protocol
/// (`demo-server serve`: port 7070, its admin endpoint on 7171), the third
/// reads the report the soaks wrote. [`examples`] splits them into
/// arguments; `tests/tests/soak_help_examples.rs` runs them against those
/// servers.
pub const EXAMPLES: &str = "Examples:
  alloc-soak --server 127.0.0.1:3000 --admin 127.0.0.1:3000 --admin-prefix /admin \\
      --http 'GET /hello/u{cycle}' --cycles 20000 --batch 1000 --concurrency 32 \\
      --requests-per-conn 10
  alloc-soak --server 127.0.0.1:7070 --admin 127.0.0.1:7171 \\
      --send 'set k{key} v{cycle}\\nquit\\n' --until 'bye\\n' --hold 100
  alloc-report report target/soak";

/// Soak a server that mounts the alloc-admin endpoint: cycles in batches, a
/// snapshot at quiescence after each, the series, the report and a verdict.
/// Exit 0: no leak; 1: a leak; 2: an error.
#[derive(Debug, Parser)]
#[command(name = "alloc-soak", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to soak and how.
    #[command(flatten)]
    pub soak: SoakArgs,
}

/// The `alloc-soak` command with `args` (the program's name first, as
/// [`std::env::args_os`] gives them): parses them, runs the soak, prints
/// the report and the verdict, and returns the exit code: 0 no leak, 1 a
/// leak above `--max-bytes-per-cycle`, 2 an error or bad arguments (the message on
/// standard error). The binary is this function on its arguments.
///
/// ```no_run
/// let code = alloc_soak::cli::main_from([
///     "alloc-soak", "--server", "127.0.0.1:7070", "--admin", "127.0.0.1:7171",
///     "--send", r"set k{key} v{cycle}\nquit\n", "--until", r"bye\n",
/// ]);
/// assert!(code <= 2);
/// ```
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli: Cli = match parse_from(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let outcome = cli
        .soak
        .options()
        .and_then(|o| crate::soak::run(&o).map(|r| (r, o.out)));
    match outcome {
        Ok((r, out)) => {
            print_outcome(&r, &out);
            r.exit_code(cli.soak.max_bytes_per_cycle)
        }
        Err(e) => {
            eprintln!("alloc-soak: {e}");
            2
        }
    }
}

/// Parses the process's arguments as `T`, for both commands: help and
/// `--version` print to standard output and give `Err` of exit code 0; a
/// usage error prints to standard error and gives `Err` of exit code 2.
pub fn parse_args<T: Parser>() -> Result<T, std::process::ExitCode> {
    parse_from(std::env::args_os()).map_err(std::process::ExitCode::from)
}

/// [`parse_args`] on `args`, the exit code as a number.
fn parse_from<T: Parser, I, A>(args: I) -> Result<T, u8>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        u8::from(e.use_stderr()) * 2
    })
}

/// The `alloc-soak` examples of [`EXAMPLES`], each as the arguments a POSIX
/// shell passes for it (the program's name first): lines ending in `\`
/// continue, single quotes group words and are removed, a backslash
/// outside quotes escapes the next character.
///
/// ```
/// let first = &alloc_soak::cli::examples()[0];
/// assert_eq!(first[0], "alloc-soak");
/// assert!(first.windows(2).any(|w| w == ["--http", "GET /hello/u{cycle}"]));
/// ```
#[must_use]
pub fn examples() -> Vec<Vec<String>> {
    let joined = EXAMPLES.replace("\\\n", " ");
    joined
        .lines()
        .map(shell_words)
        .filter(|w| w.first().is_some_and(|p| p == "alloc-soak"))
        .collect()
}

/// Splits a shell line into words: single quotes group and are removed; a
/// backslash outside quotes escapes the next character.
fn shell_words(line: &str) -> Vec<String> {
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

/// Prints the report, the throughput, the verdict line and the tool's
/// memory, as both commands do.
pub fn print_outcome(r: &SoakOutcome, out: &std::path::Path) {
    print!("{}", alloc_report::render::report_text(&r.report));
    // Said when connections carried more than one cycle (keep-alive).
    let on = match r.connections {
        c if c == 0 || c == r.cycles => String::new(),
        c => format!(" on {c} connections"),
    };
    println!(
        "\n{} cycles{on} in {:.2} s ({:.0} cycles/s, snapshots included; {:.0}/s in the batches), \
         {} failed and retried",
        r.cycles,
        r.seconds,
        r.cycles_per_second(),
        r.cycles_per_batch_second(),
        r.failed
    );
    println!("{}", r.verdict_line());
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "tool memory in the server: {:.2} MiB at the first snapshot, {:.2} MiB at the last, {:.2} MiB at most",
        mib(r.tool_memory.first),
        mib(r.tool_memory.last),
        mib(r.tool_memory.max)
    );
    if let (Some(a), Some(b)) = r.rss {
        println!(
            "server RSS: {:.1} MiB at the first snapshot, {:.1} MiB at the last",
            mib(a),
            mib(b)
        );
    }
    println!("series and report under {}", out.display());
}

/// `\n`, `\r`, `\t` and `\\` to their bytes; other text as it is.
#[must_use]
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{examples, parse_from, shell_words, unescape, Cli};

    #[test]
    fn threshold_is_an_alias_of_max_bytes_per_cycle() {
        let gate = |flag: &str, n: &str| {
            let args = [
                "alloc-soak",
                "--server",
                "127.0.0.1:1",
                "--admin",
                "127.0.0.1:2",
                flag,
                n,
            ];
            parse_from::<Cli, _, _>(args).map(|c| c.soak.max_bytes_per_cycle)
        };
        assert_eq!(gate("--max-bytes-per-cycle", "64"), Ok(64.0));
        assert_eq!(gate("--threshold", "64"), Ok(64.0));
        assert_eq!(gate("--max-bytes-per-cycle", "-1"), Err(2));
    }

    #[test]
    fn shell_words_as_a_shell_splits() {
        assert_eq!(
            shell_words(r"a 'b c' --send 'x\ny' d\ e ''"),
            ["a", "b c", "--send", r"x\ny", "d e", ""]
        );
    }

    #[test]
    fn examples_join_continued_lines() {
        let all = examples();
        assert_eq!(all.len(), 2, "{all:?}");
        let second = &all[1];
        assert_eq!(second[..3], ["alloc-soak", "--server", "127.0.0.1:7070"]);
        assert!(second.ends_with(&[
            "--send".to_string(),
            r"set k{key} v{cycle}\nquit\n".to_string(),
            "--until".to_string(),
            r"bye\n".to_string(),
            "--hold".to_string(),
            "100".to_string(),
        ]));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"get a\nquit\r\n"), b"get a\nquit\r\n");
        assert_eq!(unescape(r"a\\b\x\"), b"a\\b\\x\\");
        assert_eq!(unescape("é"), "é".as_bytes());
    }
}
