//! Taking a snapshot: sum every slot, fold old epochs into ranges, add RSS
//! and the inner allocator's statistics, the sampled sites, the histograms
//! and the process's run identity (computed at the first snapshot: two
//! more small files read, `/proc/self/stat` and `/proc/stat`).
//!
//! The cost is one pass over the slots of threads that ever allocated
//! (about 26 KiB each, the sampling histograms included) plus two small files read: microseconds, independent of
//! the number of live blocks; with sampling on, plus one pass over the
//! sampled-block table (a few milliseconds when it is full). The whole function runs in the tool's scope, so
//! the `Snapshot` it returns (and everything it allocates on the way) is
//! counted as the tool's, never as the user's.

use crate::counters::{bucket, bucket_range, Plain, COARSE, NEVER, WINDOW};
use crate::epoch::EPOCH;
use crate::registry::{self, ToolScope, TOOL_BLOCKS, TOOL_BYTES};
use crate::sampler::mode;
use crate::slot::SlotCopy;
use crate::{histogram, sampled_table, stacks};
use alloc_snapshot::{
    EpochLive, Histograms, RunIdentity, Sampling, SiteLive, Snapshot, Stack, ToolUsage, Totals,
};
use core::sync::atomic::{AtomicPtr, Ordering::*};
use std::collections::BTreeMap;

/// Sums of all slots: the exact window keyed like a ring, and coarse buckets.
struct Sum {
    reallocs: u64,
    sampled: u64,
    exact: [(u32, Plain); WINDOW],
    coarse: [Plain; COARSE],
}

impl Sum {
    fn add_coarse(&mut self, epoch: u32, v: Plain) {
        self.coarse[bucket(epoch) & (COARSE - 1)].add(v);
    }

    /// The same rule as a slot's ring: the newer epoch keeps the entry.
    fn add_exact(&mut self, epoch: u32, v: Plain) {
        let e = &mut self.exact[epoch as usize & (WINDOW - 1)];
        if e.0 == epoch {
            e.1.add(v);
        } else if e.0 == NEVER || e.0 < epoch {
            let old = core::mem::replace(e, (epoch, v));
            if old.0 != NEVER {
                self.add_coarse(old.0, old.1);
            }
        } else {
            self.add_coarse(epoch, v);
        }
    }

    fn add_slot(&mut self, s: &SlotCopy) {
        self.reallocs = self.reallocs.wrapping_add(s.reallocs);
        self.sampled = self.sampled.wrapping_add(s.sampled);
        for &(epoch, v) in &s.ring {
            if !v.is_zero() {
                self.add_exact(epoch, v);
            }
        }
        for (c, v) in self.coarse.iter_mut().zip(&s.coarse) {
            c.add(*v);
        }
    }
}

fn clamp(v: i64) -> u64 {
    v.max(0) as u64
}

/// Takes a snapshot of the accounting state now. See [`Snapshot`].
///
/// At the defaults (no sampling mode set) each snapshot is also the
/// capture policy's step: after summing the counters it switches dense
/// capture on or off from what they show (the crate docs, "The default
/// capture policy").
#[must_use = "a snapshot not read is only its cost (and the capture policy's step)"]
pub fn snapshot() -> Snapshot {
    take(false)
}

/// A [`snapshot`] with a retention scan: what holds each sampled survivor
/// (a static, a thread's stack or thread-local storage, another sampled
/// block, or nothing), in [`Snapshot::retention`]. The scan reads the
/// program's memory while its threads keep running (never faulting, never
/// making a page resident, within a time and memory budget: see the
/// `retention` module's docs and [`alloc_snapshot::retention`]); it costs
/// milliseconds to a few hundred milliseconds with a full sampled-block
/// table, and nothing on the allocation path.
#[must_use = "a snapshot not read is only its cost (and the capture policy's step)"]
#[inline(never)]
pub fn snapshot_with_retention() -> Snapshot {
    take(true)
}

/// The steps of a snapshot, each a function below: the loaded modules
/// (before any lock of ours), the slots' counts summed, live bytes per
/// birth epoch, the capture policy's step, the sampled blocks (with their
/// retention scan if asked), the histograms, and the rest of the
/// accounting state.
#[inline(never)]
fn take(retention: bool) -> Snapshot {
    let here = 0u8;
    let here = core::ptr::addr_of!(here).addr();
    let _tool = ToolScope::enter();
    // Before any lock of ours: the loader holds its own lock meanwhile.
    let (modules, roots) = crate::modules::loaded_with_roots();
    let mut sum = sum_slots();
    let epoch = sum.epoch();
    let window_start = epoch.saturating_sub(WINDOW as u32 - 1);
    sum.fold_before(window_start);
    let epochs = sum.epochs(window_start);
    // The default capture policy steps here, on every snapshot: it reads
    // which epochs still hold live bytes (see `policy::after_snapshot`).
    crate::sampler::policy::after_snapshot(epoch, &epochs);
    let sampled = sampled_blocks(sum.sampled, retention.then_some((epoch, &roots, here)));
    Snapshot {
        epoch,
        timestamp_unix_ns: unix_ns(),
        exact_window: WINDOW as u32,
        totals: sum.totals(&epochs),
        epochs,
        rss_bytes: crate::sys::resident_bytes(),
        allocator: crate::backend::stats(),
        tool: tool_usage(),
        sampling: sampled.sampling,
        stacks: sampled.stacks,
        sites: sampled.sites,
        histograms: histograms(),
        modules,
        run: Some(run_identity()),
        retention: sampled.retention,
    }
}

