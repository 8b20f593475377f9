//! Folded stacks of the survivors, for flame-graph tools.

use std::fmt::Write as _;

use super::text::epochs_label;
use crate::analysis::Report;

/// The name of a frame in folded stacks and profiles: the function, else
/// the label (`file:line`, or the address).
fn frame_name(f: &alloc_snapshot::Frame) -> String {
    match &f.function {
        Some(func) => func.clone(),
        None => f.label(),
    }
}

/// Folded stacks of the survivors at the last snapshot, for flame-graph
/// tools (`flamegraph.pl`, inferno, speedscope): one line per stack,
/// outermost frame first down to the allocating user frame (the allocator
/// machinery and the tool's capture frames inside it are left out, as heap
/// profiles do; all frames when the user frame is unknown), frames joined
/// by `;`, then a space and the estimated surviving bytes. Without call-site data, one line per birth epoch under
/// `(all)`.
#[must_use]
pub fn folded(r: &Report) -> String {
    let p = &r.profile;
    let mut out = String::new();
    if p.stacks.is_empty() {
        for e in &p.whole_heap {
            let _ = writeln!(
                out,
                "{ALL};born_{} {}",
                epochs_label(e.first, e.last),
                e.live_bytes,
                ALL = crate::analysis::ALL_SITES
            );
        }
        return out;
    }
    let mut bytes = vec![0.0_f64; p.stacks.len()];
    for e in &p.entries {
        bytes[e.stack] += e.bytes;
    }
    let clean = |s: String| s.replace([';', '\n', '\r'], ":").replace(' ', "_");
    for (stack, b) in p.stacks.iter().zip(bytes) {
        let b = b.round() as u64;
        if b == 0 {
            continue;
        }
        let frames = stack.shown_frames();
        let names: Vec<String> = if frames.is_empty() {
            vec![clean(stack.label())]
        } else {
            frames.iter().rev().map(|f| clean(frame_name(f))).collect()
        };
        let _ = writeln!(out, "{} {b}", names.join(";"));
    }
    out
}
