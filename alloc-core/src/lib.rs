//! Epoch-tagged heap accounting: a `#[global_allocator]` that knows, exactly,
//! how many bytes born in each *epoch* of your program are still live.
//!
//! # Setup
//!
//! ```toml
//! [dependencies]
//! alloc-core = { path = "alloc-core" }
//! ```
//!
//! ```ignore
//! use alloc_core::{EpochAlloc, Jemalloc};
//!
//! #[global_allocator]
//! static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);
//! ```
//!
//! And frame pointers in every crate of your build, so that sampled call
//! stacks are captured by walking the frame-pointer chain (about 50 ns)
//! instead of the system unwinder (about 3 µs), in `.cargo/config.toml` at
//! your workspace root:
//!
//! ```toml
//! [build]
//! rustflags = ["-C", "force-frame-pointers=yes"]
//! ```
//!
//! That's it. Every heap block now carries its birth epoch, and the crate
//! keeps exact live bytes and blocks per birth epoch. Without the `jemalloc`
//! feature (Miri, platforms without jemalloc), wrap [`System`] instead; any
//! other allocator works by implementing [`Backend`].
//!
//! Features: `jemalloc` (default) offers [`Jemalloc`] as the inner
//! allocator. `jemalloc-stats` (opt-in) also builds jemalloc with its
//! statistics and reports `stats.allocated`, `stats.resident` and
//! `stats.retained` in every snapshot ([`Snapshot::allocator`]); jemalloc's
//! statistics alone cost 5-15% of a small allocation
//! (see `alloc-core/bench/README.md`), in every program of the build. Without
//! them a snapshot still sets the allocator's retention apart from the live
//! heap: `rss_bytes - totals.live_bytes - tool.live_bytes -
//! tool.metadata_bytes` is what the allocator keeps (free pages,
//! fragmentation) plus the process's code and stacks, and `alloc-report`
//! shows it as "outside the heap":
//!
//! ```
//! let s = alloc_core::snapshot();
//! if let Some(rss) = s.rss_bytes {
//!     let outside_heap = rss
//!         .saturating_sub(s.totals.live_bytes)
//!         .saturating_sub(s.tool.live_bytes + s.tool.metadata_bytes);
//!     println!("live heap {} B, outside the heap {outside_heap} B", s.totals.live_bytes);
//! }
//! ```
//!
//! # Finding a leak
//!
//! A soak test repeats a *cycle* (connect, use, disconnect) and closes an
//! epoch after each cycle or batch. Memory born in a closed epoch that is still
//! live is a *survivor*; survivors that keep growing with the number of cycles
//! are a leak, survivors that stop growing are a cache or a pool.
//!
//! ```
//! use alloc_core::{advance_epoch, snapshot, EpochAlloc, System};
//!
//! #[global_allocator]
//! static GLOBAL: EpochAlloc<System> = EpochAlloc::new(System);
//!
//! fn main() {
//!     let mut registry: Vec<Vec<u8>> = Vec::new(); // "tracking" that never forgets
//!     let first = advance_epoch();
//!     for _cycle in 0..10 {
//!         let connection = vec![0u8; 300];
//!         registry.push(connection.clone()); // the leak: one 300-byte block per cycle
//!         drop(connection);
//!         advance_epoch();
//!     }
//!     let snap = snapshot();
//!     let (bytes, blocks) = snap.live_born_before(snap.epoch);
//!     // Everything born in the ten closed epochs is the leaked copies (plus
//!     // the registry's own buffer, which grew in some of them).
//!     assert!(blocks >= 10 && bytes >= 3000);
//!     for e in &snap.epochs {
//!         if e.first >= first {
//!             println!("epoch {}: {} bytes in {} blocks", e.first, e.live_bytes, e.live_blocks);
//!         }
//!     }
//! }
//! ```
//!
//! # Which line leaks: sampled call sites
//!
//! Epoch counters say *that* memory survives; sampled call sites say
//! *where* it was allocated. By default every allocation of the program's
//! start-up is recorded (its first [`STARTUP_RECORDS`] allocations, where
//! the structures that later hold leaks are made), then about one block
//! per 256 KiB allocated ([`DEFAULT_INTERVAL`]) is sampled, and every
//! allocation is recorded while snapshots show survivors (see "The
//! default capture policy" below). A sampled block's raw call stack is
//! captured (instruction pointers only, at most [`MAX_STACK_DEPTH`] frames)
//! and the block is remembered until it is freed. Each sample is weighted
//! by the inverse of its probability of being drawn, so a snapshot's
//! [`Snapshot::sites`] are unbiased estimates of live bytes and blocks per
//! call stack and birth epoch (the exact per-epoch totals stay in
//! [`Snapshot::epochs`]). A snapshot also lists the loaded modules (path,
//! load address, build id: [`Snapshot::modules`]), so its raw stacks can be
//! symbolised outside the process: `alloc-report` and the soak driver do
//! that from the binaries on disk, and that is how a long-running server
//! should be read (the admin endpoint serves raw snapshots). [`symbolize()`]
//! does it in-process, for tests and leak assertions: it turns the stacks
//! into function, file and line, outside the allocation path, and marks
//! each stack's site: its innermost frame of the program's own code (past
//! this crate, the standard library's allocation machinery and the frames
//! of dependencies from a registry, a git checkout or a `vendor/`
//! directory, whose first call is kept in the label: `src/db.rs:224
//! app::Db::subscribe -> tokio::sync::broadcast::channel`; the rules are
//! `alloc_snapshot::trim`, and [`set_site_rule`] takes the first frame
//! past the standard library instead, for authors testing their own
//! library). It keeps the parsed debug information (tens of
//! MB, counted as the tool's memory) until [`release_symbol_cache`].
//!
//! ```no_run
//! use alloc_core::{advance_epoch, set_sampling, snapshot, symbolize, SampleMode};
//!
//! set_sampling(SampleMode::Interval(4096)); // denser than the default, for a short soak
//! advance_epoch();
//! // ... run cycles, advancing the epoch after each batch ...
//! let mut snap = snapshot();
//! symbolize(&mut snap);
//! // Survivors (every closed epoch) per call site, most bytes first.
//! for site in snap.site_survivors(snap.epoch) {
//!     println!("{:>10.0} bytes in {:>6.0} blocks  {}", site.bytes, site.blocks, site.site);
//! }
//! ```
//!
//! `cargo run --release -p alloc-core --example sites` runs a complete
//! example.
//!
//! - **Modes** ([`SampleMode`]): `Off`; `Interval(bytes)`, the mean number
//!   of allocated bytes between samples (default 256 KiB; see
//!   [`DEFAULT_INTERVAL`] for the arithmetic); `All`, every allocation,
//!   exact, for tests and short soaks. Set it in code with [`set_sampling`], or with the
//!   environment variable `ALLOC_CORE_SAMPLE` ([`SAMPLE_ENV`]: `off`,
//!   `all`, or bytes such as `4096`, `64KiB`, `1M`), read once at the first
//!   allocation; code wins over the environment.
//! - **Seed** ([`set_sampling_seed`], or the environment variable
//!   `ALLOC_CORE_SEED`, [`SEED_ENV`]: `42`, `0x2a`). Unset, every thread's
//!   generator is seeded from the clock. Fixed, the `n`-th thread to
//!   allocate gets the `n`-th stream of that seed, so a single-threaded
//!   program samples the same blocks on every run and a statistical test
//!   that failed can be replayed (`ALLOC_CORE_SEED=7 cargo test ...`).
//!   Multi-threaded programs replay as far as their threads allocate in the
//!   same order.
//! - **The default capture policy.** With no mode set (neither
//!   [`set_sampling`] nor `ALLOC_CORE_SAMPLE`), the program's first
//!   [`STARTUP_RECORDS`] allocations are recorded, each with its stack (a
//!   one-time cost, so that the retention scan can follow pointers through
//!   the runtime, channels and registries a program makes at start-up);
//!   then each [`snapshot()`] looks at
//!   the exact counters: if blocks born between the two snapshots before it
//!   are still live, every allocation is recorded from then on (exact
//!   sites, weight 1); once two snapshots in a row find none, sampling
//!   goes back to the interval. A soak of a leaky program therefore names
//!   every leak's line exactly from its third snapshot (from its first
//!   measured batch with `demo-server soak`, which takes two unkept
//!   snapshots during its warm-up), and a program that does not leak (or
//!   takes no snapshots) pays only the interval after its start-up. Past 57,344 records in
//!   the sampled-block table (3,584 a shard, under half of the 8,192 slots
//!   a shard may use at the defaults: 4 MiB of records in all) capture
//!   thins out in steps (an interval of 64 bytes, doubled every 4,096
//!   records), so that a long soak of a fast leak keeps samples in
//!   proportion to its bytes within the bound.
//!   Setting a mode turns the policy off. `ARCHITECTURE.md` has the design and the figures.
//!   **Taking a snapshot is the policy's step**: [`snapshot()`] and
//!   [`snapshot_with_retention`] sum the counters, then let the policy
//!   switch capture on, off or to a sparser step before reading the sampled
//!   blocks, so the snapshot that sees survivors is the one that turns
//!   dense capture on (its own sites are still those the earlier capture
//!   made). A program that never takes a snapshot stays at the interval.
//! - **Cost.** An unsampled allocation or realloc pays one subtraction from
//!   a per-thread countdown; an unsampled free pays nothing (a bit in the
//!   block's tag says whether it was sampled; a sampled block's tag names
//!   its record, so its free goes straight to it). A block of 1/16 of the
//!   interval or more pays a stack capture every time (see below): little
//!   next to the page faults of touching it. A sample costs a stack walk
//!   and a record: about 0.1-0.2 µs with frame pointers
//!   ([`FRAME_POINTER_CAPTURE`]), about 3 µs with the system unwinder; see
//!   `RESULTS.md` for measured figures.
//! - **Frame pointers.** Build with `-C force-frame-pointers=yes` (Setup,
//!   above): `build.rs` sees the flag in the rustflags and the capture then
//!   walks the frame-pointer chain (x86-64 and AArch64 Linux with glibc).
//!   Every frame is checked before it is read (inside the live part of the
//!   thread's stack, 8-aligned, above the previous frame), so a broken
//!   chain (C code without frame pointers) ends the walk and cannot fault;
//!   a chain shorter than a real allocation's falls back to the unwinder.
//!   Without the flag every sample uses the unwinder, and the default
//!   policy's dense phase costs about 15 times more.
//! - **Bounded memory.** At most [`MAX_STACKS`] distinct stacks (further
//!   ones are counted under the overflow stack, id 0) and
//!   [`MAX_SAMPLED_BLOCKS`] live sampled blocks (further samples are
//!   dropped and counted); together at most about 10.3 MiB (the stack
//!   table with its index 2.2 MiB, the records 8 MiB), mapped or touched as
//!   they fill, and 6.3 MiB at the defaults, whose record table stops at
//!   4 MiB (half the records, 32 bytes each); measured soaks are listed in
//!   `RESULTS.md`. [`Snapshot::sampling`] reports both overflows;
//!   [`tool_metadata`] says what the tool's memory is made of.
//! - **Safety on the allocation path.** Stacks are captured by the checked
//!   frame-pointer walk (no lock, no allocation; a thread's stack bounds are
//!   found once, at its first sample: glibc's `__libc_stack_end` for the
//!   main thread, `pthread_getattr_np` for others) or with the system
//!   unwinder (`_Unwind_Backtrace`; with glibc 2.35+ and GCC 12's
//!   `libgcc_s` it takes no lock) into a buffer on the stack; the tables'
//!   spin locks are held for a few loads and stores and never while unwinding, and
//!   are held across `fork()` by the atfork handlers.
//! - **In-process symbolisation keeps the parsed debug information** after
//!   its first call (about a second), as the tool's memory: roughly the size
//!   of the binary's debug information (50 MB for `demo-server`). Servers
//!   should leave it to `alloc-report` (the admin endpoint's snapshots
//!   do; only its live pprof profile symbolises, and keeps the cache): a
//!   snapshot lists the loaded modules for that, at a few hundred bytes per
//!   module.
//!   [`release_symbol_cache`] drops it.
//! - **Symbolisation needs debug info**: `debug = "limited"` (or `1`) in
//!   your `[profile.release]` gives file, line and full function paths;
//!   `"line-tables-only"` gives file and line with bare names for inlined
//!   functions; without debug info only function names from the symbol
//!   table.
//! - **Growth is attributed to the line that grows.** A realloc is sampled
//!   like an allocation of its new size, with the stack of the realloc, and
//!   a block that was sampled before loses its old record; every block of
//!   at least [`always_sampled_from`] bytes (1/16 of the interval, 64 KiB
//!   at the default) is sampled, with weight 1. A collection that only
//!   grows reaches such sizes in a few doublings, so its buffer is seen at
//!   the `push` or `insert` that last grew it in every snapshot, not one
//!   time in five (a 256 KiB block's chance at 1 MiB would be 22%). Below
//!   that size growth is sampled like any allocation: a leak of a few bytes
//!   per cycle is found by the exact epoch counters long before its site
//!   has enough samples.
//! - **Histograms** of sampled allocation sizes and of the lifetimes (in
//!   epochs and nanoseconds) of freed sampled blocks are in
//!   [`Snapshot::histograms`].
//!
//! # Leak assertions in tests
//!
//! [`assert_no_leaks`] runs a closure and fails, listing every surviving
//! block with its symbolised call site, if anything the closure allocated on
//! the current thread is still live at its end; [`track`] returns the
//! survivors instead, and [`LeakScope`] is the guard form. It works under
//! the normal parallel test harness: each scope sees only its own thread's
//! blocks. See [`leaks`] for what a scope records (not the blocks of the
//! threads it spawns) and `alloc-core/tests/leak_scope.rs` for a test that
//! catches an `Rc` cycle and passes once the back edge is `Weak`:
//!
//! ```text
//! leak check failed: 3 block(s), 596 bytes, allocated in the scope are still live:
//!   512 bytes in 1 block(s) at alloc-core/tests/leak_scope.rs:38 leak_scope::leaky::serve
//!       called from alloc-core/tests/leak_scope.rs:90 leak_scope::an_rc_cycle_is_caught_with_its_sites::{{closure}}
//!   80 bytes in 1 block(s) at alloc-core/tests/leak_scope.rs:32 leak_scope::leaky::serve
//!   4 bytes in 1 block(s) at alloc-core/tests/leak_scope.rs:33 leak_scope::leaky::serve
//! ```
//!
//! Async code on a multi-threaded runtime moves between worker threads at
//! every `.await`, so a thread's scope would miss most of it:
//! [`track_future`] (and [`assert_no_leaks_future`]) wraps a future and
//! records what is allocated while it is polled, on whichever thread
//! (`alloc-core/tests/track_future.rs` runs one on a two-worker tokio
//! runtime). See [`leaks::track_future`] for what it sees.
//!
//! # Epoch semantics
//!
//! - The program starts in epoch 0. [`advance_epoch`] closes the current epoch
//!   and returns the new one; [`epoch()`] reads it. Epochs are process-wide.
//! - A block's birth epoch is the epoch current when it was allocated, on
//!   whichever thread. A free never changes it: **allocated before, freed
//!   after** (allocated in epoch 3, freed in epoch 9) removes its bytes from
//!   epoch 3.
//! - **A realloc re-births the block in the current epoch**: a block of
//!   epoch 3 resized in epoch 9 leaves epoch 3 with its old size and joins
//!   epoch 9 with its new size (the "free of the old, allocation of the
//!   new" of heaptrack and bytehound; jemalloc's profiler also treats a
//!   realloc as a new allocation). Resized within its own epoch, the
//!   block's bytes in that epoch change by the difference. So a collection
//!   that only grows shows as memory born, and still held, in the epochs in
//!   which it grew, even if it was created before the soak started; a
//!   buffer grown once and then reused stays in the epoch of its last
//!   growth and is a survivor that does not grow. A realloc counts in
//!   `reallocs`, never in `allocs` or `frees` (those stay the program's
//!   `alloc` and `dealloc` calls). Shrinking (`shrink_to_fit`) re-births
//!   too, with the smaller size. With sampling on, a realloc is a sampling
//!   opportunity for its new size and is attributed to the line that
//!   resized it (the `push` or `insert`); see "Which line leaks".
//!
//! ```
//! use alloc_core::{advance_epoch, snapshot, EpochAlloc, System};
//!
//! #[global_allocator]
//! static GLOBAL: EpochAlloc<System> = EpochAlloc::new(System);
//!
//! fn main() {
//!     let born = advance_epoch();
//!     let mut history: Vec<u64> = Vec::with_capacity(4); // 32 bytes in `born`
//!     let grew = advance_epoch();
//!     history.extend([1, 2, 3, 4, 5]); // realloc to 64 bytes in `grew`
//!     let s = snapshot();
//!     let live = |e| s.epoch_entry(e).map_or((0, 0), |e| (e.live_bytes, e.live_blocks));
//!     assert_eq!(live(born), (0, 0)); // the block left its birth epoch
//!     assert_eq!(live(grew), (64, 1)); // and lives, whole, where it grew
//! }
//! ```
//!
//! - **Threads**: a block may be freed on any thread; counts stay exact.
//!   Counts are kept per thread without atomic read-modify-write instructions
//!   and summed by [`snapshot()`].
//! - **Bytes** are the sizes the program asked for (`Layout::size()`), not
//!   the rounded-up sizes the allocator gave.
//! - **Failure**: a failed allocation or realloc returns null and changes no
//!   count.
//! - **Bounded memory however many epochs pass**: the most recent
//!   [`EXACT_WINDOW`] (256) epochs are kept one by one; older epochs are folded
//!   into ranges, 8 per doubling of the epoch number (epochs 512..=575,
//!   576..=639, ...), so a range covers at most an eighth of its epochs'
//!   magnitude. Totals are always exact. Each thread that allocates owns a
//!   slot of about 26 KiB (its counters, 14 KiB, and its share of the
//!   sampling histograms; returned when it exits; at most
//!   [`MAX_THREAD_SLOTS`] at once, further threads share one slot under a
//!   lock); blocks of 4 KiB and more keep their tag in a page table of 4 bytes
//!   per 4 KiB page of address space in use (1 MiB per GiB touched).
//! - The epoch saturates at [`MAX_EPOCH`] (2^31 - 3, two billion advances).
//! - **The tool's own allocations** (a [`Snapshot`] and what taking it needed,
//!   and anything run inside [`untracked`]) are counted apart, in
//!   [`ToolUsage`], and never appear as the user's live bytes, even when the
//!   user drops them later.
//! - **fork()**: the child keeps all counts (its copy of the parent's heap is
//!   really there) and can free inherited blocks and take snapshots. The
//!   crate's locks (and the one around listing the loaded modules, so that
//!   no thread is inside the loader at the fork) are held across `fork()`
//!   by an atfork handler. If another
//!   thread was in the middle of folding an old epoch at the instant of the
//!   fork (a few instructions, once per epoch per thread), that thread's
//!   counts in the child may be misfiled between the epoch and its range.
//! - **Thread exit**: `thread_local!` destructors that allocate are counted
//!   (on the exiting thread's slot, then on the shared slot); the slot's counts
//!   move to a shared slot when the thread exits.
//! - A snapshot taken while other threads allocate is not an atomic cut (each
//!   thread's counters are read in turn); at quiescence it is exact.
//!
//! # Glossary
//!
//! - **epoch**: a numbered interval of the program's life, advanced by
//!   [`advance_epoch`]. Not jemalloc's `epoch` mallctl, which only refreshes
//!   jemalloc's statistics (a snapshot calls that too, to read them).
//! - **block**: one live heap allocation. **live bytes / blocks by epoch**:
//!   what is still allocated, grouped by birth epoch.
//! - **snapshot**: the accounting state at one instant ([`Snapshot`]).
//! - **site**: a call stack that allocated sampled blocks; its *label* is
//!   the `file:line function` of its first user frame.
//! - **survivor**: a block born in a closed epoch, still live.
//! - **cycle**: one connect/use/disconnect round of a soak test.
//!
//! # How it stays cheap
//!
//! The 4-byte tag goes right after the block's data, in the unused tail of its
//! size class when there is one (a 100-byte request already gets 112 bytes),
//! so most blocks cost no memory; blocks of 4 KiB and up keep it in a page
//! table, so a 4096-byte buffer does not move into jemalloc's 5120-byte class. Counting is
//! a plain load and store into the thread's own slot. See `ARCHITECTURE.md`.

