//! The four workloads of the overhead benchmark and the entry point shared by
//! every child binary (one binary per allocator, each with its own
//! `#[global_allocator]`).
//!
//! This file is compiled twice: as `alloc_bench::workloads` inside the
//! workspace, and as a private `#[path]` module of the `plain-jemalloc`
//! package, which lives outside the workspace so that its jemalloc is built
//! without the `stats` feature. It therefore depends on nothing but `std` and
//! `libc`, and prints its one JSON line by hand.
//!
//! Workloads (see `design.md`, "Figures measured"):
//!
//! - **single**: 10M alloc+free pairs of 8..=512 bytes (sizes from a seeded generator), with a
//!   window of 1000 live blocks: each allocation frees the block allocated
//!   1000 allocations earlier.
//! - **mt2**: `single` on two threads at once; the figure is wall time divided
//!   by the pairs of one thread.
//! - **xfree**: one thread allocates, the other frees; pointers travel through
//!   a bounded single-producer single-consumer ring of 1024 slots (indices
//!   published every 32 items, so the transport is cheap, and identical for
//!   every allocator).
//! - **server**: 200k simulated connections, 10k live (create one, drop the
//!   oldest); a connection is a boxed struct with a zeroed 4 KiB buffer, a
//!   peer `String`, an 8-entry `HashMap` with `String` keys and 1-4 messages
//!   (small `String`s and `Vec<u8>`s). The figure is ns per connection.
//! - **single-soak**, **server-soak**: `single` and `server` as a soak runs
//!   them: the epoch advances every [`SINGLE_SOAK_ADVANCE`] pairs
//!   ([`SERVER_SOAK_ADVANCE`] connections) and a snapshot is taken every
//!   [`SINGLE_SOAK_SNAPSHOT`] pairs ([`SERVER_SOAK_SNAPSHOT`] connections),
//!   through the child's [`SoakHooks`] (no-ops for allocators other than
//!   alloc-core). Frees then meet blocks born in older epochs, each new
//!   epoch's first allocation takes over a ring entry, and the snapshots and
//!   the default capture policy's decisions are part of the time.
//!
//! Every block is written after allocation and read before it is freed, and
//! pointers pass through [`std::hint::black_box`], so LLVM cannot delete a
//! matching alloc/free pair.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::UnsafeCell;
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Instant;

/// Alloc+free pairs of `single` (and of each thread of `mt2`, and of `xfree`)
/// at scale 1.
pub const SMALL_PAIRS: u64 = 10_000_000;
/// Live blocks kept by `single` and `mt2`.
pub const WINDOW: usize = 1000;
/// Slots of the `xfree` ring (the live window of `xfree`).
pub const XFREE_RING: usize = 1024;
/// Smallest block size of the small-block workloads.
pub const MIN_SIZE: usize = 8;
/// Largest block size of the small-block workloads.
pub const MAX_SIZE: usize = 512;
/// Connections of `server` at scale 1.
pub const SERVER_CONNECTIONS: u64 = 200_000;
/// Live connections of `server`.
pub const SERVER_LIVE: usize = 10_000;
/// Bytes of the zeroed buffer of a `server` connection.
pub const SERVER_BUFFER: usize = 4096;

/// `single-soak`: pairs per epoch.
pub const SINGLE_SOAK_ADVANCE: u64 = 1_000;
/// `single-soak`: pairs per snapshot.
pub const SINGLE_SOAK_SNAPSHOT: u64 = 100_000;
/// `server-soak`: connections per epoch.
pub const SERVER_SOAK_ADVANCE: u64 = 100;
/// `server-soak`: connections per snapshot.
pub const SERVER_SOAK_SNAPSHOT: u64 = 10_000;

/// What a soak does between cycles, for the `*-soak` workloads. A child
/// over alloc-core passes `advance_epoch` and a function that takes (and
/// drops) a snapshot; other allocators have nothing to do.
#[derive(Clone, Copy, Debug)]
pub struct SoakHooks {
    /// Closes the current epoch.
    pub advance_epoch: fn(),
    /// Takes a snapshot.
    pub snapshot: fn(),
}

fn nothing() {}

impl SoakHooks {
    /// For allocators without epochs.
    pub const NONE: SoakHooks = SoakHooks {
        advance_epoch: nothing,
        snapshot: nothing,
    };
}