/// Every slot's counts, summed.
fn sum_slots() -> Box<Sum> {
    let mut sum = Box::new(Sum {
        reallocs: 0,
        sampled: 0,
        exact: [(NEVER, Plain::default()); WINDOW],
        coarse: [Plain::default(); COARSE],
    });
    let mut scratch = Box::new(SlotCopy::new());
    registry::read_all(|s| sum.add_slot(s), &mut scratch);
    sum
}

impl Sum {
    /// The snapshot's epoch: the global one, or a newer one a slot counted
    /// in while the slots were read.
    fn epoch(&self) -> u32 {
        let newest = self
            .exact
            .iter()
            .filter(|e| e.0 != NEVER)
            .map(|e| e.0)
            .max()
            .unwrap_or(0);
        EPOCH.0.load(Acquire).max(newest)
    }

    /// Folds the exact entries older than `window_start` into their coarse
    /// buckets.
    fn fold_before(&mut self, window_start: u32) {
        for i in 0..WINDOW {
            let (e, v) = self.exact[i];
            if e != NEVER && e < window_start {
                self.add_coarse(e, v);
                self.exact[i] = (NEVER, Plain::default());
            }
        }
    }

    /// Live bytes and blocks per birth epoch, oldest first: the coarse
    /// ranges before `window_start`, then each epoch of the window.
    fn epochs(&self, window_start: u32) -> Vec<EpochLive> {
        let mut epochs = Vec::with_capacity(64);
        for (i, v) in self.coarse.iter().enumerate().take(240) {
            if v.bytes == 0 && v.blocks() == 0 {
                continue;
            }
            let (first, last) = bucket_range(i);
            if first >= window_start {
                continue; // can only be zero: the exact window holds these epochs
            }
            epochs.push(EpochLive {
                first,
                last: last.min(window_start - 1),
                live_bytes: clamp(v.bytes),
                live_blocks: clamp(v.blocks()),
            });
        }
        let mut exact: Vec<_> = self
            .exact
            .iter()
            .filter(|e| e.0 != NEVER && (e.1.bytes != 0 || e.1.blocks() != 0))
            .map(|&(e, v)| EpochLive {
                first: e,
                last: e,
                live_bytes: clamp(v.bytes),
                live_blocks: clamp(v.blocks()),
            })
            .collect();
        exact.sort_by_key(|e| e.first);
        epochs.extend(exact);
        epochs
    }

    /// The totals: live bytes and blocks (from `epochs`), and the calls.
    fn totals(&self, epochs: &[EpochLive]) -> Totals {
        let (mut allocs, mut frees) = (0u64, 0u64);
        for v in self.exact.iter().map(|e| &e.1).chain(self.coarse.iter()) {
            allocs = allocs.wrapping_add(v.allocs);
            frees = frees.wrapping_add(v.frees);
        }
        let (live_bytes, live_blocks) = epochs.iter().fold((0u64, 0u64), |(b, n), e| {
            (b + e.live_bytes, n + e.live_blocks)
        });
        Totals {
            live_bytes,
            live_blocks,
            allocs,
            frees,
            reallocs: self.reallocs,
        }
    }
}

/// What a snapshot tells of the sampled blocks.
struct Sampled {
    sampling: Sampling,
    stacks: Vec<Stack>,
    sites: Vec<SiteLive>,
    retention: Option<alloc_snapshot::retention::Retention>,
}

/// The sampled blocks' sites, from a copy of the sampled-block table;
/// with `scan` (the snapshot's epoch, the modules' roots and an address
/// on this stack), their retention scan too.
fn sampled_blocks(
    sampled_total: u64,
    scan: Option<(u32, &crate::modules::ModuleRoots, usize)>,
) -> Sampled {
    // Room for every record up front (and a quarter more for those added
    // meanwhile): a buffer that grew would leave its smaller copies, full
    // of block addresses, in freed memory, where a later retention scan of
    // the heap would take them for pointers.
    let live = sampled_table::live() as usize;
    let mut records = Vec::with_capacity(live + live / 4 + 1024);
    sampled_table::collect(&mut records, |_| true);
    let (sampling, stacks, sites) = sampled_sites(sampled_total, &records);
    let retention =
        scan.map(|(epoch, roots, here)| crate::retention::scan(&mut records, epoch, roots, here));
    // The copy holds every sampled block's address: cleared before it is
    // freed, so that no later retention scan of the heap takes it for a
    // pointer to them.
    records.iter_mut().for_each(|r| r.addr = 0);
    drop(core::hint::black_box(records));
    Sampled {
        sampling,
        stacks,
        sites,
        retention,
    }
}