mod alloc;
mod backend;
mod clock;
mod counters;
mod epoch;
mod histogram;
pub mod leaks;
mod lock;
mod modules;
mod os_mem;
mod page_table;
mod reentry;
mod registry;
pub mod retention;
mod sampled_table;
mod sampler;
mod slot;
mod snapshot;
mod stacks;
mod symbolize;
mod sys;
mod tag;
mod tool_memory;

pub use crate::alloc::EpochAlloc;
#[cfg(feature = "jemalloc")]
pub use crate::backend::Jemalloc;
pub use crate::backend::{Backend, System};
pub use crate::epoch::{advance_epoch, epoch};
pub use crate::leaks::{
    assert_no_leaks, assert_no_leaks_future, track, track_future, LeakScope, Survivors, TrackFuture,
};
pub use crate::registry::MAX_THREAD_SLOTS;
pub use crate::sampler::mode::{
    always_sampled_from, sampling, sampling_seed, set_sampling, set_sampling_seed, SampleMode,
    DEFAULT_INTERVAL, SAMPLE_ENV, SEED_ENV,
};
pub use crate::sampler::policy::STARTUP_RECORDS;
pub use crate::snapshot::{snapshot, snapshot_with_retention};
pub use crate::symbolize::{release_symbol_cache, set_site_rule, site_rule, symbolize};
pub use crate::tool_memory::{tool_metadata, ToolMetadata};
pub use alloc_snapshot::trim::SiteRule;
pub use alloc_snapshot::{
    AllocatorStats, EpochLive, Frame, Histogram, Histograms, Sampling, SiteKey, SiteLive,
    SiteSurvivors, Snapshot, Stack, ToolUsage, Totals,
};