/// How often a loop calls the soak hooks: every `advance` and every
/// `snapshot` operations, counted down (no division in the loop).
#[derive(Clone, Copy)]
struct Every {
    /// False for the plain workloads: with [`Every::NEVER`] passed as a
    /// constant, the loops inline [`Every::after`] to nothing.
    on: bool,
    advance: u64,
    snapshot: u64,
    to_advance: u64,
    to_snapshot: u64,
    hooks: SoakHooks,
}

impl Every {
    const NEVER: Every = Every {
        on: false,
        advance: 0,
        snapshot: 0,
        to_advance: 0,
        to_snapshot: 0,
        hooks: SoakHooks::NONE,
    };

    /// The hooks every `advance` and every `snapshot` operations (both at
    /// least 1).
    fn soak(advance: u64, snapshot: u64, hooks: SoakHooks) -> Every {
        Every {
            on: true,
            advance,
            snapshot,
            to_advance: advance,
            to_snapshot: snapshot,
            hooks,
        }
    }

    /// Counts one operation and calls the hooks that are due.
    #[inline(always)]
    fn after(&mut self) {
        if !self.on {
            return;
        }
        self.to_advance -= 1;
        if self.to_advance == 0 {
            self.to_advance = self.advance;
            (self.hooks.advance_epoch)();
        }
        self.to_snapshot -= 1;
        if self.to_snapshot == 0 {
            self.to_snapshot = self.snapshot;
            (self.hooks.snapshot)();
        }
    }
}

/// One workload of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Alloc+free pairs on one thread, window of 1000 live.
    Single,
    /// `Single` on two threads at once.
    Mt2,
    /// One thread allocates, the other frees.
    Xfree,
    /// Simulated server connections, 10k live.
    Server,
    /// `Single` with the epoch advancing and snapshots, as in a soak.
    SingleSoak,
    /// `Server` with the epoch advancing and snapshots, as in a soak.
    ServerSoak,
}

impl Workload {
    /// Every workload, in the order of the report.
    pub const ALL: [Workload; 6] = [
        Workload::Single,
        Workload::Mt2,
        Workload::Xfree,
        Workload::Server,
        Workload::SingleSoak,
        Workload::ServerSoak,
    ];

    /// The name used on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Single => "single",
            Workload::Mt2 => "mt2",
            Workload::Xfree => "xfree",
            Workload::Server => "server",
            Workload::SingleSoak => "single-soak",
            Workload::ServerSoak => "server-soak",
        }
    }

    /// The workload called `name`, if any.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Operations at scale 1: alloc+free pairs, or connections for `server`.
    pub fn base_ops(self) -> u64 {
        match self {
            Workload::Single | Workload::Mt2 | Workload::Xfree | Workload::SingleSoak => {
                SMALL_PAIRS
            }
            Workload::Server | Workload::ServerSoak => SERVER_CONNECTIONS,
        }
    }

    /// Operations at `scale` (at least 1).
    pub fn ops_at(self, scale: f64) -> u64 {
        ((self.base_ops() as f64 * scale).round() as u64).max(1)
    }
}

/// What one run of a workload measured.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Operations timed (per thread for `mt2`).
    pub ops: u64,
    /// Wall time of the timed part, in nanoseconds.
    pub elapsed_ns: u64,
    /// A value folded from the memory read back, so nothing is dead code.
    pub checksum: u64,
}

impl Outcome {
    /// Nanoseconds per operation.
    pub fn ns_per_op(&self) -> f64 {
        self.elapsed_ns as f64 / self.ops.max(1) as f64
    }
}

