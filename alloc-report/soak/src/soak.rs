//! The soak driver: cycles against any server that mounts the alloc-admin
//! endpoint, a snapshot at quiescence after every batch, and the report.
//!
//! 1. Reads the server's open connections before anything else (the
//!    baseline), opens `hold` idle connections that stay open throughout,
//!    and runs `warmup` cycles that are not measured (lazy one-time
//!    allocations of the server land before the first snapshot), in two
//!    halves, each after quiescence, an epoch and a snapshot that is not
//!    kept: alloc-core's default capture policy looks at what survives of
//!    the epochs between a server's last two snapshots, so a leaky server
//!    records every allocation from the first measured batch on.
//! 2. Waits until open connections are back to baseline + `hold`, closes an
//!    epoch and takes the first snapshot.
//! 3. Per batch: runs `batch` cycles at `concurrency` (each closed with
//!    RST), waits for quiescence again, closes an epoch, and takes a
//!    snapshot carrying the number of cycles done.
//! 4. Each snapshot goes one way: the endpoint serves a snapshot file's
//!    bytes, the client decodes and checks them once
//!    ([`AdminClient::snapshot`]), the file is written atomically as the
//!    next file of the series (`series/000000.json`, ...), and the decoded
//!    snapshot is pushed into an [`Analyzer`]. Raw stacks are symbolised
//!    first, from the server's binaries on disk (`alloc_report::Symbolizer`,
//!    debug information parsed once per soak), and the file then holds the
//!    symbolised snapshot, so the series stays readable after the server is
//!    rebuilt; a snapshot without stacks is written as the bytes served.
//!    The workspace roots of its sites' files are looked up on disk
//!    (`alloc_report::WorkspaceFinder`) before the push, so that sites
//!    are named relative to their workspace.
//! 5. The report (`report.txt`, `report.json`, `report.html`, under the
//!    output directory) is that analyser's: the series is never read back.
//!
//! **The output directory.** A soak deletes nothing it did not write.
//! Before it starts, it refuses an output directory that holds anything in
//! `series/` or a report file (an earlier soak, or someone's files), unless
//! [`SoakOptions::replace`] is set; then it deletes that earlier soak's own
//! files only: in `series/`, regular files named `NNNNNN.json` that begin
//! as a snapshot file does, and the writer's temporary files; beside it,
//! `report.txt`, `report.json` and `report.html`. Other files are left
//! where they are, and a file in `series/` with a series file's name that
//! is not a snapshot file is refused even then.
//!
//! **One run.** Each snapshot received is checked against the ones before
//! it ([`SeriesCheck`]: the server's run identity, epochs, cycles and
//! timestamps never going backwards) before it is written or analysed: a
//! server restarted mid-soak ends the soak with an error naming the file
//! the snapshot would have been.

use crate::admin_client::{AdminClient, ReceivedSnapshot};
use crate::client::{reset, CycleStats, LoadClient, Script};
use crate::SoakError;
use alloc_report::{Analyzer, ClassifyOptions, Report, Symbolizer, Verdict, WorkspaceFinder};
use alloc_snapshot::file::{encode, is_series_name, write_atomic, SeriesCheck, SOAK_SERIES};
use alloc_snapshot::{SeriesWriter, SnapshotFile};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to soak and how: [`SoakOptions::new`], then set the fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SoakOptions {
    /// The server's address (what each cycle connects to).
    pub server: SocketAddr,
    /// The server's admin endpoint.
    pub admin: SocketAddr,
    /// Where the admin routes are mounted at `admin` (`""`: the endpoint's
    /// own port; `/admin` when nested in the server's router).
    pub admin_prefix: String,
    /// Measured cycles.
    pub cycles: u64,
    /// Cycles per epoch (and per snapshot).
    pub batch: u64,
    /// Connections in flight at once (one cycle in flight on each).
    pub concurrency: usize,
    /// Cycles one connection may carry in a row (1: a connection per
    /// cycle); more needs a script that can keep a connection
    /// ([`Script::can_keep_alive`]: HTTP, or raw TCP with an `until`).
    pub requests_per_connection: u64,
    /// Unmeasured cycles before the first snapshot.
    pub warmup: u64,
    /// Idle connections held open for the whole soak.
    pub hold: usize,
    /// Where the series and the report go.
    pub out: PathBuf,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// The longest a batch (its cycles, or quiescence) may take.
    pub batch_timeout: Duration,
    /// What each cycle sends and waits for.
    pub script: Script,
    /// Run on another thread during each measured batch, with the cycles
    /// done before it (fault injection); an error ends the soak.
    pub during_batch: Option<BatchHook>,
    /// Files to symbolise the server's modules with, matched by build id
    /// (`alloc-report --binary`); other modules are read from the paths the
    /// server loaded them from.
    pub binaries: Vec<PathBuf>,
    /// Which frame of a stack is its site (`alloc-report --site-rule`).
    pub site_rule: alloc_report::SiteRule,
    /// Ask for a retention scan with the last snapshot
    /// (`/snapshot?retention=1`), so that the report names each leak
    /// site's cause (on by default).
    pub retention: bool,
    /// Replace an earlier soak in `out`: delete its own files (series
    /// files and reports, see the module docs) and nothing else. Without
    /// it, an `out` that holds any of them, or anything in `series/`, is
    /// refused.
    pub replace: bool,
    /// Sent to the admin endpoint as `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// How long one admin call keeps retrying a busy or silent endpoint
    /// ([`crate::admin_client::DEFAULT_RETRY_FOR`]).
    pub admin_retry_for: Duration,
}

