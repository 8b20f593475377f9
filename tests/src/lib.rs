//! Shared helpers of alloc-core's integration tests: a model of live counts
//! per birth epoch, a checker that compares a [`Snapshot`] with the model,
//! a tiny PRNG, byte patterns and process-level safety nets.
//!
//! Every test counts allocations exactly, so each runs in its own process: a
//! `[[test]]` with `harness = false` whose `main` installs
//! `EpochAlloc<Jemalloc>` as the global allocator. Tests measure differences
//! and keep their own bookkeeping out of the user's counts (preallocated, or
//! inside [`alloc_core::untracked`]).
//!
//! # Test index (`tests/tests/`)
//!
//! - `stress_model.rs`: 8 threads of random alloc / alloc_zeroed / realloc /
//!   dealloc, frees handed to other threads, epochs advanced between phases
//!   (then concurrently, in the last phases); every epoch's live counts equal
//!   the model's, and are zero at the end. Runs once per sampling mode (off,
//!   every 64 KiB, every allocation), each in its own process.
//! - `alignment.rs`: every power-of-two alignment 1..=65536 with sizes around
//!   it, through alloc, alloc_zeroed and realloc: aligned, contents kept,
//!   exact counts in the birth epoch, and in the current epoch after a
//!   realloc moved the block there.
//! - `huge_layouts.rs`: layouts near `isize::MAX` (alloc, alloc_zeroed,
//!   realloc) return null without panicking and leave every counter as it
//!   was, and a sampled block's sample where it was.
//! - `thread_churn.rs`: 10,000 short-lived threads whose `thread_local!`
//!   destructors allocate, free and leak a known amount; the destructors'
//!   epoch holds exactly the leaks, a concurrent snapshot loop never hangs,
//!   slots are reused (bounded metadata).
//! - `fork_child.rs`: `fork()` while other threads allocate and snapshot; the
//!   child frees the forking thread's blocks and sees exact counts, 50 times,
//!   under a watchdog.
//! - `epoch_semantics.rs`: birth-epoch rules (free later, realloc later moves
//!   the block to the current epoch, free on another thread), increasing epochs, folding beyond the exact window
//!   with exact totals, a million advances with bounded snapshot and metadata.
//! - `tool_allocations.rs`: snapshots and `untracked` allocations are the
//!   tool's, never the user's.
//! - `jemalloc_stats.rs` (feature `jemalloc-stats`, run by `.ci/run`): RSS
//!   and jemalloc statistics in the snapshot; the
//!   cost of a snapshot does not depend on the number of live blocks.
//! - `sampling_sites.rs`: sampled call sites name this file and line; exact
//!   figures when every allocation is sampled, estimates within 5 standard
//!   errors at an interval ([`estimates`]); histograms; symbolising is the
//!   tool's, not the user's.
//! - `leak_cases.rs`: a collection of leaks (a global container, an `Rc`
//!   cycle, `Box::leak`, a per-key registry, a leak on another thread) and
//!   non-leaks (a cache that fills and holds, a pool that warms up, a buffer
//!   at its high-water mark, churn only), each soaked for 20,000 cycles at
//!   the defaults in its own process: each leak `leak` at its lines within
//!   10%, no `leak` site for a non-leak.
//! - `tokio_library_leaks.rs`: a tokio TCP service whose leaks are made
//!   through libraries (a broadcast channel, a `Bytes` slice keeping its
//!   buffer, a task that never finishes, a `JoinSet` never joined, a key
//!   per request in an unbounded `mini_moka` cache), each soaked for
//!   20,000 cycles at the defaults in its own process: the biggest leak
//!   site is the test's own line (naming the library call), the file's
//!   leak sites add up to the whole heap within 10%; the controls (the same
//!   calls with their results dropped, a bounded cache) have no `leak`.
//! - `retention_causes.rs`: why each leak is alive: static `Vec`, `HashMap`
//!   and growing `String`, `Rc` and cross-thread `Arc` cycles, `Box::leak`,
//!   `mem::forget`, a `thread_local!` `Vec`, a worker's local `Vec`, an
//!   undrained channel, a pending tokio task, each soaked for 20,000 cycles
//!   at the defaults with a retention scan at the end: each leak site's
//!   cause (share at least 0.9; a static's path names it); no cause on a
//!   site that is not a leak.
//! - `retention_stress.rs`: 1,000 retention scans while threads allocate,
//!   link, free and unmap (jemalloc with `retain:false`), threads come and
//!   go and a thread maps and unmaps memory: no fault, each scan within its
//!   budget, a static's blocks always found held by it.
//! - `demo_causes.rs`: soaks of the demo's patterns at `demo`'s defaults:
//!   the write-up's causes (global list and logger registry: their statics;
//!   the connection/handler cycle: a cycle of both sites); none for the
//!   fixed variants.
//! - `default_soak_sites.rs`: at the defaults, a 20,000-cycle soak run
//!   through the API names a 16-byte leak among 64 KiB of churn at its
//!   line, `leak` within 10%; a cache that fills and holds is no leak.
//! - `sampling_realloc.rs`: a realloc is sampled at the line that resized
//!   the block, for its new size: 20,000 grown blocks estimated there within
//!   5 standard errors (from the sample count), none left at the allocating
//!   line; blocks of 64 KiB and more always sampled, exactly.
//! - `sampling_bounds.rs`: twice `MAX_STACKS` distinct stacks and more live
//!   sampled blocks than `MAX_SAMPLED_BLOCKS`: overflow counted, counts exact,
//!   metadata under its bound.
//! - `sampling_no_deadlock.rs`: every allocation sampled while other threads
//!   panic and unwind, capture `std::backtrace::Backtrace`, spawn threads and
//!   symbolise snapshots, round after round under a watchdog.
//! - `admin_hostile.rs`: the admin endpoint among idle and trickling local
//!   clients, browser attacks (foreign `Host`, cross-site `Origin`), strict
//!   HTTP and the optional token.
//! - `signal_alloc.rs`: signal handlers that allocate, reallocate and free
//!   while their thread is inside the tool (sampling, a sampled free, a
//!   snapshot's locks), 1,000 signals on each of two threads in every
//!   sampling mode: no deadlock, and exact counts after.
//! - `sampling_fork.rs`: `fork()` while other threads sample; the child
//!   snapshots, samples and exits cleanly, 50 times.
//! - `growth_vec_push.rs`, `growth_map_insert.rs`,
//!   `growth_string_append.rs`: a collection created before the soak that
//!   only grows (a `static Mutex<Vec<u64>>` pushed to, a `HashMap<u64, u64>`
//!   inserted into, a `String` appended to, once per cycle) over a
//!   20,000-cycle in-process soak at the default sampling: the whole heap
//!   and the growing line are `leak` of existing blocks that grow, within a
//!   factor of 2 of the bytes added per cycle (helpers in
//!   `growth_support/`).
//! - `growth_vec_reused.rs`, `growth_map_capped.rs`,
//!   `growth_shrink_after_burst.rs`: the same soak with a buffer cleared and
//!   reused, a map capped at 1,000 entries, a buffer released with
//!   `shrink_to_fit` after a burst: no `leak` anywhere.
//!
//! The demo-server's tests (each binary is also the server it soaks over
//! loopback TCP; helpers in `demo_support/`):
//!
//! - `demo_patterns.rs`: a short soak of every pattern: leaky is `leak`
//!   within 10% of the documented bytes per connection with the top site in
//!   the pattern's file, fixed is `ok`, `none` is `plateau`.
//! - `demo_html.rs`: the `cycle` pattern's leaky and fixed `report.html` in
//!   headless Chromium: the leak site open on its stack, own frame and
//!   source line, the birth-epoch chart, the icicle graph and its search,
//!   no console message; screenshots kept under `target/tmp/demo-html/`.
//! - `demo_sampled.rs`: the same leaks found with interval sampling (8 KiB)
//!   over the demo's 2,000 cycles: the top site in the pattern's file and
//!   `leak`; the estimated bytes kept by the pattern's file (all its sites,
//!   whatever their verdicts) within 5 standard errors of the exact
//!   survivors; exact bytes and blocks per cycle as documented.
//! - `tidy.rs`: every file here has its `[[test]]` entry with
//!   `harness = false`, a `main`, a `//!` opening and a line in this index.
//! - `tidy_history.rs`: no dates and no commit hashes in the workspace's
//!   Markdown (RESULTS.md and CHANGELOG.md aside), its crates' `src/` and
//!   examples, and its manifests' comments; the rules in the file's docs.
//! - `tidy_modules.rs`: no import cycle among the modules of any crate of
//!   the workspace (each directory one node among its siblings, and its
//!   modules checked among themselves); a cycle is printed with the line of
//!   a reference per edge.
//! - `readme_commands.rs`: every command the README shows is run by
//!   `.ci/run` or by a test of the `--help` examples.
//! - `fn_length.rs`: no function of a crate's `src/` is over 80 lines
//!   (test code aside), but the few it allows, each with why.
//!
//! Statistical checks print `stat:` lines and take their seed from
//! `ALLOC_CORE_SEED` (a fixed default otherwise); `tests/repeat-statistical`
//! runs them under many seeds and reports the worst error against its bound.
//! - `demo_faults.rs`: hostile clients (mid-request disconnects, RST,
//!   half-close, huge lines, garbage, one byte at a time) and malformed admin
//!   requests during the soak; a descriptor limit below the number of
//!   clients. Verdicts hold and no session is lost.
//! - `demo_scale.rs`: 2,000 connections held open while cycles go on.
//! - `axum_soak.rs`: the goal: an axum service with the routes nested and
//!   its connections counted, soaked over HTTP (a path per cycle) through
//!   `alloc_soak`'s library API: clean exits 0; with a leak, 1 and the
//!   leaking line is the top site.
//! - `axum_mount.rs`: the admin routes nested in an axum service (feature
//!   `axum`): routes under the prefix, `CountingListener`'s open
//!   connections, admin requests' allocations are the tool's on the
//!   service's runtime, no program survivors.
//! - `admin_pprof.rs`: `GET /debug/pprof/heap` read live by the real
//!   `go tool pprof -top` (the leaking function heads it; pprof symbolises
//!   from the binary, asking `/debug/pprof/symbol` for the rest); the
//!   profile's sample types, `birth_epoch` label and build-id mappings.
//! - `soak_help_examples.rs`: every example of `alloc-soak --help` run as
//!   printed (ports substituted) through the binary's body against the
//!   server it names: the axum example service (its `main`, included) and
//!   the demo server (fixed: exit 0; leaky: exit 1), each leaving a report
//!   with the verdict in `target/soak`.
//! - `admin_endpoint.rs`: the admin endpoint's routes and errors; its own
//!   allocations never move the program's counts.
//! - `offline_symbols.rs`: a real snapshot symbolised offline from the
//!   binary on disk gives the same frames and sites as in-process; a missing
//!   binary or another build is a clear error; `--binary`-style overrides.
//! - `admin_busy_soak.rs`: a 2,000-cycle soak (in a child process) exits 0
//!   while sixty idle and eight trickling clients work on the admin
//!   endpoint; its retries printed.
//! - `run_identity.rs`: every snapshot of a process carries its run
//!   identity; a forked child and another process are other runs; a series
//!   of two processes' files interleaved is refused.