/// How many of the most recent epochs a snapshot reports one by one.
pub const EXACT_WINDOW: u32 = counters::WINDOW as u32;

/// Live sampled blocks the sampled-block table holds at most once a mode is
/// set (16 shards of 16384 records of 32 bytes: 8 MiB of address space,
/// written as the records come). At the defaults it holds half as many
/// (shards of 8,192 records, 4 MiB), and the policy's dense capture stops
/// at 57,344 records, then thins out in steps (`policy`'s graded capture).
/// Samples beyond it are dropped and counted in [`Sampling::dropped_full`].
pub const MAX_SAMPLED_BLOCKS: usize = sampled_table::CAPACITY;

/// Distinct call stacks the stack table holds at most (about 2.1 MiB of
/// address space). Samples of further stacks are attributed to the overflow
/// stack (id 0) and counted in [`Sampling::stack_overflow`].
pub const MAX_STACKS: usize = stacks::MAX_STACKS;

/// Frames captured per stack at most, the tool's own frames included.
pub const MAX_STACK_DEPTH: usize = stacks::MAX_DEPTH;
/// Whether this build captures sampled stacks by walking frame pointers
/// (about 50 ns a stack; the build's rustflags have `-C
/// force-frame-pointers=yes` on x86-64 or AArch64 Linux with glibc) rather
/// than with the system unwinder (about 3 µs). See "Frame pointers" above.
pub const FRAME_POINTER_CAPTURE: bool = stacks::FRAME_POINTERS;