/// Work run beside each measured batch; see [`SoakOptions::during_batch`].
/// Its error is the user's own words, which end the soak as a
/// [`SoakError::BatchHook`].
#[derive(Clone)]
pub struct BatchHook(pub Arc<dyn Fn(u64) -> Result<(), String> + Send + Sync>);

impl fmt::Debug for BatchHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BatchHook")
    }
}

impl SoakOptions {
    /// Options with the demo's defaults for the given addresses.
    pub fn new(server: SocketAddr, admin: SocketAddr, out: PathBuf) -> Self {
        SoakOptions {
            server,
            admin,
            admin_prefix: String::new(),
            cycles: 2000,
            batch: 100,
            concurrency: 16,
            requests_per_connection: 1,
            warmup: 100,
            hold: 0,
            out,
            progress: false,
            batch_timeout: Duration::from_secs(60),
            script: Script::Demo,
            during_batch: None,
            binaries: Vec::new(),
            site_rule: alloc_report::SiteRule::default(),
            retention: true,
            replace: false,
            admin_token: None,
            admin_retry_for: crate::admin_client::DEFAULT_RETRY_FOR,
        }
    }
}

/// The tool's own memory over a soak, from the snapshots' `tool` usage.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToolMemory {
    /// Tool live bytes + metadata at the first snapshot.
    pub first: u64,
    /// ... at the last snapshot.
    pub last: u64,
    /// ... the most at any snapshot.
    pub max: u64,
}

/// What a soak found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SoakOutcome {
    /// The analysis of the series.
    pub report: Report,
    /// The verdict on the whole heap (exact counters).
    pub verdict: Verdict,
    /// The call site with the most surviving bytes per cycle (`file:line
    /// function`), `None` when nothing survives or snapshots carry no sites.
    pub top_site: Option<String>,
    /// Measured cycles done.
    pub cycles: u64,
    /// Cycles that failed and were retried.
    pub failed: u64,
    /// Connections the measured cycles opened (0 for a closure's cycles).
    pub connections: u64,
    /// Seconds from the first to the last snapshot (cycles, quiescence,
    /// epochs and snapshots).
    pub seconds: f64,
    /// Of those, the seconds in the batches' cycles (quiescence waits,
    /// epochs and snapshots left out).
    pub batch_seconds: f64,
    /// The tool's memory in the server.
    pub tool_memory: ToolMemory,
    /// The server's RSS at the first and the last snapshot.
    pub rss: (Option<u64>, Option<u64>),
}

impl SoakOutcome {
    /// Measured cycles per second, snapshots included.
    #[must_use]
    pub fn cycles_per_second(&self) -> f64 {
        self.cycles as f64 / self.seconds.max(1e-9)
    }

    /// Measured cycles per second of the batches alone: the load the
    /// client put on the server while it ran.
    #[must_use]
    pub fn cycles_per_batch_second(&self) -> f64 {
        self.cycles as f64 / self.batch_seconds.max(1e-9)
    }

