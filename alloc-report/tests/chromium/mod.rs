//! Headless Chromium for the tests that open an HTML report: finding the
//! browser (or skipping without it, unless `ALLOC_REPORT_REQUIRE_CHROMIUM`
//! is set), running it with no network or first-run work and failing on
//! any console message, and decoding its screenshots. Used by
//! `html_in_chromium.rs` and, by path, by `alloc-tests`' `demo_html.rs`.

#![allow(dead_code)] // not every test uses every helper

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's `chromium`, or `None` after saying the test was skipped; a
/// missing browser fails the test when `ALLOC_REPORT_REQUIRE_CHROMIUM` is
/// set (`.ci/run` sets it).
pub(crate) fn find() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        let required = std::env::var_os("ALLOC_REPORT_REQUIRE_CHROMIUM").is_some();
        assert!(
            !required,
            "chromium is not installed (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed; the HTML report was not opened");
    }
    found
}

/// Runs `browser` headless on `url` in a window of `(width, height)` with
/// `what` (`--dump-dom`, `--screenshot=FILE`) and a profile under
/// `profile`; returns its standard output. Fails when it fails or prints
/// any console message (a script error would).
pub(crate) fn run(
    browser: &Path,
    profile: &Path,
    url: &str,
    (width, height): (u32, u32),
    what: &str,
) -> String {
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
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(url)
        .output()
        .expect("start chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Decodes an RGB(A) PNG into (width, height, rgb pixels).
pub(crate) fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
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
