//! The renderers on series with call sites: the pprof profile decoded back
//! (gunzip, then the `profile.proto` messages), folded stacks, per-site
//! diffs, and the distributions and sites in the text and HTML reports.

mod common;

use std::io::Read;

use alloc_report::analysis::{analyze, diff, ClassifyOptions};
use alloc_report::pprof::Profile;
use alloc_report::render;
use alloc_snapshot::{Bucket, Frame, Histogram};
use common::{model, site, site_series};
use prost::Message;

fn decode(gz: &[u8]) -> Profile {
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .unwrap();
    Profile::decode(raw.as_slice()).unwrap()
}

fn program() -> Vec<alloc_report::SnapshotFile> {
    let mut series = site_series(
        30,
        &[
            site("src/conn.rs", 11, "conn::track", 100, |_, _| 1),
            site("src/cache.rs", 20, "cache::insert", 64, |_, e| {
                u64::from(e < 3) * 2
            }),
        ],
        0,
        1,
    );
    // conn::track was inlined into its caller: two frames at one address.
    for f in &mut series {
        let st = &mut f.snapshot.stacks[0];
        let ip = st.frames[1].ip;
        st.frames.insert(
            2,
            Frame {
                ip,
                function: Some("conn::accept".into()),
                file: Some("src/conn.rs".into()),
                line: Some(30),
            },
        );
    }
    series
}

