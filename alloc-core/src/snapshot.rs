//! Taking a snapshot: sum every slot, fold old epochs into ranges, add RSS
//! and the inner allocator's statistics.
//!
//! The cost is one pass over the slots of threads that ever allocated
//! (about 10 KiB each) plus two small files read: microseconds, independent of
//! the number of live blocks. The whole function runs in the tool's scope, so
//! the `Snapshot` it returns (and everything it allocates on the way) is
//! counted as the tool's, never as the user's.

use crate::counters::{bucket, bucket_range, SlotCopy, COARSE, NEVER, WINDOW};
use crate::epoch::EPOCH;
use crate::registry::{self, ToolScope, TOOL_BLOCKS, TOOL_BYTES};
use crate::{page_table, AllocatorStats};
use alloc_snapshot::{EpochLive, Snapshot, ToolUsage, Totals};
use core::sync::atomic::Ordering::*;

/// Sums of all slots: the exact window keyed like a ring, and coarse buckets.
struct Sum {
    ops: [u64; 3],
    exact: [(u32, i64, i64); WINDOW],
    coarse: [(i64, i64); COARSE],
}

impl Sum {
    fn add_coarse(&mut self, epoch: u32, b: i64, n: i64) {
        let c = &mut self.coarse[bucket(epoch) & (COARSE - 1)];
        c.0 = c.0.wrapping_add(b);
        c.1 = c.1.wrapping_add(n);
    }

    /// The same rule as a slot's ring: the newer epoch keeps the entry.
    fn add_exact(&mut self, epoch: u32, b: i64, n: i64) {
        let e = &mut self.exact[epoch as usize & (WINDOW - 1)];
        if e.0 == epoch {
            e.1 = e.1.wrapping_add(b);
            e.2 = e.2.wrapping_add(n);
        } else if e.0 == NEVER || e.0 < epoch {
            let old = *e;
            *e = (epoch, b, n);
            if old.0 != NEVER {
                self.add_coarse(old.0, old.1, old.2);
            }
        } else {
            self.add_coarse(epoch, b, n);
        }
    }

    fn add_slot(&mut self, s: &SlotCopy) {
        for (o, v) in self.ops.iter_mut().zip(s.ops) {
            *o = o.wrapping_add(v);
        }
        for &(epoch, b, n) in &s.ring {
            if b != 0 || n != 0 {
                self.add_exact(epoch, b, n);
            }
        }
        for (c, &(b, n)) in self.coarse.iter_mut().zip(&s.coarse) {
            c.0 = c.0.wrapping_add(b);
            c.1 = c.1.wrapping_add(n);
        }
    }
}

fn clamp(v: i64) -> u64 {
    v.max(0) as u64
}

/// Takes a snapshot of the accounting state now. See [`Snapshot`].
pub fn snapshot() -> Snapshot {
    let _tool = ToolScope::enter();
    let mut sum = Box::new(Sum {
        ops: [0; 3],
        exact: [(NEVER, 0, 0); WINDOW],
        coarse: [(0, 0); COARSE],
    });
    let mut scratch = Box::new(SlotCopy::new());
    registry::read_all(|s| sum.add_slot(s), &mut scratch);

    let newest = sum
        .exact
        .iter()
        .filter(|e| e.0 != NEVER)
        .map(|e| e.0)
        .max()
        .unwrap_or(0);
    let epoch = EPOCH.load(Acquire).max(newest);
    let window_start = epoch.saturating_sub(WINDOW as u32 - 1);
    for i in 0..WINDOW {
        let (e, b, n) = sum.exact[i];
        if e != NEVER && e < window_start {
            sum.add_coarse(e, b, n);
            sum.exact[i] = (NEVER, 0, 0);
        }
    }

    let mut epochs = Vec::with_capacity(64);
    for (i, &(b, n)) in sum.coarse.iter().enumerate().take(240) {
        if b == 0 && n == 0 {
            continue;
        }
        let (first, last) = bucket_range(i);
        if first >= window_start {
            continue; // can only be zero: the exact window holds these epochs
        }
        epochs.push(EpochLive {
            first,
            last: last.min(window_start - 1),
            live_bytes: clamp(b),
            live_blocks: clamp(n),
        });
    }
    let mut exact: Vec<_> = sum
        .exact
        .iter()
        .filter(|e| e.0 != NEVER && (e.1 != 0 || e.2 != 0))
        .map(|&(e, b, n)| EpochLive {
            first: e,
            last: e,
            live_bytes: clamp(b),
            live_blocks: clamp(n),
        })
        .collect();
    exact.sort_by_key(|e| e.first);
    epochs.extend(exact);

    let (live_bytes, live_blocks) = epochs
        .iter()
        .fold((0u64, 0u64), |(b, n), e| (b + e.live_bytes, n + e.live_blocks));
    let (threads, slot_bytes) = registry::slot_usage();
    Snapshot {
        epoch,
        timestamp_unix_ns: unix_ns(),
        exact_window: WINDOW as u32,
        totals: Totals {
            live_bytes,
            live_blocks,
            allocs: sum.ops[0],
            frees: sum.ops[1],
            reallocs: sum.ops[2],
        },
        epochs,
        rss_bytes: rss_bytes(),
        allocator: crate::stats_reader()(),
        tool: ToolUsage {
            live_bytes: clamp(TOOL_BYTES.load(Relaxed)),
            live_blocks: clamp(TOOL_BLOCKS.load(Relaxed)),
            metadata_bytes: (slot_bytes + page_table::leaf_bytes()) as u64,
            threads: threads as u64,
        },
    }
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Resident set size from `/proc/self/statm` (second field, in pages).
fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0)?)
}

/// Reads the inner allocator's statistics, if it has any.
pub(crate) type StatsReader = fn() -> Option<AllocatorStats>;
