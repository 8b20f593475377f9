//! The classifier on a table of synthetic series: leaks of every rate,
//! caches that fill and hold, pools that warm up, noise; and a collection
//! made before the series that grows in steps (a growth leak) or stops.

mod common;

use alloc_report::analysis::{analyze, ClassifyOptions, VerdictKind};
use alloc_report::SnapshotFile;
use common::{fold, model, Rng};
use VerdictKind::{Leak, Ok, Plateau, Warmup};

/// Classifies `series` and checks the verdict and, for leaks, the slope in
/// bytes per cycle (within `tol`, relative).
fn check(name: &str, series: &[SnapshotFile], kind: VerdictKind, bytes_per_cycle: f64, tol: f64) {
    let r = analyze(series, &ClassifyOptions::default());
    let v = &r.sites[0];
    assert_eq!(v.kind, kind, "{name}: {v:?}");
    if kind == Leak {
        let err = (v.bytes_per_cycle - bytes_per_cycle).abs() / bytes_per_cycle;
        assert!(
            err <= tol,
            "{name}: slope {} vs {bytes_per_cycle}",
            v.bytes_per_cycle
        );
        assert!(v.confidence > 0.99, "{name}: confidence {}", v.confidence);
    }
}

#[test]
fn leaks_of_every_rate() {
    for (blocks, size) in [
        (1u64, 48u64),
        (1, 8),
        (3, 100),
        (10, 64),
        (100, 32),
        (1000, 4096),
    ] {
        let s = model(40, |_, _| (blocks * size, blocks));
        check(
            &format!("{blocks}x{size}"),
            &s,
            Leak,
            (blocks * size) as f64,
            1e-9,
        );
        let r = analyze(&s, &ClassifyOptions::default());
        assert_eq!(r.sites[0].blocks_per_cycle, blocks as f64);
    }
}

#[test]
fn the_table() {
    let mut rng = Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let mut noise = |k: u32, e: u32, amp: u64| -> u64 {
        // Work of the last 3 epochs not yet freed: transient survivors.
        if k - e <= 3 {
            rng.u64(1..=amp.max(1))
        } else {
            0
        }
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<SnapshotFile>, VerdictKind, f64, f64)> = vec![
        ("nothing survives", model(40, |_, _| (0, 0)), Ok, 0.0, 0.0),
        ("survive a while, all freed by the end",
            model(40, |k, e| if k < 39 && k - e < 5 { (100, 1) } else { (0, 0) }), Ok, 0.0, 0.0),
        ("1 block every other cycle", model(60, |_, e| if e % 2 == 0 { (64, 1) } else { (0, 0) }),
            Leak, 32.0, 1e-9),
        ("1 block every 10 cycles", model(200, |_, e| if e % 10 == 0 { (80, 1) } else { (0, 0) }),
            Leak, 8.0, 0.01),
        ("leak starts half way", model(80, |_, e| if e >= 40 { (256, 2) } else { (0, 0) }),
            Leak, 256.0, 1e-9),
        ("leak with noise", model(200, |k, e| (64 + noise(k, e, 1500), 1)), Leak, 64.0, 0.1),
        ("leak with folded old epochs", model(100, |_, _| (128, 1)).into_iter()
            .map(|f| SnapshotFile::new(fold(f.snapshot, 8))).collect(), Leak, 128.0, 1e-9),
        ("lru cache of 20 entries", model(100, |k, e| if k - e <= 20 { (512, 1) } else { (0, 0) }),
            Plateau, 0.0, 0.0),
        ("cache filled in the first 30 cycles, then holds",
            model(100, |_, e| if e < 30 { (1024, 2) } else { (0, 0) }), Plateau, 0.0, 0.0),
        ("leak that stopped half way", model(100, |_, e| if e < 50 { (64, 1) } else { (0, 0) }),
            Plateau, 0.0, 0.0),
        ("noise only", model(100, |k, e| (noise(k, e, 4000), 1)), Plateau, 0.0, 0.0),
        ("pool warmed up in epoch 0", model(50, |_, e| if e == 0 { (65536, 64) } else { (0, 0) }),
            Warmup, 0.0, 0.0),
        ("pool warmed up over 3 epochs of 100",
            model(100, |_, e| if e < 3 { (8192, 8) } else { (0, 0) }), Warmup, 0.0, 0.0),
        ("warm-up pool, folded", model(100, |_, e| if e < 2 { (8192, 8) } else { (0, 0) })
            .into_iter().map(|f| SnapshotFile::new(fold(f.snapshot, 8))).collect(),
            Warmup, 0.0, 0.0),
        ("too short to call a leak", model(4, |_, _| (64, 1)), Plateau, 0.0, 0.0),
    ];
    for (name, series, kind, slope, tol) in cases {
        check(name, &series, kind, slope, tol);
    }
}