/// The last epoch [`advance_epoch`] reaches.
pub const MAX_EPOCH: u32 = counters::MAX_EPOCH;

/// Operations of signal handlers that allocated while their thread was
/// inside the tool, and that could not be counted because the thread's
/// queue of deferred work was full (more than 32 such operations in one
/// interruption). 0 in any program whose handlers allocate a few blocks at
/// a time; each one is a block counted in no epoch.
///
/// A handler that allocates or frees while the thread it interrupted is in
/// the tool's slow path (sampling, a sampled free, a first allocation, an
/// old epoch) or holds one of the tool's locks (a snapshot) takes no lock:
/// its block is not sampled and its counts are made when the interrupted
/// code leaves the tool, so counts stay exact and nothing deadlocks.
#[must_use]
pub fn signal_reentry_lost() -> u64 {
    reentry::lost()
}

/// Runs `f` with the current thread's allocations counted as the tool's, not
/// the user's: for instrumentation code (serialising a snapshot, an admin
/// endpoint) that must not show up as a leak. Blocks allocated inside stay
/// the tool's when freed later; user blocks freed inside are still taken from
/// the user's counts. Threads spawned inside are not affected.
pub fn untracked<R>(f: impl FnOnce() -> R) -> R {
    let _scope = registry::ToolScope::enter();
    f()
}

/// Wraps `fut` so that every poll of it runs in [`untracked`], on whichever
/// thread polls it: what it allocates is the tool's, also when the
/// program's own async runtime runs it (an admin route mounted in the
/// program's HTTP server). Allocations made on its behalf outside its polls
/// (the server reading the request, writing the response) are the
/// server's, as for any request.
pub fn untracked_future<F: core::future::Future>(fut: F) -> Untracked<F> {
    // The box is the tool's too.
    Untracked {
        inner: untracked(|| Box::pin(fut)),
    }
}

/// A future whose polls run in [`untracked`]; see [`untracked_future`].
#[must_use = "futures do nothing unless polled"]
pub struct Untracked<F> {
    // Boxed so that it is polled through `Pin` without unsafe projection.
    inner: core::pin::Pin<Box<F>>,
}

impl<F> core::fmt::Debug for Untracked<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Untracked").finish_non_exhaustive()
    }
}

impl<F: core::future::Future> core::future::Future for Untracked<F> {
    type Output = F::Output;

    fn poll(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<F::Output> {
        let inner = self.inner.as_mut();
        untracked(|| inner.poll(cx))
    }
}