/// Runs `workload` for `ops` operations and times it; the `*-soak`
/// workloads call `hooks`.
pub fn run(workload: Workload, ops: u64, hooks: SoakHooks) -> Outcome {
    let ops = ops.max(1);
    let start;
    let checksum = match workload {
        Workload::Single => {
            start = Instant::now();
            single(ops, 0x9E37_79B9_7F4A_7C15, Every::NEVER)
        }
        Workload::SingleSoak => {
            let every = Every::soak(SINGLE_SOAK_ADVANCE, SINGLE_SOAK_SNAPSHOT, hooks);
            start = Instant::now();
            single(ops, 0x9E37_79B9_7F4A_7C15, every)
        }
        Workload::Mt2 => {
            let barrier = Barrier::new(3);
            let mut sum = 0;
            let mut started = None;
            std::thread::scope(|s| {
                let a = s.spawn(|| {
                    barrier.wait();
                    single(ops, 0x9E37_79B9_7F4A_7C15, Every::NEVER)
                });
                let b = s.spawn(|| {
                    barrier.wait();
                    single(ops, 0xD1B5_4A32_D192_ED03, Every::NEVER)
                });
                barrier.wait();
                started = Some(Instant::now());
                sum = join(a).wrapping_add(join(b));
            });
            start = started.unwrap_or_else(Instant::now);
            sum
        }
        Workload::Xfree => {
            let ring = Ring::new();
            let barrier = Barrier::new(2);
            let mut sum = 0;
            let mut started = None;
            std::thread::scope(|s| {
                let consumer = s.spawn(|| {
                    barrier.wait();
                    ring.consume(ops)
                });
                barrier.wait();
                started = Some(Instant::now());
                ring.produce(ops, 0x9E37_79B9_7F4A_7C15);
                sum = join(consumer);
            });
            start = started.unwrap_or_else(Instant::now);
            sum
        }
        Workload::Server => {
            start = Instant::now();
            server(ops, 0x2545_F491_4F6C_DD1D, Every::NEVER)
        }
        Workload::ServerSoak => {
            let every = Every::soak(SERVER_SOAK_ADVANCE, SERVER_SOAK_SNAPSHOT, hooks);
            start = Instant::now();
            server(ops, 0x2545_F491_4F6C_DD1D, every)
        }
    };
    let elapsed_ns = start.elapsed().as_nanos() as u64;
    Outcome {
        ops,
        elapsed_ns,
        checksum: black_box(checksum),
    }
}