    /// Whether the whole heap or any site leaks more than
    /// `max_bytes_per_cycle` ([`Report::leaks`], as `alloc-report check
    /// --max-bytes-per-cycle`).
    #[must_use]
    pub fn leaks(&self, max_bytes_per_cycle: f64) -> bool {
        self.report.leaks(max_bytes_per_cycle)
    }

    /// The process exit code of a soak: 0 clean, 1 when the whole heap or
    /// a site leaks more than `max_bytes_per_cycle` (2, an error, is the
    /// caller's).
    #[must_use]
    pub fn exit_code(&self, max_bytes_per_cycle: f64) -> u8 {
        u8::from(self.leaks(max_bytes_per_cycle))
    }

    /// One line: the verdict, its figures and the top call site.
    #[must_use]
    pub fn verdict_line(&self) -> String {
        format!(
            "verdict (whole heap): {} {:.1} bytes/cycle {:.2} blocks/cycle; top site: {}",
            self.verdict.kind.as_str(),
            self.verdict.bytes_per_cycle,
            self.verdict.blocks_per_cycle,
            self.top_site.as_deref().unwrap_or("-")
        )
    }
}

/// The call site with the most surviving bytes per cycle; ties (plateaus)
/// go to the most surviving bytes at the end.
pub fn top_site(report: &Report) -> Option<String> {
    report
        .sites
        .iter()
        .filter(|v| v.site != alloc_report::analysis::ALL_SITES && v.final_survivors.bytes > 0)
        .max_by(|a, b| {
            a.bytes_per_cycle
                .total_cmp(&b.bytes_per_cycle)
                .then(a.final_survivors.bytes.cmp(&b.final_survivors.bytes))
        })
        .map(|v| v.site.clone())
}

