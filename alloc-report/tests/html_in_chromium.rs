//! The HTML report in a real browser: headless Chromium opens it with no
//! console messages at all (the page's one script logs nothing, so any
//! message is an error), and a screenshot shows the sites and the chart
//! lines in their colours, not a blank page. The series has call sites, so
//! the sites, the chart of the top sites, the birth-epoch chart and the
//! icicle graph are drawn too. (`alloc-tests`' `demo_html.rs` opens the
//! demo's own reports.)
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test
//! says so and passes, so that `cargo test --workspace` needs nothing else;
//! with `ALLOC_REPORT_REQUIRE_CHROMIUM=1` (set by `.ci/run`) a missing
//! browser fails the test instead (`chromium/mod.rs`).

mod chromium;
mod common;

use alloc_report::{analyze, render, ClassifyOptions};
use common::{site, site_series, temp_dir};

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 40)
}

#[test]
fn the_html_report_draws_its_plots_in_chromium() {
    let Some(browser) = chromium::find() else {
        return;
    };
    let dir = temp_dir("chromium");
    // A leak of 3 blocks (300 bytes) per epoch at one site, a cache at
    // another.
    let series = site_series(
        24,
        &[
            site("src/conn.rs", 11, "conn::track", 100, |_, _| 3),
            site("src/cache.rs", 20, "cache::insert", 64, |_, e| {
                u64::from(e < 4)
            }),
        ],
        0,
        1,
    );
    let report = analyze(&series, &ClassifyOptions::default());
    let html = dir.join("report.html");
    let page = render::report_html(&report);
    assert!(page.contains("src/conn.rs:11 conn::track"));
    assert!(page.contains("<svg class=\"chart births\""));
    assert!(page.contains("<svg id=\"flame-svg\""));
    std::fs::write(&html, page).unwrap();
    let shot = dir.join("shot.png");
    chromium::run(
        &browser,
        &dir.join("profile"),
        &format!("file://{}", html.display()),
        (1000, 2600),
        &format!("--screenshot={}", shot.display()),
    );
    let (w, h, px) = chromium::pixels(&shot);
    assert_eq!((w, h), (1000, 2600));
    let white = px.iter().filter(|&&p| near(p, [255, 255, 255])).count();
    assert!(white < px.len(), "the page is blank");
    // The survivors line and the leak's bars (#d62728) and the live-heap
    // line (#1f77b4) are drawn: each covers a good few hundred pixels.
    let red = px.iter().filter(|&&p| near(p, [0xd6, 0x27, 0x28])).count();
    let blue = px.iter().filter(|&&p| near(p, [0x1f, 0x77, 0xb4])).count();
    eprintln!("screenshot {w}x{h}: {red} survivor-red and {blue} heap-blue pixels");
    assert!(red > 200, "survivors line: {red} red pixels");
    assert!(blue > 100, "live heap line: {blue} blue pixels");
    let _ = std::fs::remove_dir_all(&dir);
}
