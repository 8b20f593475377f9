//! Builders of synthetic snapshots, stacks and series: the one home for
//! them, shared by the tests and the examples (`sample_series.rs`,
//! `speed.rs` and `html_scale.rs` include this file).
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

/// The tests' deterministic generator, seeded explicitly.
pub(crate) use fastrand::Rng;

/// A fresh empty temporary directory for one test.
pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("alloc-report-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

use alloc_snapshot::{Frame, SampleMode, Sampling, SiteLive, Stack};

/// A call stack: an allocator frame of `std`, the site frame (the user
/// frame), then `callers`, each on its own address.
pub(crate) fn stack(id: u32, file: &str, line: u32, function: &str, callers: &[&str]) -> Stack {
    let base = 0x5555_0000_0000 + u64::from(id) * 0x1000;
    let mut frames = vec![Frame {
        ip: base,
        function: Some("alloc::alloc::alloc".into()),
        file: Some("/rustc/library/alloc/src/alloc.rs".into()),
        line: Some(94),
    }];
    frames.push(Frame {
        ip: base + 0x10,
        function: Some(function.into()),
        file: Some(file.into()),
        line: Some(line),
    });
    for (i, c) in callers.iter().enumerate() {
        frames.push(Frame {
            ip: base + 0x20 + i as u64 * 0x10,
            function: Some((*c).into()),
            file: Some("src/main.rs".into()),
            line: Some(10 + i as u32),
        });
    }
    Stack {
        id,
        frames,
        user_frame: Some(1),
    }
}

/// One simulated call site: blocks of `size` bytes; `live(k, e)` of them,
/// born in epoch `e`, are live at the snapshot of epoch `k`.
pub(crate) struct SiteSpec {
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) function: &'static str,
    pub(crate) size: u64,
    pub(crate) live: Box<dyn Fn(u32, u32) -> u64>,
}

pub(crate) fn site(
    file: &'static str,
    line: u32,
    function: &'static str,
    size: u64,
    live: impl Fn(u32, u32) -> u64 + 'static,
) -> SiteSpec {
    SiteSpec {
        file,
        line,
        function,
        size,
        live: Box::new(live),
    }
}

/// The base seed of the simulated sampler: `ALLOC_CORE_SEED` (decimal or
/// `0x` hex, as alloc-core reads it), else 0. `tests/repeat-statistical`
/// sets it to run the statistical tests under many seeds; a failure names
/// it so the run can be replayed.
pub(crate) fn base_seed() -> u64 {
    let Ok(v) = std::env::var("ALLOC_CORE_SEED") else {
        return 0;
    };
    let v = v.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("ALLOC_CORE_SEED={v:?}: expected a number such as 42 or 0x2a"))
}

/// A well-mixed hash of `x`: the first draw of a generator seeded with it.
pub(crate) fn mix(x: u64) -> u64 {
    Rng::with_seed(x).u64(..)
}