/// The sampling histograms: every slot's share and the shared set.
fn histograms() -> Histograms {
    let mut hist_sums = Box::new(histogram::Sums::new());
    registry::each_slot(|s| s.sampler.hists.add_to(&mut hist_sums));
    histogram::SHARED.add_to(&mut hist_sums);
    let [alloc_size, lifetime_epochs, lifetime_ns] = hist_sums.histograms();
    Histograms {
        alloc_size,
        lifetime_epochs,
        lifetime_ns,
    }
}

/// The tool's own blocks, metadata and threads.
fn tool_usage() -> ToolUsage {
    let (threads, _) = registry::slot_usage();
    ToolUsage {
        live_bytes: clamp(TOOL_BYTES.load(Relaxed)),
        live_blocks: clamp(TOOL_BLOCKS.load(Relaxed)),
        metadata_bytes: crate::tool_memory::tool_metadata().total(),
        threads: threads as u64,
    }
}

/// This process's run identity, computed at its first snapshot (in the
/// tool's scope, never on the allocation path) and kept; a forked child,
/// whose pid differs from the one kept, computes its own at each snapshot.
///
/// Never waits for another thread: a child forked while a thread of its
/// parent was computing the identity has no such thread, so a lock or a
/// `OnceLock` held across the computation would stop the child's first
/// snapshot for good. Threads that race compute one each and the first to
/// publish wins.
fn run_identity() -> RunIdentity {
    static RUN: AtomicPtr<RunIdentity> = AtomicPtr::new(core::ptr::null_mut());
    let kept = RUN.load(Acquire);
    if !kept.is_null() {
        // SAFETY: a non-null `RUN` points to a `RunIdentity` leaked below
        // and published with `Release`; it is never freed or written again.
        let run = unsafe { &*kept };
        return if run.pid == std::process::id() {
            run.clone()
        } else {
            new_run_identity()
        };
    }
    let run = new_run_identity();
    let mine = Box::into_raw(Box::new(run.clone()));
    match RUN.compare_exchange(core::ptr::null_mut(), mine, AcqRel, Acquire) {
        Ok(_) => run,
        Err(_) => {
            // Another thread published first: its identity is the process's.
            // SAFETY: `mine` came from `Box::into_raw` above and was never
            // published.
            drop(unsafe { Box::from_raw(mine) });
            run_identity()
        }
    }
}

fn new_run_identity() -> RunIdentity {
    use std::hash::{BuildHasher, Hasher};
    let pid = std::process::id();
    let now = unix_ns();
    let mut id = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(pid);
        h.write_u64(now);
        id.push_str(&format!("{:016x}", h.finish()));
    }
    RunIdentity {
        pid,
        started_unix_ns: process_start_unix_ns().unwrap_or(0),
        id,
    }
}

/// When this process started, from the kernel's records: its start time
/// in clock ticks after boot (`/proc/self/stat`, field 22; ticks of
/// 1/100 s, Linux's `USER_HZ` for user space) plus the boot time
/// (`/proc/stat`, `btime`). `None` where those files are not there.
fn process_start_unix_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after the last ')'; field 22 is the 20th.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime * 1_000_000_000 + ticks * 10_000_000)
}

/// The sampled blocks `records` (live now), summed per stack and birth epoch, and the
/// stacks they refer to (raw instruction pointers; see
/// [`crate::symbolize()`]), with `sampled_total` samples taken so far (the
/// slots' sum). Runs in the tool's scope.
fn sampled_sites(
    sampled_total: u64,
    records: &[sampled_table::Record],
) -> (Sampling, Vec<Stack>, Vec<SiteLive>) {
    let mut by_site: BTreeMap<(u32, u32), SiteLive> = BTreeMap::new();
    for r in records {
        let e = by_site.entry((r.stack, r.epoch)).or_insert(SiteLive {
            stack: r.stack,
            epoch: r.epoch,
            bytes: 0.0,
            blocks: 0.0,
            samples: 0,
        });
        let w = f64::from(r.weight);
        e.bytes += r.size as f64 * w;
        e.blocks += w;
        e.samples += 1;
    }
    let sites: Vec<SiteLive> = by_site.into_values().collect();
    let mut ids: Vec<u32> = sites.iter().map(|s| s.stack).collect();
    ids.dedup();
    let stacks = ids.into_iter().map(stacks::unsymbolised).collect();
    let info = Sampling {
        mode: mode::sampling(),
        sampled: sampled_total,
        live_sampled: sampled_table::live(),
        dropped_full: sampled_table::DROPPED_FULL.load(Relaxed),
        stack_overflow: stacks::OVERFLOW.load(Relaxed),
    };
    (info, stacks, sites)
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
