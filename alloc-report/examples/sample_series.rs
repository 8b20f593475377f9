//! Writes a synthetic series to try the CLI on:
//! `cargo run -p alloc-report --example sample_series -- DIR [leak|cache|warmup|ok]`,
//! then `cargo run -p alloc-report -- report DIR`.

#![forbid(unsafe_code)]

use alloc_report::SeriesWriter;
use alloc_snapshot::AllocatorStats;

/// The synthetic snapshots of the tests: one home for both.
#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "target/sample-series".into());
    let kind = args.next().unwrap_or_else(|| "leak".into());
    let mut writer = SeriesWriter::create(std::path::Path::new(&dir))?;
    // Bytes and blocks born in epoch `e` still live at epoch `k`, plus 4
    // KiB of in-flight work in the open epoch (`common::model`).
    let series = common::model(40, |k, e| match kind.as_str() {
        "leak" => (320, 3),
        "cache" if k - e <= 10 => (1024, 1),
        "warmup" if e == 0 => (65536, 16),
        _ => (0, 0),
    });
    for (k, file) in (0u64..).zip(series) {
        let mut snapshot = file.snapshot;
        let live_bytes = snapshot.totals.live_bytes;
        snapshot.rss_bytes = Some((16 << 20) + 2 * live_bytes);
        snapshot.allocator = Some(AllocatorStats {
            name: "jemalloc".into(),
            allocated: live_bytes,
            resident: (8 << 20) + live_bytes,
            retained: 0,
        });
        writer.append(&snapshot, Some(k * 5))?;
    }
    println!("wrote 40 snapshots ({kind}) to {dir}");
    Ok(())
}
