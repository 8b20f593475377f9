//! The HTML report in a real browser: headless Chromium opens it with no
//! console messages at all (the page has no scripts, so any message is an
//! error), and a screenshot shows the table and the plot lines in their
//! colours, not a blank page. The series has call sites, so the sites
//! table and the plot of the top sites are drawn too.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it the test
//! says so and passes, so that `cargo test --workspace` needs nothing else;
//! with `ALLOC_REPORT_REQUIRE_CHROMIUM=1` (set by `.ci/run`) a missing
//! browser fails the test instead.

mod common;

use alloc_report::{analyze, render, ClassifyOptions};
use common::{site, site_series, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Decodes an RGB(A) PNG into (width, height, rgb pixels).
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("screenshot exists"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 40)
}

#[test]
fn the_html_report_draws_its_plots_in_chromium() {
    let Some(browser) = chromium() else {
        let required = std::env::var_os("ALLOC_REPORT_REQUIRE_CHROMIUM").is_some();
        assert!(
            !required,
            "chromium is not installed (apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED: chromium is not installed; the HTML report was not opened in a browser"
        );
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
    std::fs::write(&html, page).unwrap();
    let shot = dir.join("shot.png");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,900",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("start chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");

    let (w, h, px) = pixels(&shot);
    assert_eq!((w, h), (1000, 900));
    let white = px.iter().filter(|&&p| near(p, [255, 255, 255])).count();
    assert!(white < px.len(), "the page is blank");
    // The survivors line (#d62728) and the live-heap line (#1f77b4) are drawn:
    // each covers a good few hundred pixels of a 640-pixel-wide plot.
    let red = px.iter().filter(|&&p| near(p, [0xd6, 0x27, 0x28])).count();
    let blue = px.iter().filter(|&&p| near(p, [0x1f, 0x77, 0xb4])).count();
    eprintln!("screenshot {w}x{h}: {red} survivor-red and {blue} heap-blue pixels");
    assert!(red > 200, "survivors line: {red} red pixels");
    assert!(blue > 100, "live heap line: {blue} blue pixels");
    let _ = std::fs::remove_dir_all(&dir);
}