pub mod estimates;
pub mod shapes;

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Runs the future `serve` makes on a two-worker tokio runtime, in a
/// thread of its own, for the life of the process.
pub fn spawn_runtime<F>(serve: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve());
    });
}

pub use alloc_core;
pub use alloc_core::{EpochLive, Snapshot};

/// Prints a line with the printing machinery's allocations (the stdout
/// buffer, formatting) counted as the tool's, not the user's.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::alloc_core::untracked(|| println!($($arg)*))
    };
}

/// The tests' deterministic generator: a `fastrand` generator seeded
/// explicitly, with the draws the tests use. Never allocates.
#[derive(Clone, Debug)]
pub struct Rng(fastrand::Rng);

impl Rng {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        Rng(fastrand::Rng::with_seed(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    /// A number in `range` (inclusive).
    pub fn range(&mut self, range: RangeInclusive<usize>) -> usize {
        let (lo, hi) = (*range.start(), *range.end());
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A block size from 1 B to 1 MiB, skewed toward small sizes:
    /// 70% up to 64 B, 20% up to 4 KiB, 8% up to 64 KiB, 2% up to 1 MiB.
    pub fn skewed_size(&mut self) -> usize {
        match self.below(100) {
            0..=69 => self.range(1..=64),
            70..=89 => self.range(65..=4096),
            90..=97 => self.range(4097..=65536),
            _ => self.range(65537..=1 << 20),
        }
    }

    /// An alignment up to 4096, mostly small: 80% 1..=16, 15% 32..=512,
    /// 5% 1024..=4096.
    pub fn skewed_align(&mut self) -> usize {
        match self.below(100) {
            0..=79 => 1 << self.below(5),
            80..=94 => 32 << self.below(5),
            _ => 1024 << self.below(3),
        }
    }
}

/// Live bytes and blocks, signed so that a model (or a difference) can go
/// through negative values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Live bytes (requested sizes).
    pub bytes: i64,
    /// Live blocks.
    pub blocks: i64,
}

impl Counts {
    /// `bytes` in `blocks`.
    pub const fn new(bytes: i64, blocks: i64) -> Self {
        Counts { bytes, blocks }
    }

    /// Adds another count.
    pub fn add(&mut self, other: Counts) {
        self.bytes += other.bytes;
        self.blocks += other.blocks;
    }
}

impl From<&EpochLive> for Counts {
    fn from(e: &EpochLive) -> Self {
        Counts::new(e.live_bytes as i64, e.live_blocks as i64)
    }
}

/// The expected live bytes and blocks per birth epoch, for epochs
/// `0..capacity`. Allocates only in [`Model::with_epochs`], so it can be kept
/// up to date on an allocation-counting path.
#[derive(Clone, Debug)]
pub struct Model {
    per_epoch: Vec<Counts>,
}

impl Model {
    /// A model of epochs `0..epochs`, all zero.
    pub fn with_epochs(epochs: usize) -> Self {
        Model {
            per_epoch: vec![Counts::default(); epochs],
        }
    }

    /// Counts an allocation of `bytes` born in `epoch`.
    pub fn alloc(&mut self, epoch: u32, bytes: usize) {
        self.add(epoch, Counts::new(bytes as i64, 1));
    }

    /// Counts the free of a block of `bytes` born in `epoch`.
    pub fn free(&mut self, epoch: u32, bytes: usize) {
        self.add(epoch, Counts::new(-(bytes as i64), -1));
    }

    /// Counts a realloc from `old` to `new` bytes, in epoch `now`, of a
    /// block born in `birth`: the block moves to `now` (it stays, with the
    /// difference, when `birth == now`).
    pub fn realloc(&mut self, birth: u32, now: u32, old: usize, new: usize) {
        self.add(birth, Counts::new(-(old as i64), -1));
        self.add(now, Counts::new(new as i64, 1));
    }

    /// Adds `c` to `epoch`. Panics when `epoch` is beyond the capacity.
    pub fn add(&mut self, epoch: u32, c: Counts) {
        self.per_epoch[epoch as usize].add(c);
    }

    /// Adds every epoch of `other` into `self` (same capacity).
    pub fn merge(&mut self, other: &Model) {
        for (a, b) in self.per_epoch.iter_mut().zip(&other.per_epoch) {
            a.add(*b);
        }
    }

    /// Sets every epoch to zero (keeps the capacity).
    pub fn clear(&mut self) {
        self.per_epoch.fill(Counts::default());
    }

    /// The counts of one epoch (zero beyond the capacity).
    pub fn get(&self, epoch: u32) -> Counts {
        self.per_epoch
            .get(epoch as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The sum over the epochs `range`.
    pub fn sum(&self, range: RangeInclusive<u32>) -> Counts {
        let mut c = Counts::default();
        let (lo, hi) = (*range.start() as usize, *range.end() as usize);
        if lo < self.per_epoch.len() {
            for e in &self.per_epoch[lo..=hi.min(self.per_epoch.len() - 1)] {
                c.add(*e);
            }
        }
        c
    }

    /// The number of epochs the model holds.
    pub fn capacity(&self) -> usize {
        self.per_epoch.len()
    }
}

/// Live counts of the snapshot entry that covers exactly `epoch` (zero when
/// nothing born in `epoch` is live). Panics when `epoch` is covered by a
/// range entry: callers use it inside the exact window.
pub fn exact(s: &Snapshot, epoch: u32) -> Counts {
    match s.epoch_entry(epoch) {
        None => Counts::default(),
        Some(e) => {
            assert!(
                e.first == e.last,
                "epoch {epoch} (current {}) is in range entry {e:?}, expected an exact entry",
                s.epoch
            );
            Counts::from(e)
        }
    }
}

/// Checks the shape of a snapshot: entries sorted and disjoint, one epoch per
/// entry inside the exact window, no empty entry, and entries summing to the
/// totals.
pub fn check_shape(s: &Snapshot) -> Result<(), String> {
    let mut sum = Counts::default();
    let mut prev_last: Option<u32> = None;
    let window_start = s.epoch.saturating_sub(s.exact_window.saturating_sub(1));
    for e in &s.epochs {
        if e.first > e.last {
            return Err(format!("entry {e:?} has first > last"));
        }
        if let Some(p) = prev_last {
            if e.first <= p {
                return Err(format!("entry {e:?} overlaps or is out of order"));
            }
        }
        if e.last > s.epoch {
            return Err(format!(
                "entry {e:?} is beyond the current epoch {}",
                s.epoch
            ));
        }
        if e.last >= window_start && e.first != e.last {
            return Err(format!(
                "entry {e:?} is a range inside the exact window {window_start}..={}",
                s.epoch
            ));
        }
        if e.live_bytes == 0 && e.live_blocks == 0 {
            return Err(format!("entry {e:?} is empty (empty epochs are omitted)"));
        }
        prev_last = Some(e.last);
        sum.add(Counts::from(e));
    }
    let totals = Counts::new(s.totals.live_bytes as i64, s.totals.live_blocks as i64);
    if sum != totals {
        return Err(format!("entries sum to {sum:?}, totals say {totals:?}"));
    }
    Ok(())
}

/// Compares the snapshot with `model` for every epoch from `from` on.
///
/// Each snapshot entry covering epochs `>= from` must equal the model's sum
/// over its range, and every model epoch `>= from` with something live must
/// be covered by an entry. An entry straddling `from` is an error (the test
/// cannot tell the baseline apart); pick `from` so that it cannot happen.
/// Returns a readable report of every difference.
pub fn check_model(s: &Snapshot, model: &Model, from: u32) -> Result<(), String> {
    let mut errors = String::new();
    let mut covered_upto: u32 = from; // model epochs below this are handled
    for e in s.epochs.iter().filter(|e| e.last >= from) {
        if e.first < from {
            let _ = writeln!(
                errors,
                "entry {e:?} straddles the first checked epoch {from}"
            );
            covered_upto = e.last.saturating_add(1);
            continue;
        }
        // Model epochs between the previous entry and this one must be zero.
        if e.first > covered_upto {
            check_zero(model, covered_upto..=e.first - 1, &mut errors);
        }
        let want = model.sum(e.first..=e.last);
        let got = Counts::from(e);
        if want != got {
            let _ = writeln!(
                errors,
                "epochs {}..={}: snapshot has {got:?}, model has {want:?} (current epoch {})",
                e.first, e.last, s.epoch
            );
        }
        covered_upto = e.last.saturating_add(1);
    }
    let model_last = (model.capacity() as u32).saturating_sub(1);
    if covered_upto <= model_last {
        check_zero(model, covered_upto..=model_last, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_zero(model: &Model, range: RangeInclusive<u32>, errors: &mut String) {
    for epoch in range {
        let c = model.get(epoch);
        if c != Counts::default() {
            let _ = writeln!(
                errors,
                "epoch {epoch}: model has {c:?}, snapshot has no entry"
            );
        }
    }
}

/// The difference of the totals' operation counters between two snapshots:
/// (allocs, frees, reallocs).
pub fn ops_delta(before: &Snapshot, after: &Snapshot) -> (i64, i64, i64) {
    (
        after.totals.allocs as i64 - before.totals.allocs as i64,
        after.totals.frees as i64 - before.totals.frees as i64,
        after.totals.reallocs as i64 - before.totals.reallocs as i64,
    )
}

/// The `main` of a test whose cases each run in a process of their own:
/// with the environment variable `env` set, runs that one case (under a
/// watchdog of `limit`, named `what`); without it, runs every case in its
/// own process ([`run_cases_in_processes`]).
pub fn case_main<C>(
    env: &str,
    (limit, what): (std::time::Duration, &'static str),
    cases: Vec<C>,
    name_of: fn(&C) -> &'static str,
    run: fn(&C),
) -> std::process::ExitCode {
    exit_on_panic();
    if let Ok(name) = std::env::var(env) {
        watchdog(limit, what);
        match cases.iter().find(|c| name_of(c) == name) {
            Some(case) => run(case),
            None => panic!("{env}={name}: no such case"),
        }
        return std::process::ExitCode::SUCCESS;
    }
    run_cases_in_processes(env, cases.iter().map(name_of))
}

/// Runs each of `cases` in a process of its own: this executable again,
/// with the environment variable `env` set to the case's name and
/// `ALLOC_CORE_SAMPLE` removed (the defaults); only the cases whose name
/// contains this process's first argument, if it has one. Prints a
/// `test NAME ... ok` line per case and the totals; fails if any failed.
pub fn run_cases_in_processes<'a>(
    env: &str,
    cases: impl IntoIterator<Item = &'a str>,
) -> std::process::ExitCode {
    let exe = std::env::current_exe().expect("this test's path");
    let only = std::env::args().nth(1);
    let (mut passed, mut failed) = (0, 0);
    for name in cases {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let status = std::process::Command::new(&exe)
            .env(env, name)
            .env_remove("ALLOC_CORE_SAMPLE")
            .status()
            .expect("run a case");
        if status.success() {
            passed += 1;
            println!("test {name} ... ok");
        } else {
            failed += 1;
            println!("test {name} ... FAILED ({status})");
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Makes any panic on any thread end the process with status 101, so that a
/// failed check on a worker thread does not leave the others waiting at a
/// barrier forever.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::exit(101);
    }));
}

/// Starts a thread that ends the process with status 124 if it is still
/// running after `limit` (a hang is a failure, not a stuck CI job).
///
/// Returns once the thread runs, so that whatever std allocates at the start
/// of a thread is done before the caller's first epoch. (std allocates a
/// copy of a thread's name in the new thread, as the user; this thread has
/// no name and the whole start-up happens inside [`alloc_core::untracked`]'s
/// reach or before the caller goes on.)
pub fn watchdog(limit: Duration, what: &'static str) {
    let started = alloc_core::untracked(|| std::sync::Arc::new(std::sync::Barrier::new(2)));
    let seen = std::sync::Arc::clone(&started);
    alloc_core::untracked(|| {
        std::thread::spawn(move || {
            alloc_core::untracked(|| {
                seen.wait();
                drop(seen);
                std::thread::sleep(limit);
                eprintln!("{what}: still running after {limit:?}, giving up (hang?)");
                std::process::exit(124);
            })
        });
    });
    started.wait();
    alloc_core::untracked(move || drop(started));
}

/// Scales an operation count down in debug builds (which run the allocator
/// unoptimised) by `debug_divisor`.
pub fn scaled(release: usize, debug_divisor: usize) -> usize {
    if cfg!(debug_assertions) {
        (release / debug_divisor).max(1)
    } else {
        release
    }
}

/// The byte the pattern `seed` has at offset `i`.
#[inline]
pub fn pattern_byte(seed: u64, i: usize) -> u8 {
    let x = seed
        .wrapping_add(i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

/// Fills `len` bytes at `p` with the pattern `seed`.
///
/// # Safety
/// `p` must be valid for writes of `len` bytes.
pub unsafe fn fill(p: *mut u8, len: usize, seed: u64) {
    for i in 0..len {
        // SAFETY: i < len and the caller guarantees p..p+len is writable.
        unsafe { p.add(i).write(pattern_byte(seed, i)) };
    }
}

/// The first offset below `len` where `p` does not hold the pattern `seed`.
///
/// # Safety
/// `p` must be valid for reads of `len` initialised bytes.
pub unsafe fn find_mismatch(p: *const u8, len: usize, seed: u64) -> Option<usize> {
    // SAFETY: the caller guarantees p..p+len is readable and initialised.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    bytes
        .iter()
        .enumerate()
        .position(|(i, b)| *b != pattern_byte(seed, i))
}

/// The first non-zero offset below `len` at `p`.
///
/// # Safety
/// `p` must be valid for reads of `len` initialised bytes.
pub unsafe fn find_nonzero(p: *const u8, len: usize) -> Option<usize> {
    // SAFETY: the caller guarantees p..p+len is readable and initialised.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    bytes.iter().position(|b| *b != 0)
}

/// Runs named checks, each in turn, catching panics; prints one line per
/// check and the closing `N passed, N failed` line; exit 1 on a failure.
pub fn run_checks(checks: &[(&str, fn())]) -> std::process::ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        let t = std::time::Instant::now();
        match std::panic::catch_unwind(check) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1} s)", t.elapsed().as_secs_f64());
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first: u32, last: u32, bytes: u64, blocks: u64) -> EpochLive {
        EpochLive {
            first,
            last,
            live_bytes: bytes,
            live_blocks: blocks,
        }
    }

    #[test]
    fn check_model_accepts_ranges_and_reports_gaps() {
        let mut m = Model::with_epochs(40);
        m.alloc(3, 10);
        m.alloc(20, 5);
        m.alloc(21, 7);
        m.alloc(30, 1);
        let mut s = alloc_core::snapshot();
        s.epoch = 30;
        s.epochs = vec![entry(0, 0, 99, 9), entry(3, 3, 10, 1), entry(20, 21, 12, 2)];
        let err = check_model(&s, &m, 1).unwrap_err();
        assert!(err.contains("epoch 30"), "{err}");
        s.epochs.push(entry(30, 30, 1, 1));
        check_model(&s, &m, 1).unwrap();
        s.epochs[1].live_bytes = 11;
        assert!(check_model(&s, &m, 1).is_err());
    }

    #[test]
    fn rng_ranges_stay_in_bounds() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let s = r.skewed_size();
            assert!((1..=1 << 20).contains(&s));
            let a = r.skewed_align();
            assert!(a.is_power_of_two() && a <= 4096);
        }
    }
}