/// A series of `n` snapshots (epochs `0..n`) of a program made of `sites`.
/// The exact epoch counters hold every block (plus 4 KiB in flight in the
/// open epoch); the call-site data is what a sampler with a mean interval
/// of `interval` bytes would record: each block is sampled, once at birth,
/// with probability `1 - exp(-size / interval)` and then weighs `1 / p`.
/// `interval` 0 records every block (sampling mode `all`). Blocks of an
/// epoch die youngest index first, so a sampled block stays sampled.
pub(crate) fn site_series(
    n: u32,
    sites: &[SiteSpec],
    interval: u64,
    seed: u64,
) -> Vec<SnapshotFile> {
    let stacks: Vec<Stack> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| stack(i as u32 + 1, s.file, s.line, s.function, &["main"]))
        .collect();
    (0..n)
        .map(|k| {
            let mut exact: Vec<(u32, u64, u64)> = Vec::new();
            let mut entries: Vec<SiteLive> = Vec::new();
            let mut live_sampled = 0;
            for e in 0..=k {
                let (mut bytes, mut blocks) = if e == k { (4096, 4) } else { (0, 0) };
                for (i, s) in sites.iter().enumerate() {
                    let count = if e < k { (s.live)(k, e) } else { 0 };
                    bytes += count * s.size;
                    blocks += count;
                    let p = if interval == 0 {
                        1.0
                    } else {
                        1.0 - (-(s.size as f64) / interval as f64).exp()
                    };
                    let sampled = (0..count)
                        .filter(|&j| {
                            let h = mix(seed ^ mix((i as u64) << 40 ^ u64::from(e) << 20 ^ j));
                            ((h >> 11) as f64 / (1u64 << 53) as f64) < p
                        })
                        .count() as u64;
                    if sampled > 0 {
                        live_sampled += sampled;
                        entries.push(SiteLive {
                            stack: i as u32 + 1,
                            epoch: e,
                            bytes: sampled as f64 * s.size as f64 / p,
                            blocks: sampled as f64 / p,
                            samples: sampled,
                        });
                    }
                }
                exact.push((e, bytes, blocks));
            }
            entries.sort_by_key(|s| (s.stack, s.epoch));
            let mut snapshot = snap(k, &exact);
            snapshot.sampling = Sampling {
                mode: if interval == 0 {
                    SampleMode::All
                } else {
                    SampleMode::Interval(interval)
                },
                sampled: live_sampled,
                live_sampled,
                dropped_full: 0,
                stack_overflow: 0,
            };
            snapshot.stacks = stacks.clone();
            snapshot.sites = entries;
            SnapshotFile::new(snapshot)
        })
        .collect()
}

/// Sets the exact counters of `s` (at epoch `k`) from its call sites: each
/// epoch `0..=k` holds its sites' estimates, the open epoch 4 KiB more in
/// 4 blocks in flight; the totals are their sums and RSS is 64 MiB plus
/// twice the live heap.
pub(crate) fn exact_from_sites(s: &mut Snapshot, k: u32) {
    s.epochs.clear();
    s.epochs.extend((0..=k).map(|e| EpochLive {
        first: e,
        last: e,
        live_bytes: 0,
        live_blocks: 0,
    }));
    for x in &s.sites {
        let ep = &mut s.epochs[x.epoch as usize];
        ep.live_bytes += x.bytes as u64;
        ep.live_blocks += x.blocks as u64;
    }
    s.epochs[k as usize].live_bytes += 4096;
    s.epochs[k as usize].live_blocks += 4;
    s.epochs.retain(|e| e.live_bytes > 0);
    s.totals.live_bytes = s.epochs.iter().map(|e| e.live_bytes).sum();
    s.totals.live_blocks = s.epochs.iter().map(|e| e.live_blocks).sum();
    s.rss_bytes = Some((64 << 20) + s.totals.live_bytes * 2);
}

/// A snapshot at epoch 3 whose one survivor (64 bytes born in epoch 1) has
/// a raw stack of one return address, `ip`, in a module at `path` loaded at
/// `base` with executable range `base..end` and `build_id`: what the
/// offline symboliser is given.
pub(crate) fn raw_snapshot(
    ip: u64,
    path: &str,
    base: u64,
    end: u64,
    build_id: Option<String>,
) -> Snapshot {
    let mut s = snap(3, &[(1, 64, 1)]);
    s.stacks = vec![Stack {
        id: 1,
        frames: vec![Frame {
            ip,
            function: None,
            file: None,
            line: None,
        }],
        user_frame: None,
    }];
    s.sites = vec![SiteLive {
        stack: 1,
        epoch: 1,
        bytes: 64.0,
        blocks: 1.0,
        samples: 1,
    }];
    s.modules = vec![alloc_snapshot::Module {
        path: path.into(),
        base,
        ranges: vec![alloc_snapshot::AddrRange { start: base, end }],
        build_id,
    }];
    s
}