#[test]
fn pprof_decodes_to_the_survivors_by_stack_and_birth_epoch() {
    let series = program();
    let r = analyze(&series, &ClassifyOptions::default());
    let p = decode(&render::pprof(&r));
    let s = |i: i64| p.string_table[i as usize].as_str();
    assert_eq!(s(0), "");
    let types: Vec<(&str, &str)> = p
        .sample_type
        .iter()
        .map(|t| (s(t.r#type), s(t.unit)))
        .collect();
    assert_eq!(
        types,
        vec![("survivor_objects", "count"), ("survivor_space", "bytes")]
    );
    assert_eq!(s(p.default_sample_type), "survivor_space");
    // One sample per stack and birth epoch 0..29 for conn::track (29
    // closed epochs at the last snapshot, epoch 29), 0..2 for the cache.
    assert_eq!(p.sample.len(), 29 + 3);
    let mut bytes_by_function = std::collections::BTreeMap::<String, i64>::new();
    let mut epochs = Vec::new();
    for smp in &p.sample {
        assert_eq!(smp.value.len(), 2);
        assert_eq!(smp.label.len(), 1);
        let l = &smp.label[0];
        assert_eq!((s(l.key), s(l.num_unit)), ("birth_epoch", "epoch"));
        epochs.push(l.num);
        // Leaf first: the site (the user frame; the allocator's frame inside
        // it is left out), then its callers.
        let site = &p.location[(smp.location_id[0] - 1) as usize];
        let names_all: Vec<&str> = p
            .location
            .iter()
            .flat_map(|l| &l.line)
            .map(|l| s(p.function[(l.function_id - 1) as usize].name))
            .collect();
        assert!(!names_all.contains(&"alloc::alloc::alloc"), "{names_all:?}");
        let caller = &p.location[(smp.location_id[1] - 1) as usize];
        assert_eq!(
            s(p.function[(caller.line[0].function_id - 1) as usize].name),
            "main"
        );
        let names: Vec<&str> = site
            .line
            .iter()
            .map(|l| s(p.function[(l.function_id - 1) as usize].name))
            .collect();
        *bytes_by_function.entry(names[0].to_string()).or_default() += smp.value[1];
        if names[0] == "conn::track" {
            // The inlined call and its caller share one location.
            assert_eq!(names, vec!["conn::track", "conn::accept"]);
            assert_eq!(site.line[0].line, 11);
            assert_eq!(smp.value, vec![1, 100]);
        }
    }
    assert_eq!(bytes_by_function["conn::track"], 29 * 100);
    assert_eq!(bytes_by_function["cache::insert"], 3 * 2 * 64);
    epochs.sort_unstable();
    epochs.dedup();
    assert_eq!(epochs, (0..29).collect::<Vec<i64>>());
    // Ids are 1-based and dense.
    for (i, l) in p.location.iter().enumerate() {
        assert_eq!(l.id, i as u64 + 1);
    }
}

#[test]
fn pprof_without_call_sites_has_the_whole_heap_by_birth_epoch() {
    let r = analyze(&model(20, |_, _| (64, 1)), &ClassifyOptions::default());
    let p = decode(&render::pprof(&r));
    assert_eq!(p.sample.len(), 19);
    let total: i64 = p.sample.iter().map(|s| s.value[1]).sum();
    assert_eq!(total, 19 * 64);
    assert_eq!(p.string_table[p.function[0].name as usize], "(all)");
}

#[test]
fn folded_stacks_have_the_real_frames_outermost_first_down_to_the_site() {
    let r = analyze(&program(), &ClassifyOptions::default());
    let folded = render::folded(&r);
    let lines: Vec<&str> = folded.lines().collect();
    assert!(
        lines.contains(&"main;conn::accept;conn::track 2900"),
        "{folded}"
    );
    assert!(lines.contains(&"main;cache::insert 384"), "{folded}");
    let whole = render::folded(&analyze(
        &model(5, |_, _| (8, 1)),
        &ClassifyOptions::default(),
    ));
    assert!(whole.starts_with("(all);born_0 8\n"), "{whole}");
}

#[test]
fn diff_per_site_and_birth_epoch() {
    let series = site_series(
        12,
        &[
            site("src/conn.rs", 11, "conn::track", 100, |_, _| 1),
            site("src/work.rs", 5, "work::tmp", 10, |k, e| {
                u64::from(k - e <= 1) * 3
            }),
        ],
        0,
        1,
    );
    let d = diff(&series[5].snapshot, &series[11].snapshot);
    assert_eq!(d.sites.len(), 2);
    // Most growth first: conn::track grew by 6 epochs of 100 bytes.
    let track = &d.sites[0];
    assert_eq!(track.site, "src/conn.rs:11 conn::track");
    assert_eq!(track.total.old.bytes, 500.0);
    assert_eq!(track.total.new.bytes, 1100.0);
    assert_eq!(track.total.appeared.bytes, 600.0);
    assert_eq!(track.total.freed.bytes, 0.0);
    assert_eq!(track.total.survived.bytes, 500.0);
    assert_eq!(track.rows.len(), 11);
    let tmp = &d.sites[1];
    // Epoch 4 (30 bytes at epoch 5) is freed; epoch 10 appeared.
    let row = |e: u32| tmp.rows.iter().find(|r| r.epoch == e).unwrap().change();
    assert_eq!(row(4).freed.bytes, 30.0);
    assert_eq!(row(10).appeared.bytes, 30.0);
    assert_eq!(row(10).appeared.blocks, 3.0);
    let text = render::diff_text(&d);
    assert!(
        text.contains("by call site") && text.contains("conn::track"),
        "{text}"
    );
}

#[test]
fn reports_show_sites_and_distributions() {
    let mut series = program();
    let last = series.last_mut().unwrap();
    let h = &mut last.snapshot.histograms;
    h.alloc_size = Histogram {
        buckets: vec![
            Bucket {
                low: 64,
                high: 64,
                count: 60,
            },
            Bucket {
                low: 100,
                high: 100,
                count: 30,
            },
        ],
    };
    h.lifetime_epochs = Histogram {
        buckets: vec![
            Bucket {
                low: 0,
                high: 0,
                count: 900,
            },
            Bucket {
                low: 1,
                high: 1,
                count: 99,
            },
            Bucket {
                low: 2,
                high: 2,
                count: 1,
            },
        ],
    };
    let r = analyze(&series, &ClassifyOptions::default());
    assert_eq!(r.histograms.alloc_size.p50, Some(64));
    assert_eq!(r.histograms.alloc_size.max, Some(100));
    assert_eq!(r.histograms.lifetime_epochs.p99, Some(1));
    // Survivors at epoch 29: conn::track's 100 bytes of each epoch 0..=28
    // and the cache's 128 bytes of each epoch 0..=2; younger than 2 epochs
    // (ages 0 and 1: born in 28 and 27) are young, the rest old.
    assert_eq!(r.histograms.young_survivors.bytes, 200);
    assert_eq!(r.histograms.old_survivors.bytes, 27 * 100 + 3 * 128);
    let text = render::report_text(&r);
    assert!(
        text.contains("allocation size") && text.contains("older than 1 epoch"),
        "{text}"
    );
    assert!(text.contains("src/conn.rs:11 conn::track"), "{text}");
    let html = render::report_html(&r);
    assert!(
        html.contains("<h2 id=\"sites\">Sites</h2>")
            && html.contains("src/cache.rs:20 cache::insert")
    );
    assert!(html.contains("<h2 id=\"distributions\">Distributions</h2>"));
    assert_eq!(
        html.matches("<svg class=\"chart lines\"").count(),
        3,
        "heap, memory, top sites"
    );
    // The whole heap's births, and one chart per site with survivors born
    // during the series.
    let with_births = r.site_details.iter().filter(|d| !d.born.is_empty()).count();
    assert_eq!(with_births, 2);
    assert_eq!(
        html.matches("<svg class=\"chart births\"").count(),
        1 + with_births
    );
    assert_eq!(html.matches("<svg id=\"flame-svg\"").count(), 1);
    let json: serde_json::Value = serde_json::from_str(&render::report_json(&r)).unwrap();
    assert_eq!(json["overall"]["kind"], "leak");
    assert_eq!(json["sites"][0]["site"], "src/conn.rs:11 conn::track");
    assert_eq!(json["sites"][0]["kind"], "leak");
}

/// RSS is shown with the tool's own memory set apart: a tool that grows
/// does not read as the program's growth.
#[test]
fn rss_is_shown_with_the_tool_apart() {
    let mut series = model(30, |_, _| (0, 0));
    for (k, f) in series.iter_mut().enumerate() {
        let k = k as u64;
        // The program's RSS is flat at 40 MiB; the tool adds 1 MiB a snapshot.
        f.snapshot.tool.live_bytes = (1 << 20) * k;
        f.snapshot.tool.metadata_bytes = 1 << 20;
        f.snapshot.rss_bytes = Some((40 << 20) + (1 << 20) * (k + 1));
    }
    let r = analyze(&series, &ClassifyOptions::default());
    let per_cycle = r.growth.rss_bytes_per_cycle.unwrap();
    assert!(per_cycle > 0.0, "{per_cycle}");
    assert_eq!(r.growth.rss_without_tool_bytes_per_cycle, Some(0.0));
    assert_eq!(r.growth.tool_bytes_per_cycle, per_cycle);
    assert_eq!(r.points[29].tool_bytes, 30 << 20);
    let text = render::report_text(&r);
    assert!(
        text.contains("RSS 70.0 MiB, of which the tool's own 30.0 MiB (the program: 40.0 MiB)"),
        "{text}"
    );
    assert!(text.contains("    without the tool  0 B/cycle"), "{text}");
    assert!(text.contains("    outside the heap"), "{text}");
    // The note blames the allocator only for growth that is not the tool's.
    assert!(!text.contains("note: RSS"), "{text}");
    let html = render::report_html(&r);
    assert!(html.contains("RSS without the tool"), "{html}");
    let one = render::snapshot_text(&series[29]);
    assert!(one.contains("of which the tool's own 30.0 MiB"), "{one}");
    let table = render::series_text(&alloc_report::analysis::survivor_matrix(&series), &series);
    assert!(table.contains("TOOL"), "{table}");
}

/// Labels show short paths (a registry crate as `crate-version/src/…`, a
/// package as `package/src/…`); the JSON keeps the full path.
#[test]
fn site_labels_are_short_and_json_keeps_the_full_path() {
    const REGISTRY_FILE: &str =
        "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/mod.rs";
    const WORKSPACE_FILE: &str = "/work/service/api/src/handlers.rs";
    let series = site_series(
        30,
        &[
            site(WORKSPACE_FILE, 42, "api::handlers::track", 100, |_, _| 1),
            site(
                REGISTRY_FILE,
                7,
                "tokio::runtime::task::spawn",
                64,
                |_, e| u64::from(e < 3) * 2,
            ),
        ],
        0,
        1,
    );
    let r = analyze(&series, &ClassifyOptions::default());
    let text = render::report_text(&r);
    let html = render::report_html(&r);
    for shown in [&text, &html] {
        assert!(shown.contains("api/src/handlers.rs:42 api::handlers::track"));
        assert!(
            shown.contains("tokio-1.54.1/src/runtime/task/mod.rs:7 tokio::runtime::task::spawn")
        );
        assert!(!shown.contains("/root/.cargo/registry"));
        assert!(!shown.contains("/work/service"));
    }
    let json: serde_json::Value = serde_json::from_str(&render::report_json(&r)).unwrap();
    let sites = json["sites"].as_array().unwrap();
    let by_site = |label: &str| {
        sites
            .iter()
            .find(|s| s["site"] == label)
            .unwrap_or_else(|| panic!("no site {label} in {sites:?}"))
    };
    let leak = by_site("api/src/handlers.rs:42 api::handlers::track");
    assert_eq!(leak["location"]["file"], WORKSPACE_FILE);
    assert_eq!(leak["location"]["line"], 42);
    assert_eq!(leak["location"]["function"], "api::handlers::track");
    let cache = by_site("tokio-1.54.1/src/runtime/task/mod.rs:7 tokio::runtime::task::spawn");
    assert_eq!(cache["location"]["file"], REGISTRY_FILE);
    assert!(json["overall"].get("location").is_none());
}

/// A leak site's call stacks in every report: each frame in the JSON (the
/// library call inside the site, the program's own frames marked), the
/// top frames in the text, in the HTML each under its open site; the pprof and
/// folded stacks start at the site, the program's own frame.
#[test]
fn leak_sites_carry_their_stacks() {
    const LIB: &str = "/h/.cargo/registry/src/idx/bytes-1.12.2/src/bytes_mut.rs";
    let mut series = program();
    for f in &mut series {
        for st in &mut f.snapshot.stacks {
            let ip = st.frames[0].ip + 1;
            st.frames.insert(
                1,
                Frame {
                    ip,
                    function: Some("bytes::bytes_mut::BytesMut::with_capacity".into()),
                    file: Some(LIB.into()),
                    line: Some(140),
                },
            );
            st.user_frame = alloc_snapshot::trim::user_frame(&st.frames);
        }
    }
    let r = analyze(&series, &ClassifyOptions::default());
    let label = "src/conn.rs:11 conn::track -> bytes::bytes_mut::BytesMut::with_capacity";
    let leak = &r.sites[0];
    assert_eq!((leak.site.as_str(), leak.kind.as_str()), (label, "leak"));
    assert_eq!(leak.stacks.len(), 1);
    assert!(r.sites[1..].iter().all(|v| v.stacks.is_empty()));

    let json: serde_json::Value = serde_json::from_str(&render::report_json(&r)).unwrap();
    let frames = &json["sites"][0]["stacks"][0]["frames"];
    let frame = |i: usize| {
        let f = &frames[i];
        (
            f["function"].as_str().unwrap().to_string(),
            f["user"].as_bool().unwrap(),
            f["site"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        frame(0),
        (
            "bytes::bytes_mut::BytesMut::with_capacity".into(),
            false,
            false
        )
    );
    assert_eq!(frames[0]["file"], LIB);
    assert_eq!(frames[0]["line"], 140);
    assert_eq!(frame(1), ("conn::track".into(), true, true));
    assert_eq!(frame(2), ("conn::accept".into(), true, false));
    assert!(json["sites"][1].get("stacks").is_none());

    let text = render::report_text(&r);
    assert!(text.contains("call stacks of the leak sites"), "{text}");
    assert!(
        text.contains(
            "    bytes-1.12.2/src/bytes_mut.rs:140 bytes::bytes_mut::BytesMut::with_capacity"
        ),
        "{text}"
    );
    assert!(text.contains("  > src/conn.rs:11 conn::track\n"), "{text}");
    assert!(text.contains("  * src/conn.rs:30 conn::accept\n"), "{text}");
    let html = render::report_html(&r);
    assert!(
        html.contains(
            "<details class=\"site leak\" open><summary class=\"row\"><span \
             class=\"verdict\">leak</span><span class=\"label\">src/conn.rs:11 conn::track -&gt; \
             bytes"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<li value=\"1\" class=\"dependency\">bytes-1.12.2/src/bytes_mut.rs:140 \
             bytes::bytes_mut::BytesMut::with_capacity</li><li value=\"2\" class=\"own \
             site-frame\">\u{25b6} src/conn.rs:11 conn::track</li>"
        ),
        "{html}"
    );

    // The profiles' leaf is the site.
    let folded = render::folded(&r);
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("main;") && l.contains(";conn::accept;conn::track ")),
        "{folded}"
    );
    assert!(!folded.contains("BytesMut"), "{folded}");
}
