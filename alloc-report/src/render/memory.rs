//! The process's memory in the text report: growth per cycle of the heap,
//! RSS and the allocator, with the tool's own memory (its heap blocks and
//! metadata, which RSS includes) set apart, so that a reader does not take
//! the tool's memory for the program's. What is outside the heap (RSS
//! without the tool, minus the live heap: the allocator's retention plus
//! code and stacks) is shown whether or not the snapshots carry the
//! allocator's own statistics (alloc-core's opt-in `jemalloc-stats`).

use std::fmt::Write as _;

use super::human_bytes;
use crate::analysis::Report;

/// The "growth over the last part of the run" section and the memory at
/// the last snapshot.
pub(super) fn growth_text(out: &mut String, r: &Report) {
    let g = &r.growth;
    let per = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{}/cycle", human_bytes(v)));
    let _ = writeln!(out, "growth over the last part of the run:");
    let rows = [
        ("live heap", Some(g.live_heap_bytes_per_cycle)),
        ("process RSS", g.rss_bytes_per_cycle),
        ("  without the tool", g.rss_without_tool_bytes_per_cycle),
        ("  the tool's own", Some(g.tool_bytes_per_cycle)),
        ("  outside the heap", g.outside_heap_bytes_per_cycle),
        ("allocator resident", g.allocator_resident_bytes_per_cycle),
    ];
    for (name, v) in rows {
        let _ = writeln!(out, "  {name:<20}{}", per(v));
    }
    if let Some(last) = r.points.last() {
        let tool = human_bytes(last.tool_bytes as f64);
        match last.rss_bytes {
            Some(rss) => {
                let _ = writeln!(
                    out,
                    "memory at the last snapshot: RSS {}, of which the tool's own {tool} \
                     (the program: {}); live heap {}, outside the heap {} (what the allocator \
                     retains, and code and stacks)",
                    human_bytes(rss as f64),
                    human_bytes(last.rss_without_tool().unwrap_or(rss) as f64),
                    human_bytes(last.live_bytes as f64),
                    human_bytes(last.outside_heap().unwrap_or(0) as f64)
                );
            }
            None => {
                let _ = writeln!(out, "memory at the last snapshot: the tool's own {tool}");
            }
        }
    }
    if let Some(note) = &g.retention_note {
        let _ = writeln!(out, "  note: {note}");
    }
}
