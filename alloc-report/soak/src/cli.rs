//! The soak's command-line arguments (clap), shared by the `alloc-soak`
//! binary and `demo-server soak`, and what a soak prints.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::client::Script;
use crate::soak::{SoakOptions, SoakOutcome};

/// What to soak and how; `--send` or `--http` say what a cycle does (the
/// demo server's protocol without either).
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The server's address: what each cycle connects to.
    #[arg(long)]
    pub server: SocketAddr,
    /// The server's alloc-admin endpoint.
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
    /// Where the series and the report go.
    #[arg(long, default_value = "target/soak")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Symbolise the server's stacks with this file for the module of the
    /// same GNU build id (the server's binary was rebuilt or moved since it
    /// started); repeatable.
    #[arg(long, value_name = "FILE")]
    pub binary: Vec<PathBuf>,
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
    /// Leak threshold in bytes per cycle: exit 1 only when the whole heap
    /// leaks more than this (as `alloc-report check --threshold`).
    #[arg(long, default_value_t = 0.0)]
    pub threshold: f64,
}

impl SoakArgs {
    /// The soak options these arguments describe.
    pub fn options(&self) -> Result<SoakOptions, String> {
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
                return Err(format!(
                    "--http {http:?}: expected METHOD PATH, e.g. 'GET /'"
                ));
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
        Ok(o)
    }
}

/// Parses the process's arguments as `T`, for both commands: help and
/// `--version` print to standard output and give `Err` of exit code 0; a
/// usage error prints to standard error and gives `Err` of exit code 2.
pub fn parse_args<T: clap::Parser>() -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            std::process::ExitCode::from(2)
        } else {
            std::process::ExitCode::SUCCESS
        }
    })
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
    use super::unescape;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"get a\nquit\r\n"), b"get a\nquit\r\n");
        assert_eq!(unescape(r"a\\b\x\"), b"a\\b\\x\\");
        assert_eq!(unescape("é"), "é".as_bytes());
    }
}
