//! Diffs of two snapshots and the survivor matrix of a series.

mod common;

use alloc_report::analysis::{diff, survivor_matrix, survivors, Live};
use alloc_report::SnapshotFile;
use common::{fold, snap};

fn live(bytes: u64, blocks: u64) -> Live {
    Live { bytes, blocks }
}

#[test]
fn diff_by_birth_epoch() {
    let old = snap(3, &[(0, 100, 1), (1, 50, 2), (3, 10, 1)]);
    let new = snap(
        5,
        &[(0, 100, 1), (1, 20, 1), (3, 30, 2), (4, 7, 1), (5, 1, 1)],
    );
    let d = diff(&old, &new);
    let by = |e: u32| d.rows.iter().find(|r| r.first == e).unwrap().clone();
    assert_eq!(d.rows.len(), 5);
    assert_eq!(by(0).survived, live(100, 1));
    assert_eq!(by(0).freed, live(0, 0));
    assert_eq!(by(1).freed, live(30, 1));
    assert_eq!(by(1).survived, live(20, 1));
    assert_eq!(by(3).appeared, live(20, 1));
    assert_eq!(by(4).appeared, live(7, 1));
    assert_eq!(d.total.old, live(160, 4));
    assert_eq!(d.total.new, live(158, 6));
    assert_eq!(d.total.appeared, live(28, 3));
    assert_eq!(d.total.freed, live(30, 1));
    let text = alloc_report::render::diff_text(&d);
    assert!(text.contains("total"), "{text}");
}

#[test]
fn diff_across_a_fold_merges_the_rows() {
    let old = snap(4, &[(0, 10, 1), (1, 10, 1), (2, 10, 1), (3, 10, 1)]);
    let new = fold(
        snap(10, &[(0, 10, 1), (2, 10, 1), (3, 10, 1), (9, 5, 1)]),
        4,
    );
    let d = diff(&old, &new);
    assert_eq!(d.rows[0].first, 0);
    assert_eq!(d.rows[0].last, 3);
    assert_eq!(d.rows[0].freed, live(10, 1));
    assert_eq!(d.rows[0].survived, live(30, 3));
}

#[test]
fn survivor_matrix_and_survivors() {
    let series: Vec<SnapshotFile> = vec![
        snap(2, &[(0, 1000, 10), (2, 5, 1)]),
        snap(3, &[(0, 1000, 10), (2, 5, 1), (3, 9, 1)]),
        snap(5, &[(0, 1000, 10), (2, 5, 1), (4, 8, 1), (5, 9, 1)]),
    ]
    .into_iter()
    .map(SnapshotFile::new)
    .collect();
    let m = survivor_matrix(&series);
    assert_eq!(m.start_epoch, 2);
    assert_eq!(m.epochs, vec![2, 3, 5]);
    assert_eq!(m.cycles, vec![0, 1, 3]);
    // Born before the series (epoch 0) is never a survivor; the open epoch neither.
    assert_eq!(m.survivors, vec![live(0, 0), live(5, 1), live(13, 2)]);
    assert_eq!(m.rows.len(), 5);
    assert_eq!(m.rows[3].first, 4);
    assert_eq!(m.rows[3].cells, vec![live(0, 0), live(0, 0), live(8, 1)]);
    assert_eq!(survivors(&series[2].snapshot, 0), live(1013, 12));
    let text = alloc_report::render::series_text(&m, &series);
    assert!(text.contains("@5"), "{text}");
}