#[test]
fn cycles_come_from_the_sidecar_when_every_file_has_it() {
    // 10 cycles per epoch, 1 block of 640 bytes per epoch: 64 bytes/cycle.
    let series: Vec<SnapshotFile> = model(30, |_, _| (640, 1))
        .into_iter()
        .map(|mut f| {
            f.cycles = Some(1000 + 10 * u64::from(f.snapshot.epoch));
            f
        })
        .collect();
    let r = analyze(&series, &ClassifyOptions::default());
    assert_eq!(r.sites[0].kind, Leak);
    assert_eq!(r.sites[0].bytes_per_cycle, 64.0);
    assert_eq!(r.cycles, 290);
    // One file without it: back to one cycle per epoch.
    let mut series = series;
    series[3].cycles = None;
    let r = analyze(&series, &ClassifyOptions::default());
    assert_eq!(r.sites[0].bytes_per_cycle, 640.0);
}

#[test]
fn rss_and_allocator_growth_are_reported_beside_the_heap() {
    // The heap holds steady; RSS grows 8 KiB per cycle (allocator retention).
    let series: Vec<SnapshotFile> = model(30, |_, _| (0, 0))
        .into_iter()
        .map(|mut f| {
            let k = u64::from(f.snapshot.epoch);
            f.snapshot.rss_bytes = Some((8 << 20) + 8192 * k);
            if let Some(a) = f.snapshot.allocator.as_mut() {
                a.resident = (4 << 20) + 4096 * k;
            }
            f
        })
        .collect();
    let r = analyze(&series, &ClassifyOptions::default());
    assert_eq!(r.sites[0].kind, Ok);
    assert_eq!(r.growth.live_heap_bytes_per_cycle, 0.0);
    assert_eq!(r.growth.rss_bytes_per_cycle, Some(8192.0));
    assert_eq!(r.growth.allocator_resident_bytes_per_cycle, Some(4096.0));
    let text = alloc_report::render::report_text(&r);
    assert!(text.contains("retains"), "{text}");
}

#[test]
fn an_empty_series_is_ok_and_does_not_panic() {
    let r = analyze(&[], &ClassifyOptions::default());
    assert_eq!(r.sites[0].kind, Ok);
    assert_eq!(r.snapshots, 0);
}

/// A collection born in epoch 2, before the series (epochs 10 to 50)
/// starts, that gets `per_cycle` 64-byte items per cycle until cycle
/// `until`: one block, which moves to the epoch of each doubling of its
/// capacity (alloc-core's realloc rule).
fn collection(per_cycle: u64, until: u32) -> Vec<SnapshotFile> {
    let start = 10u32;
    (start..=start + 40)
        .map(|epoch| {
            let cycles = epoch - start;
            let len = |k: u32| 16 + per_cycle * u64::from(k.min(until));
            let cap = |k: u32| len(k).next_power_of_two() * 64;
            // The block lives in the epoch of its last growth.
            let born = (1..=cycles)
                .rev()
                .find(|&k| cap(k) != cap(k - 1))
                .map_or(2, |k| start + k - 1);
            SnapshotFile::new(common::snap(epoch, &[(born, cap(cycles), 1)]))
        })
        .collect()
}

#[test]
fn a_collection_made_before_the_series_that_keeps_growing_is_a_growth_leak() {
    let r = analyze(&collection(2, u32::MAX), &ClassifyOptions::default());
    let v = &r.overall;
    assert_eq!(v.kind, Leak, "{v:?}");
    let g = v.growth.expect("a leak names its growth");
    assert_eq!(g.kind, alloc_report::analysis::GrowthKind::ExistingBlocks);
    // 128 bytes added per cycle; a doubling capacity reports 1 to 2 times it.
    assert!((128.0..=256.0).contains(&v.bytes_per_cycle), "{v:?}");
    assert_eq!(v.blocks_per_cycle, 0.0);
    let text = alloc_report::render::report_text(&r);
    assert!(text.contains("growth: existing blocks that grow"), "{text}");
}

#[test]
fn a_collection_that_stopped_growing_before_the_later_half_is_not_a_leak() {
    let r = analyze(&collection(2, 12), &ClassifyOptions::default());
    assert_ne!(r.overall.kind, Leak, "{:?}", r.overall);
    assert_eq!(r.overall.growth, None);
}

#[test]
fn new_surviving_blocks_are_named_as_such() {
    let r = analyze(&model(40, |_, _| (64, 1)), &ClassifyOptions::default());
    let g = r.overall.growth.expect("a leak names its growth");
    assert_eq!(g.kind, alloc_report::analysis::GrowthKind::NewBlocks);
    assert_eq!(g.bytes_per_cycle, 64.0);
}
