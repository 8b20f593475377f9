//! The report carries what its renderers show beyond verdicts, and the
//! renderers show it as carried: a leak site's stacks (the verdict's) and
//! another site's top stack, the source lines around the site's line when the file is on disk (and why
//! not when it is not), survivors by birth epoch for each site and the
//! whole heap, and the note on how much of the whole heap's leak the sites
//! explain, the same words in JSON, text and HTML.

mod common;

use alloc_report::analysis::Source;
use alloc_report::analysis::{analyze, ClassifyOptions, VerdictKind};
use alloc_report::render;
use common::{site, site_series, temp_dir};

#[test]
fn sites_carry_source_lines_and_births_and_a_leak_its_stacks() {
    let dir = temp_dir("details");
    let file = dir.join("conn.rs");
    let text: String = (1..=20).map(|n| format!("// line {n}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let path: &'static str = Box::leak(file.display().to_string().into_boxed_str());
    // A leak of 3 blocks of 100 bytes per epoch in a file on disk, blocks
    // of the first four epochs that stay (a cache) in one that is not.
    let series = site_series(
        24,
        &[
            site(path, 11, "conn::track", 100, |_, _| 3),
            site("src/cache.rs", 20, "cache::insert", 64, |_, e| {
                u64::from(e < 4)
            }),
        ],
        0,
        1,
    );
    let r = analyze(&series, &ClassifyOptions::default());
    assert_eq!(r.site_details.len(), r.sites.len());
    for (d, v) in r.site_details.iter().zip(&r.sites) {
        assert_eq!(d.site, v.site, "details in the order of the sites");
    }
    let (leak, cache) = (&r.site_details[0], &r.site_details[1]);
    assert_eq!(r.sites[0].kind, VerdictKind::Leak);

    // Births: survivors of epochs 0..=22 at the snapshot of epoch 23, 300
    // bytes each; the whole heap's add up to its survivors.
    assert_eq!(leak.born.len(), 23);
    assert!(leak
        .born
        .iter()
        .all(|b| b.bytes == 300.0 && b.blocks == 3.0));
    assert_eq!(
        cache.born.iter().map(|b| b.epoch).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let heap: u64 = r.heap_births.epochs.iter().map(|e| e.live_bytes).sum();
    assert_eq!(heap, r.points.last().unwrap().survivors.bytes);
    assert_eq!(r.heap_births.before_series_bytes, 0);

    // The stack (the verdict's): from the first frame past the allocator,
    // the site frame and its caller, both the program's own.
    let st = &r.sites[0].stacks[0];
    assert_eq!(st.bytes, 23.0 * 300.0);
    let marks: Vec<(bool, bool)> = st.frames.iter().map(|f| (f.user, f.site)).collect();
    assert_eq!(marks, [(true, true), (true, false)]);

    // The cache's site is not a leak: its detail has its top stack, the
    // leak's detail none (its stacks are the verdict's).
    assert!(leak.top_stack.is_none());
    let top = cache.top_stack.as_ref().expect("the cache's stack");
    assert_eq!(top.bytes, 4.0 * 64.0);
    assert!(top.frames[0].site && top.frames[0].user);

    // The source: lines 8..=14 of the file on disk, the site's line 11.
    match &leak.source {
        Some(Source::Found {
            line, first, text, ..
        }) => {
            assert_eq!((*line, *first), (11, 8));
            let want: Vec<String> = (8..=14).map(|n| format!("// line {n}")).collect();
            assert_eq!(text, &want);
        }
        other => panic!("{other:?}"),
    }
    match &cache.source {
        Some(Source::Missing { path, reason }) => {
            assert_eq!(path, "src/cache.rs");
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }

    // JSON carries it all; the HTML shows it.
    let json: serde_json::Value = serde_json::from_str(&render::report_json(&r)).unwrap();
    assert_eq!(json["site_details"][0]["source"]["status"], "found");
    assert_eq!(json["site_details"][1]["source"]["status"], "missing");
    assert!(json["site_details"][0].get("top_stack").is_none());
    assert_eq!(
        json["site_details"][1]["top_stack"]["frames"][0]["function"],
        "cache::insert"
    );
    assert_eq!(
        json["heap_births"]["epochs"].as_array().unwrap().len(),
        r.heap_births.epochs.len()
    );
    let html = render::report_html(&r);
    assert!(html.contains("<span class=\"hit\"><i>   11</i> // line 11</span>"));
    assert!(html.contains("<li value=\"1\" class=\"own site-frame\""));
    assert!(html.contains("Source not shown: src/cache.rs is not readable here"));
    assert!(html.contains("\u{25b6} src/cache.rs:20 cache::insert</li>"));
    // The first leak is open; the cache's site is closed.
    assert!(html.contains("<details class=\"site leak\" open>"));
    assert_ne!(r.sites[1].kind, VerdictKind::Leak);
    let closed = format!("<details class=\"site {}\">", r.sites[1].kind.as_str());
    assert!(html.contains(&closed));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_agreement_note_is_the_reports_in_every_format() {
    // The sites leak 300 bytes an epoch; the heap, 1,300: 1,000 bytes an
    // epoch that no sampled site holds.
    let mut series = site_series(
        30,
        &[site("src/conn.rs", 11, "conn::track", 100, |_, _| 3)],
        0,
        1,
    );
    for f in &mut series {
        let k = f.snapshot.epoch;
        for e in f.snapshot.epochs.iter_mut().filter(|e| e.last < k) {
            e.live_bytes += 1000;
            e.live_blocks += 1;
            f.snapshot.totals.live_bytes += 1000;
            f.snapshot.totals.live_blocks += 1;
        }
    }
    let r = analyze(&series, &ClassifyOptions::default());
    assert_eq!(r.overall.kind, VerdictKind::Leak);
    let a = r.agreement.as_ref().expect("the sites explain too little");
    assert!(a.explained_share < 0.3, "{a:?}");
    assert!(
        a.note.contains("the call sites are uncertain"),
        "{}",
        a.note
    );
    let json: serde_json::Value = serde_json::from_str(&render::report_json(&r)).unwrap();
    assert_eq!(json["agreement"]["note"], a.note.as_str());
    assert!(render::report_text(&r).contains(&a.note));
    assert!(render::report_html(&r).contains(&a.note));
}
