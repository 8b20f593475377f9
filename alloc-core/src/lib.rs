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
//! That's it. Every heap block now carries its birth epoch, and the crate
//! keeps exact live bytes and blocks per birth epoch. Without the `jemalloc`
//! feature (Miri, platforms without jemalloc), wrap [`System`] instead; any
//! other allocator works by implementing [`Backend`].
//!
//! Features: `jemalloc-stats` (default) builds jemalloc with its statistics
//! and reports `stats.allocated`, `stats.resident` and `stats.retained` in
//! every snapshot; jemalloc's statistics alone cost 10-17% of allocation time
//! (see `alloc-core/bench/README.md`). `jemalloc` alone offers jemalloc
//! without them (snapshots then carry RSS only).
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
//! # Epoch semantics
//!
//! - The program starts in epoch 0. [`advance_epoch`] closes the current epoch
//!   and returns the new one; [`epoch`] reads it. Epochs are process-wide.
//! - A block's birth epoch is the epoch current when it was allocated, on
//!   whichever thread. It never changes: **allocated before, freed after**
//!   (allocated in epoch 3, freed in epoch 9) removes its bytes from epoch 3.
//! - **Realloc keeps the birth epoch**, even when the block moves: the bytes of
//!   epoch 3 grow or shrink by the difference. A realloc counts in
//!   `reallocs`, neither as an allocation nor as a free.
//! - **Threads**: a block may be freed on any thread; counts stay exact.
//!   Counts are kept per thread without atomic read-modify-write instructions
//!   and summed by [`snapshot`].
//! - **Bytes** are the sizes the program asked for (`Layout::size()`), not
//!   the rounded-up sizes the allocator gave.
//! - **Failure**: a failed allocation or realloc returns null and changes no
//!   count.
//! - **Bounded memory however many epochs pass**: the most recent
//!   [`EXACT_WINDOW`] (256) epochs are kept one by one; older epochs are folded
//!   into ranges, 8 per doubling of the epoch number (epochs 512..=575,
//!   576..=639, ...), so a range covers at most an eighth of its epochs'
//!   magnitude. Totals are always exact. Each thread that allocates owns a
//!   slot of about 14 KiB (returned when it exits; at most
//!   [`MAX_THREAD_SLOTS`] at once, further threads share one slot under a
//!   lock); blocks of 4 KiB and more keep their tag in a page table of 4 bytes
//!   per 4 KiB page of address space in use (1 MiB per GiB touched).
//! - The epoch saturates at `u32::MAX - 2` (four billion advances).
//! - **The tool's own allocations** (a [`Snapshot`] and what taking it needed,
//!   and anything run inside [`untracked`]) are counted apart, in
//!   [`ToolUsage`], and never appear as the user's live bytes, even when the
//!   user drops them later.
//! - **fork()**: the child keeps all counts (its copy of the parent's heap is
//!   really there) and can free inherited blocks and take snapshots. The
//!   crate's one lock is held across `fork()` by an atfork handler. If another
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
mod counters;
mod epoch;
mod page_table;
mod registry;
mod snapshot;
mod tag;

pub use crate::alloc::EpochAlloc;
#[cfg(feature = "jemalloc")]
pub use crate::backend::Jemalloc;
pub use crate::backend::{Backend, System};
pub use crate::epoch::{advance_epoch, epoch};
pub use crate::registry::MAX_THREAD_SLOTS;
pub use crate::snapshot::snapshot;
pub use alloc_snapshot::{AllocatorStats, EpochLive, Snapshot, ToolUsage, Totals};

use core::sync::atomic::{AtomicPtr, Ordering::*};

/// How many of the most recent epochs a snapshot reports one by one.
pub const EXACT_WINDOW: u32 = counters::WINDOW as u32;

/// The last epoch [`advance_epoch`] reaches.
pub const MAX_EPOCH: u32 = counters::MAX_EPOCH;

/// Runs `f` with the current thread's allocations counted as the tool's, not
/// the user's: for instrumentation code (serialising a snapshot, an admin
/// endpoint) that must not show up as a leak. Blocks allocated inside stay
/// the tool's when freed later; user blocks freed inside are still taken from
/// the user's counts. Threads spawned inside are not affected.
pub fn untracked<R>(f: impl FnOnce() -> R) -> R {
    let _scope = registry::ToolScope::enter();
    f()
}

static STATS: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

fn no_stats() -> Option<AllocatorStats> {
    None
}

pub(crate) fn set_stats_reader(f: snapshot::StatsReader) {
    STATS.store(f as *mut (), Relaxed);
}

pub(crate) fn stats_reader() -> snapshot::StatsReader {
    let p = STATS.load(Relaxed);
    if p.is_null() {
        return no_stats;
    }
    // SAFETY: the only non-null values stored are `StatsReader` function
    // pointers (see `set_stats_reader`), and fn pointers round-trip through
    // data pointers on every platform Rust supports with std.
    unsafe { core::mem::transmute::<*mut (), snapshot::StatsReader>(p) }
}
