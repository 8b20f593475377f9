//! Builders of synthetic snapshots and series shared by the tests.
#![allow(dead_code)]

use alloc_report::SnapshotFile;
use alloc_snapshot::{AllocatorStats, EpochLive, Snapshot, ToolUsage, Totals};

/// A snapshot at `epoch` with `(birth epoch, bytes, blocks)` entries.
pub(crate) fn snap(epoch: u32, live: &[(u32, u64, u64)]) -> Snapshot {
    let epochs: Vec<EpochLive> = live
        .iter()
        .filter(|&&(_, b, n)| b > 0 || n > 0)
        .map(|&(e, b, n)| EpochLive {
            first: e,
            last: e,
            live_bytes: b,
            live_blocks: n,
        })
        .collect();
    let live_bytes = epochs.iter().map(|e| e.live_bytes).sum();
    let live_blocks = epochs.iter().map(|e| e.live_blocks).sum();
    Snapshot {
        epoch,
        timestamp_unix_ns: 1_700_000_000_000_000_000 + u64::from(epoch) * 1_000_000,
        exact_window: 1024,
        totals: Totals {
            live_bytes,
            live_blocks,
            allocs: live_blocks + 10 * u64::from(epoch),
            frees: 10 * u64::from(epoch),
            reallocs: u64::from(epoch),
        },
        epochs,
        rss_bytes: Some(8 << 20),
        allocator: Some(AllocatorStats {
            name: "jemalloc".into(),
            allocated: live_bytes,
            resident: 4 << 20,
            retained: 1 << 20,
        }),
        tool: ToolUsage {
            live_bytes: 4096,
            live_blocks: 3,
            metadata_bytes: 14336,
            threads: 2,
        },
        ..Snapshot::default()
    }
}

/// Folds every entry born more than `window` epochs before the snapshot into
/// one bucket, as alloc-core does for old epochs.
pub(crate) fn fold(mut s: Snapshot, window: u32) -> Snapshot {
    let cut = s.epoch.saturating_sub(window);
    let (old, recent): (Vec<EpochLive>, Vec<EpochLive>) =
        s.epochs.iter().partition(|e| e.last < cut);
    if let (Some(f), Some(l)) = (old.first(), old.last()) {
        let mut bucket = EpochLive {
            first: f.first,
            last: l.last,
            live_bytes: 0,
            live_blocks: 0,
        };
        for e in &old {
            bucket.live_bytes += e.live_bytes;
            bucket.live_blocks += e.live_blocks;
        }
        s.epochs = std::iter::once(bucket).chain(recent).collect();
    }
    s.exact_window = window;
    s
}

/// A series of snapshots at epochs `0..n`; `live(k, e)` gives the bytes and
/// blocks born in epoch `e` still live at the snapshot of epoch `k` (e ≤ k).
/// Every snapshot also has 4 KiB of in-flight work in its open epoch.
pub(crate) fn model(n: u32, mut live: impl FnMut(u32, u32) -> (u64, u64)) -> Vec<SnapshotFile> {
    (0..n)
        .map(|k| {
            let mut entries: Vec<(u32, u64, u64)> = (0..k)
                .map(|e| {
                    let (b, c) = live(k, e);
                    (e, b, c)
                })
                .collect();
            entries.push((k, 4096, 4));
            SnapshotFile::new(snap(k, &entries))
        })
        .collect()
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A fresh empty temporary directory for one test.
pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("alloc-report-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
