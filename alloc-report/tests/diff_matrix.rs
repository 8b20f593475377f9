//! Diffs of two snapshots and the survivor matrix of a series; sites named
//! relative to their workspace in the diff, the matrix and the report.

mod common;

use alloc_report::analysis::{
    diff, diff_in, site_survivor_matrix, site_survivor_matrix_in, survivor_matrix, survivors, Live,
};
use alloc_report::{Analyzer, ClassifyOptions, SnapshotFile, Workspaces};
use common::{fold, site, site_series, snap};

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

#[test]
fn sites_named_relative_to_their_workspace() {
    // A nested package's file: `admin/…` without the root, its whole path
    // in the workspace with it.
    let series = site_series(
        12,
        &[site(
            "/w/core/admin/src/a.rs",
            11,
            "admin::a",
            100,
            |_, _| 1,
        )],
        0,
        1,
    );
    let mut ws = Workspaces::default();
    ws.add("/w");
    let (without, with) = (
        "admin/src/a.rs:11 admin::a",
        "core/admin/src/a.rs:11 admin::a",
    );
    let (old, new) = (&series[5].snapshot, &series[11].snapshot);
    assert_eq!(diff(old, new).sites[0].site, without);
    assert_eq!(diff_in(old, new, &ws).sites[0].site, with);
    assert_eq!(site_survivor_matrix(&series)[0].site, without);
    assert_eq!(site_survivor_matrix_in(&series, &ws)[0].site, with);
    let mut a = Analyzer::new(&ClassifyOptions::default());
    for f in &series {
        a.push_in(f, &ws);
    }
    let report = a.finish();
    let leak = &report.sites[0];
    assert_eq!((leak.site.as_str(), leak.kind.as_str()), (with, "leak"));
    // JSON keeps the full path.
    let json: serde_json::Value =
        serde_json::from_str(&alloc_report::render::report_json(&report)).unwrap();
    assert_eq!(json["sites"][0]["site"], with);
    assert_eq!(
        json["sites"][0]["location"]["file"],
        "/w/core/admin/src/a.rs"
    );
}