/// Runs a soak; see the module docs: the options checked, the output
/// directory cleared, the baseline and the held connections, the warm-up,
/// then a batch of cycles and a snapshot at quiescence until the cycles
/// are done, and the report.
pub fn run(o: &SoakOptions) -> Result<SoakOutcome, SoakError> {
    check_options(o)?;
    clear_earlier_soak(&o.out, o.replace)?;
    crate::fd_limit::raise(o.hold as u64 + o.concurrency as u64 + 64);
    let symbols = symbolizer(o)?;
    let admin = AdminClient::with_prefix(o.admin, &o.admin_prefix)
        .token(o.admin_token.clone())
        .retry_for(o.admin_retry_for);
    let baseline = admin.open_connections()?;
    let held = hold_connections(o.server, o.hold, matches!(o.script, Script::Demo))?;
    let expected = baseline + o.hold as u64;
    let mut client = LoadClient::new(o.server, o.script.clone())
        .map_err(|e| SoakError::Cycles(format!("client: {e}")))?
        .requests_per_connection(o.requests_per_connection);
    let mut load = warm_up(o, &admin, expected, &mut client)?;

    let mut series = Recorder::create(o, &admin, expected, symbols)?;
    let bar = progress_bar(o.progress, o.cycles);
    let started = Instant::now();
    series.record(0)?;
    let mut done = 0u64;
    let mut in_batches = Duration::ZERO;
    while done < o.cycles {
        let n = o.batch.min(o.cycles - done);
        let batch_started = Instant::now();
        let s = run_batch(o, &mut client, done, load.next, n)?;
        in_batches += batch_started.elapsed();
        load.add(&s);
        done += n;
        series.record(done)?;
        bar.inc(n);
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    for s in &held {
        reset(s);
    }
    drop(held);

    let report = series.analyzer.finish();
    write_reports(&o.out, &report)?;
    Ok(SoakOutcome {
        verdict: report.overall.clone(),
        top_site: top_site(&report),
        report,
        cycles: done,
        failed: load.failed,
        connections: load.connections,
        seconds,
        batch_seconds: in_batches.as_secs_f64(),
        tool_memory: series.tool,
        rss: series.rss,
    })
}

/// Refuses options that cannot make a soak.
fn check_options(o: &SoakOptions) -> Result<(), SoakError> {
    if o.cycles == 0 || o.batch == 0 || o.concurrency == 0 {
        return Err(SoakError::Options(
            "cycles, batch and concurrency must be at least 1".to_string(),
        ));
    }
    if o.requests_per_connection == 0 {
        return Err(SoakError::Options(
            "requests per connection must be at least 1".to_string(),
        ));
    }
    if o.requests_per_connection > 1 && !o.script.can_keep_alive() {
        return Err(SoakError::Options(format!(
            "{} requests per connection needs HTTP (--http) or raw TCP with an end marker \
             (--send with --until); the demo protocol and answers that end when the server \
             closes take one connection per cycle",
            o.requests_per_connection
        )));
    }
    Ok(())
}

/// The symboliser of the soak's snapshots, with its site rule and the
/// `--binary` files.
fn symbolizer(o: &SoakOptions) -> Result<Symbolizer, SoakError> {
    let mut symbols = Symbolizer::new();
    symbols.set_site_rule(o.site_rule);
    for b in &o.binaries {
        symbols.use_file(b).map_err(SoakError::Binary)?;
    }
    Ok(symbols)
}

/// The cycles run so far: failed ones, connections, the next number.
#[derive(Default)]
struct Load {
    failed: u64,
    connections: u64,
    next: u64,
}

impl Load {
    fn add(&mut self, s: &CycleStats) {
        self.failed += s.failed;
        self.connections += s.connections;
        self.next = s.next;
    }
}

/// The warm-up's cycles, in two halves, each after an unkept snapshot:
/// every epoch the policy looks at then holds cycles (see the module
/// docs). Their connections are not counted.
fn warm_up(
    o: &SoakOptions,
    admin: &AdminClient,
    expected: u64,
    client: &mut LoadClient,
) -> Result<Load, SoakError> {
    let mut load = Load::default();
    if o.warmup == 0 {
        return Ok(load);
    }
    let half = o.warmup / 2;
    for n in [half, o.warmup - half] {
        admin.wait_for_connections(expected, o.batch_timeout)?;
        admin.advance_epoch()?;
        admin.snapshot(None)?;
        let s = client.run(load.next, n, o.concurrency, o.batch_timeout)?;
        load.failed += s.failed;
        load.next = s.next;
    }
    Ok(load)
}

/// One measured batch of `n` cycles from `next`, with the work beside it
/// ([`SoakOptions::during_batch`]), `done` cycles before it.
fn run_batch(
    o: &SoakOptions,
    client: &mut LoadClient,
    done: u64,
    next: u64,
    n: u64,
) -> Result<CycleStats, SoakError> {
    std::thread::scope(|scope| {
        let hook = o
            .during_batch
            .as_ref()
            .map(|h| scope.spawn(move || (h.0)(done)));
        let ran = client.run(next, n, o.concurrency, o.batch_timeout);
        match hook.map(|h| h.join()) {
            None | Some(Ok(Ok(()))) => ran,
            Some(Ok(Err(e))) => Err(SoakError::BatchHook(format!(
                "during the batch after {done} cycles: {e}"
            ))),
            Some(Err(_)) => Err(SoakError::BatchHook("the batch hook panicked".to_string())),
        }
    })
}

/// The kept series: each snapshot at quiescence checked against the ones
/// before, symbolised, written and analysed; the tool's memory and the
/// server's RSS along the way.
struct Recorder<'a> {
    o: &'a SoakOptions,
    admin: &'a AdminClient,
    /// The open connections at quiescence.
    expected: u64,
    symbols: Symbolizer,
    series_dir: PathBuf,
    writer: SeriesWriter,
    check: SeriesCheck,
    analyzer: Analyzer,
    roots: WorkspaceFinder,
    tool: ToolMemory,
    rss: (Option<u64>, Option<u64>),
}

impl<'a> Recorder<'a> {
    fn create(
        o: &'a SoakOptions,
        admin: &'a AdminClient,
        expected: u64,
        symbols: Symbolizer,
    ) -> Result<Self, SoakError> {
        let series_dir = o.out.join(SOAK_SERIES);
        let writer = SeriesWriter::create(&series_dir)
            .map_err(|e| SoakError::file("create", &series_dir, e))?;
        Ok(Recorder {
            o,
            admin,
            expected,
            symbols,
            series_dir,
            writer,
            check: SeriesCheck::new(),
            analyzer: Analyzer::new(&ClassifyOptions::default()),
            roots: WorkspaceFinder::new(),
            tool: ToolMemory::default(),
            rss: (None, None),
        })
    }