fn join(handle: std::thread::ScopedJoinHandle<'_, u64>) -> u64 {
    match handle.join() {
        Ok(v) => v,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// The live window for `ops` operations: `nominal`, but at most half the
/// operations, so a tiny run still reaches a steady state.
fn window_for(ops: u64, nominal: usize) -> usize {
    nominal.min((ops / 2).max(1) as usize)
}

/// The workloads' generator: `fastrand` (wyrand, a multiply and a xor per
/// draw) seeded explicitly, so every child draws the same sizes.
struct SizeRng(fastrand::Rng);

impl SizeRng {
    fn new(seed: u64) -> SizeRng {
        SizeRng(fastrand::Rng::with_seed(seed))
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// A block size in `MIN_SIZE..=MAX_SIZE`, by multiply-shift (no division).
    #[inline(always)]
    fn size(&mut self) -> usize {
        let span = (MAX_SIZE - MIN_SIZE + 1) as u64;
        MIN_SIZE + (((self.next() >> 32) * span) >> 32) as usize
    }

    /// A value in `lo..=hi`.
    #[inline(always)]
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        let span = (hi - lo + 1) as u64;
        lo + (((self.next() >> 32) * span) >> 32) as usize
    }
}

/// Allocates `size` bytes (align 8) through the global allocator and writes
/// its first and last byte.
#[inline(always)]
fn alloc_block(size: usize, stamp: u8) -> *mut u8 {
    debug_assert!((MIN_SIZE..=MAX_SIZE).contains(&size));
    let Ok(layout) = Layout::from_size_align(size, 8) else {
        unreachable!("sizes are small and the alignment is a power of two")
    };
    // SAFETY: `layout` has a non-zero size (at least MIN_SIZE).
    let p = black_box(unsafe { alloc(layout) });
    if p.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `p` is a fresh block of `size >= 1` bytes.
    unsafe {
        p.write(stamp);
        p.add(size - 1).write(stamp);
    }
    p
}

/// Reads the first and last byte of a block from [`alloc_block`] and frees it.
///
/// # Safety
/// `p` came from `alloc_block(size, _)` and is not freed yet.
#[inline(always)]
unsafe fn free_block(p: *mut u8, size: usize) -> u64 {
    // SAFETY: the caller passes a live block of `size` bytes.
    unsafe {
        let v = p.read() as u64 + p.add(size - 1).read() as u64;
        dealloc(p, Layout::from_size_align_unchecked(size, 8));
        v
    }
}

/// `ops` alloc+free pairs with a window of [`WINDOW`] live blocks; calls
/// the soak hooks `every` so often.
#[inline(always)]
fn single(ops: u64, seed: u64, mut every: Every) -> u64 {
    let window = window_for(ops, WINDOW);
    let mut rng = SizeRng::new(seed);
    let mut slots: Vec<(*mut u8, usize)> = vec![(std::ptr::null_mut(), 0); window];
    let mut sum = 0u64;
    let mut j = 0;
    for i in 0..ops {
        let (old, old_size) = slots[j];
        if !old.is_null() {
            // SAFETY: every non-null slot holds a live block and its size.
            sum = sum.wrapping_add(unsafe { free_block(old, old_size) });
        }
        let size = rng.size();
        slots[j] = (alloc_block(size, i as u8), size);
        j += 1;
        if j == window {
            j = 0;
        }
        every.after();
    }
    for (p, size) in slots {
        if !p.is_null() {
            // SAFETY: as above; each slot is freed once.
            sum = sum.wrapping_add(unsafe { free_block(p, size) });
        }
    }
    sum
}

/// Aligned to its own cache lines, so producer and consumer indices do not
/// share one.
#[repr(align(128))]
struct Padded<T>(T);

/// Indices are published every `PUBLISH` items.
const PUBLISH: usize = 32;

/// A bounded single-producer single-consumer ring of `(pointer, size)`.
struct Ring {
    slots: Box<[UnsafeCell<(usize, usize)>]>,
    /// Items consumed (published every `PUBLISH`, and at the end).
    head: Padded<AtomicUsize>,
    /// Items produced (published every `PUBLISH`, and at the end).
    tail: Padded<AtomicUsize>,
}

// SAFETY: a slot is written only by the producer while it is outside the
// published range `head..tail`, and read only by the consumer while it is
// inside; the Release store of `tail` (`head`) orders the slot write (read)
// before the other side's Acquire load of that index.
unsafe impl Sync for Ring {}

impl Ring {
    fn new() -> Ring {
        Ring {
            slots: (0..XFREE_RING).map(|_| UnsafeCell::new((0, 0))).collect(),
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
        }
    }

    /// Allocates `ops` blocks and pushes them (called by one thread only).
    fn produce(&self, ops: u64, seed: u64) {
        let mut rng = SizeRng::new(seed);
        let mask = XFREE_RING - 1;
        let mut tail = 0usize;
        let mut head_seen = 0usize;
        for i in 0..ops {
            let size = rng.size();
            let p = alloc_block(size, i as u8);
            let mut spins = 0u32;
            while tail - head_seen == XFREE_RING {
                head_seen = self.head.0.load(Ordering::Acquire);
                if tail - head_seen == XFREE_RING {
                    backoff(&mut spins);
                }
            }
            // SAFETY: slot `tail` is outside `head_seen..tail`, so the
            // consumer does not read it until `tail + 1` is published.
            unsafe { *self.slots[tail & mask].get() = (p as usize, size) };
            tail += 1;
            if tail.is_multiple_of(PUBLISH) || tail as u64 == ops {
                self.tail.0.store(tail, Ordering::Release);
            }
        }
    }

    /// Pops `ops` blocks and frees them (called by one thread only).
    fn consume(&self, ops: u64) -> u64 {
        let mask = XFREE_RING - 1;
        let mut head = 0usize;
        let mut tail_seen = 0usize;
        let mut sum = 0u64;
        while (head as u64) < ops {
            let mut spins = 0u32;
            while head == tail_seen {
                tail_seen = self.tail.0.load(Ordering::Acquire);
                if head == tail_seen {
                    backoff(&mut spins);
                }
            }
            // SAFETY: slot `head` is inside the published range, written by
            // the producer before its Release store we have Acquired.
            let (p, size) = unsafe { *self.slots[head & mask].get() };
            // SAFETY: the producer pushed a live block of `size` bytes, once.
            sum = sum.wrapping_add(unsafe { free_block(p as *mut u8, size) });
            head += 1;
            if head.is_multiple_of(PUBLISH) || head as u64 == ops {
                self.head.0.store(head, Ordering::Release);
            }
        }
        sum
    }
}

/// Spins a little, then yields (the machine may be shared).
#[inline(always)]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

const HEADER_NAMES: [&str; 8] = [
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "content-type",
    "content-length",
    "x-request-id",
];

/// One message of a simulated connection.
enum Message {
    Text(String),
    Bytes(Vec<u8>),
}

/// A simulated server connection.
struct Connection {
    id: u64,
    buffer: Vec<u8>,
    peer: String,
    headers: HashMap<String, u64>,
    messages: Vec<Message>,
}

impl Connection {
    fn open(id: u64, rng: &mut SizeRng) -> Box<Connection> {
        let mut buffer = vec![0u8; SERVER_BUFFER];
        buffer[(id as usize) % SERVER_BUFFER] = id as u8;
        let r = rng.next();
        let peer = format!(
            "10.{}.{}.{}:{}",
            (r >> 8) as u8,
            (r >> 16) as u8,
            (r >> 24) as u8,
            1024 + (r >> 32) as u16 % 60000
        );
        let mut headers = HashMap::new();
        for name in HEADER_NAMES {
            headers.insert(name.to_string(), rng.next());
        }
        let mut messages = Vec::new();
        for k in 0..rng.range(1, 4) {
            if k % 2 == 0 {
                messages.push(Message::Text(format!("message {k} of connection {id}")));
            } else {
                let len = rng.range(16, 256);
                messages.push(Message::Bytes(vec![k as u8; len]));
            }
        }
        black_box(Box::new(Connection {
            id,
            buffer,
            peer,
            headers,
            messages,
        }))
    }

    /// Reads back what `open` wrote.
    fn digest(&self) -> u64 {
        let mut sum = self.buffer[(self.id as usize) % SERVER_BUFFER] as u64
            + self.peer.len() as u64
            + self.headers.get("host").copied().unwrap_or(0) % 7;
        for m in &self.messages {
            sum += match m {
                Message::Text(s) => s.len() as u64,
                Message::Bytes(b) => b[b.len() - 1] as u64,
            };
        }
        sum
    }
}

/// `ops` connections, [`SERVER_LIVE`] live: open one, close the oldest;
/// calls the soak hooks `every` so often.
#[inline(always)]
fn server(ops: u64, seed: u64, mut every: Every) -> u64 {
    let live = window_for(ops, SERVER_LIVE);
    let mut rng = SizeRng::new(seed);
    let mut ring: VecDeque<Box<Connection>> = VecDeque::with_capacity(live + 1);
    let mut sum = 0u64;
    for id in 0..ops {
        ring.push_back(Connection::open(id, &mut rng));
        if ring.len() > live {
            if let Some(old) = ring.pop_front() {
                sum = sum.wrapping_add(old.digest());
            }
        }
        every.after();
    }
    for c in ring.drain(..) {
        sum = sum.wrapping_add(c.digest());
    }
    sum
}

/// Peak resident set size of this process so far, in KiB (`ru_maxrss`).
pub fn peak_rss_kib() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0;
    }
    usage.ru_maxrss.max(0) as u64
}

