//! Writes a synthetic series to try the CLI on:
//! `cargo run -p alloc-report --example sample_series -- DIR [leak|cache|warmup|ok]`,
//! then `cargo run -p alloc-report -- report DIR`.

use alloc_report::SeriesWriter;
use alloc_snapshot::{AllocatorStats, EpochLive, Snapshot, ToolUsage, Totals};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "target/sample-series".into());
    let kind = args.next().unwrap_or_else(|| "leak".into());
    let mut writer = SeriesWriter::create(std::path::Path::new(&dir))?;
    for k in 0..40u32 {
        // Bytes and blocks born in epoch `e` still live at epoch `k`.
        let live = |e: u32| -> (u64, u64) {
            match kind.as_str() {
                "leak" => (320, 3),
                "cache" if k - e <= 10 => (1024, 1),
                "warmup" if e == 0 => (65536, 16),
                _ => (0, 0),
            }
        };
        let mut epochs: Vec<EpochLive> = (0..k)
            .map(|e| (e, live(e)))
            .filter(|&(_, (b, _))| b > 0)
            .map(|(e, (b, n))| EpochLive {
                first: e,
                last: e,
                live_bytes: b,
                live_blocks: n,
            })
            .collect();
        epochs.push(EpochLive {
            first: k,
            last: k,
            live_bytes: 4096,
            live_blocks: 4,
        });
        let live_bytes: u64 = epochs.iter().map(|e| e.live_bytes).sum();
        let snapshot = Snapshot {
            epoch: k,
            timestamp_unix_ns: 0,
            exact_window: 1024,
            totals: Totals {
                live_bytes,
                live_blocks: epochs.iter().map(|e| e.live_blocks).sum(),
                ..Totals::default()
            },
            epochs,
            rss_bytes: Some((16 << 20) + 2 * live_bytes),
            allocator: Some(AllocatorStats {
                name: "jemalloc".into(),
                allocated: live_bytes,
                resident: (8 << 20) + live_bytes,
                retained: 0,
            }),
            tool: ToolUsage::default(),
            ..Snapshot::default()
        };
        writer.append(&snapshot, Some(u64::from(k) * 5))?;
    }
    println!("wrote 40 snapshots ({kind}) to {dir}");
    Ok(())
}