    /// The snapshot after `done` cycles, at quiescence, kept.
    fn record(&mut self, done: u64) -> Result<(), SoakError> {
        let (file, bytes) = self.fetch(done)?;
        let t = &file.snapshot.tool;
        let used = t.live_bytes + t.metadata_bytes;
        if done == 0 {
            self.tool.first = used;
            self.rss.0 = file.snapshot.rss_bytes;
        }
        self.tool.last = used;
        self.tool.max = self.tool.max.max(used);
        self.rss.1 = file.snapshot.rss_bytes;
        self.writer
            .append_bytes(&bytes)
            .map_err(|e| SoakError::file("write to", &self.series_dir, e))?;
        self.roots.scan(&file.snapshot);
        self.analyzer.push_in(&file, self.roots.workspaces());
        Ok(())
    }

    /// Waits for quiescence, closes an epoch and takes the snapshot (with
    /// a retention scan at the last one, if asked), checks that it
    /// continues the series and symbolises it: the file and the bytes to
    /// write (as served when there is nothing to symbolise).
    fn fetch(&mut self, done: u64) -> Result<(SnapshotFile, Vec<u8>), SoakError> {
        self.admin
            .wait_for_connections(self.expected, self.o.batch_timeout)?;
        self.admin.advance_epoch()?;
        let last = self.o.retention && done >= self.o.cycles;
        let ReceivedSnapshot { mut file, bytes } = self.admin.snapshot_with(Some(done), last)?;
        let path = self.writer.next_path();
        self.check.next(&path, &file).map_err(|e| {
            SoakError::Snapshot(format!(
                "the snapshot after {done} cycles (not written to {}): {e}",
                path.display()
            ))
        })?;
        if file.snapshot.stacks.is_empty() {
            return Ok((file, bytes));
        }
        self.symbols
            .symbolize(&mut file.snapshot)
            .map_err(|e| SoakError::Snapshot(format!("the snapshot after {done} cycles: {e}")))?;
        let bytes = encode(&file);
        Ok((file, bytes))
    }
}

fn progress_bar(wanted: bool, len: u64) -> ProgressBar {
    if !wanted {
        return ProgressBar::hidden();
    }
    // Draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} cycles {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Opens `n` connections that stay idle; with the demo's protocol, each
/// reads its greeting first (so the server surely holds its state).
/// Otherwise the quiescence wait (open connections back to baseline +
/// `hold`) is what tells that the server has them all.
fn hold_connections(
    server: SocketAddr,
    n: usize,
    greeting: bool,
) -> Result<Vec<TcpStream>, SoakError> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let s = TcpStream::connect_timeout(&server, Duration::from_secs(10))
            .map_err(|e| SoakError::Cycles(format!("holding connection {i} of {n}: {e}")))?;
        if !greeting {
            held.push(s);
            continue;
        }
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| SoakError::Cycles(format!("holding connection {i}: {e}")))?;
        let mut line = String::new();
        BufReader::new(&s)
            .read_line(&mut line)
            .map_err(|e| SoakError::Cycles(format!("holding connection {i}: no greeting: {e}")))?;
        if !line.starts_with("hello ") {
            return Err(SoakError::Cycles(format!(
                "holding connection {i}: greeting {line:?}"
            )));
        }
        held.push(s);
    }
    Ok(held)
}

/// The report files a soak writes into its output directory.
pub const REPORT_FILES: [&str; 3] = ["report.txt", "report.json", "report.html"];

/// Writes `report.txt`, `report.json` and `report.html` into `dir`.
pub fn write_reports(dir: &Path, report: &Report) -> Result<(), SoakError> {
    use alloc_report::render::{report_html, report_json, report_text};
    let [txt, json, html] = REPORT_FILES;
    write_files(
        dir,
        &[
            (txt, report_text(report).as_bytes()),
            (json, report_json(report).as_bytes()),
            (html, report_html(report).as_bytes()),
        ],
    )
}