/// The arguments of a child binary:
/// `--workload NAME --scale F [--out-dir DIR]`.
#[derive(Clone, Debug)]
pub struct ChildArgs {
    /// The workload to run.
    pub workload: Workload,
    /// Multiplier of the workload's operation count.
    pub scale: f64,
    /// Where a child may write files (dhat's profile).
    pub out_dir: Option<PathBuf>,
}

/// Parses the arguments of a child binary (without the program name).
pub fn parse_child_args<I: IntoIterator<Item = String>>(args: I) -> Result<ChildArgs, String> {
    let mut workload = None;
    let mut scale = 1.0;
    let mut out_dir = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--workload" => {
                let v = value("--workload")?;
                workload = Some(Workload::from_name(&v).ok_or_else(|| {
                    format!(
                        "unknown workload {v:?} (expected single, mt2, xfree, server, \
                         single-soak or server-soak)"
                    )
                })?);
            }
            "--scale" => {
                let v = value("--scale")?;
                scale = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--scale wants a positive number, not {v:?}"))?;
            }
            "--out-dir" => out_dir = Some(PathBuf::from(value("--out-dir")?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let workload = workload.ok_or("--workload is required")?;
    Ok(ChildArgs {
        workload,
        scale,
        out_dir,
    })
}

/// The `main` of a child binary: parses its arguments, calls `setup` (whose
/// result lives until after the JSON line is printed), runs the workload
/// (the `*-soak` ones with `hooks`) and
/// prints one JSON line on stdout:
/// `{"workload":..,"allocator":..,"ns_per_op":..,"peak_rss_kib":..,"ops":..,"checksum":..}`.
pub fn child_main<G>(
    allocator: &str,
    hooks: SoakHooks,
    setup: impl FnOnce(&ChildArgs) -> G,
) -> ExitCode {
    let args = match parse_child_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench child ({allocator}): {e}");
            eprintln!(
                "usage: --workload single|mt2|xfree|server|single-soak|server-soak --scale F \
                 [--out-dir DIR]"
            );
            return ExitCode::from(2);
        }
    };
    let guard = setup(&args);
    let outcome = run(args.workload, args.workload.ops_at(args.scale), hooks);
    let rss = peak_rss_kib();
    let line = format!(
        "{{\"workload\":\"{}\",\"allocator\":\"{}\",\"ns_per_op\":{:.4},\"peak_rss_kib\":{},\"ops\":{},\"checksum\":{}}}",
        args.workload.name(),
        allocator,
        outcome.ns_per_op(),
        rss,
        outcome.ops,
        outcome.checksum
    );
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(out);
    drop(guard);
    ExitCode::SUCCESS
}