/// What an output directory holds of an earlier soak's, and of others'.
#[derive(Default)]
struct Earlier {
    /// Files a soak wrote: series files, their temporaries, reports.
    own: Vec<PathBuf>,
    /// Anything else in `series/`.
    foreign: Vec<PathBuf>,
    /// Of `foreign`, what a new series or report would overwrite or
    /// collide with (a series file's name that is not a snapshot file, a
    /// report's name that is not a regular file).
    in_the_way: Vec<PathBuf>,
}

/// Whether `name` in `series/` is one a soak writes: a series file, or the
/// atomic writer's temporary file of one (`.000003.json.tmp-PID-N`).
fn soak_series_name(name: &str) -> bool {
    is_series_name(name)
        || name
            .strip_prefix('.')
            .and_then(|n| n.split_once(".tmp-"))
            .is_some_and(|(n, _)| is_series_name(n))
}

/// Whether the regular file at `path` begins as a snapshot file does.
fn is_snapshot_file(path: &Path) -> bool {
    use std::io::Read;
    const START: &[u8] = b"{\"format\":\"alloc-snapshot\",";
    let mut head = [0u8; START.len()];
    alloc_snapshot::file::open_regular(path)
        .ok()
        .and_then(|mut f| f.read_exact(&mut head).ok())
        .is_some_and(|()| head == START)
}

/// Lists what `out` holds of an earlier soak's ([`Earlier`]).
fn earlier_soak(out: &Path) -> Result<Earlier, SoakError> {
    let mut found = Earlier::default();
    let series = out.join(SOAK_SERIES);
    let entries = match std::fs::read_dir(&series) {
        Ok(entries) => Some(entries),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(SoakError::file("list", &series, e)),
    };
    for entry in entries.into_iter().flatten() {
        let entry = entry.map_err(|e| SoakError::file("list", &series, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_str().unwrap_or("");
        // Not followed: a link is never a soak's.
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && soak_series_name(name) && (!is_series_name(name) || is_snapshot_file(&path)) {
            found.own.push(path);
        } else {
            if is_series_name(name) {
                found.in_the_way.push(path.clone());
            }
            found.foreign.push(path);
        }
    }
    for name in REPORT_FILES {
        let path = out.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => found.own.push(path),
            Ok(_) => found.in_the_way.push(path),
            Err(_) => {}
        }
    }
    found.own.sort();
    found.foreign.sort();
    Ok(found)
}

/// Makes `out` ready for a new soak (see the module docs): refuses it if
/// it holds an earlier soak or others' files in `series/`, unless
/// `replace`; then deletes the earlier soak's own files, one by one.
fn clear_earlier_soak(out: &Path, replace: bool) -> Result<(), SoakError> {
    let found = earlier_soak(out)?;
    let some = |files: &[PathBuf]| {
        let names: Vec<String> = files
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        let more = files.len().saturating_sub(3);
        if more > 0 {
            format!("{} and {more} more", names.join(", "))
        } else {
            names.join(", ")
        }
    };
    if !found.in_the_way.is_empty() {
        return Err(SoakError::Occupied(format!(
            "--out {}: {} would be overwritten or mixed into the new soak's files but was not \
             written by a soak; move it, or choose another --out",
            out.display(),
            some(&found.in_the_way)
        )));
    }
    let occupied = !found.own.is_empty() || !found.foreign.is_empty();
    if occupied && !replace {
        let mut holds = Vec::new();
        if !found.own.is_empty() {
            holds.push(format!("an earlier soak's files ({})", some(&found.own)));
        }
        if !found.foreign.is_empty() {
            holds.push(format!(
                "files a soak did not write in {} ({})",
                out.join(SOAK_SERIES).display(),
                some(&found.foreign)
            ));
        }
        return Err(SoakError::Occupied(format!(
            "--out {} holds {}; pass --replace to delete the earlier soak's series and report \
             files only (others are kept), or choose another --out",
            out.display(),
            holds.join(" and ")
        )));
    }
    for path in &found.own {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SoakError::file("delete", path, e)),
        }
    }
    Ok(())
}

/// Writes each `(name, bytes)` into `dir` (created if missing), each
/// atomically ([`write_atomic`]); the error names the file.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), SoakError> {
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomic(&path, bytes).map_err(|e| SoakError::file("write", &path, e))?;
    }
    Ok(())
}
