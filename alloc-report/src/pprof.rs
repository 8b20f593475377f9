//! The survivors of a report as a gzipped pprof profile. The format and
//! its encoder are `alloc_snapshot::pprof` (shared with the admin
//! endpoint's live `/debug/pprof/heap`); this module chooses what goes in.
//!
//! The profile has two sample types, `survivor_objects/count` and
//! `survivor_space/bytes` (the last is pprof's default), one sample per call
//! stack and birth epoch with the birth epoch as the numeric label
//! `birth_epoch` (unit `epoch`), so `pprof -tagfocus birth_epoch=100:` shows
//! what was born from epoch 100 on, and `pprof -diff_base old.pb.gz
//! new.pb.gz` compares two runs. A stack starts at its user frame (the
//! allocating line; the allocator machinery and the tool's capture frames
//! inside it are left out, as heap profiles do). Frames that share an
//! address (inlined calls) become one location with several lines,
//! innermost first, as pprof expects. Without call-site data the profile has one pseudo-frame,
//! `(all)`, and the exact survivors per birth epoch.

pub use alloc_snapshot::pprof::{
    Function, Label, Line, Location, Mapping, Profile, ProfileBuilder, Sample, ValueType,
};

use crate::analysis::{Report, ALL_SITES};

/// The survivors at the report's last snapshot as a `Profile` message.
pub fn profile(r: &Report) -> Profile {
    let prof = &r.profile;
    let mut b = ProfileBuilder::new();
    b.header(
        &[("survivor_objects", "count"), ("survivor_space", "bytes")],
        1,
        prof.mean_interval_bytes,
        prof.timestamp_unix_ns,
        &format!(
            "alloc-report: survivors at epoch {} born since epoch {} (estimated from sampled call \
             sites where present)",
            prof.epoch, r.start_epoch
        ),
    );
    if prof.stacks.is_empty() {
        let f = b.function(ALL_SITES, "");
        let loc = b.location(0, vec![(f, 0)]);
        for e in &prof.whole_heap {
            let values = vec![clamp(e.live_blocks), clamp(e.live_bytes)];
            b.sample(vec![loc], values, e.last);
        }
        return b.finish();
    }
    // Location ids per stack, leaf first.
    let stack_locs: Vec<Vec<u64>> = prof.stacks.iter().map(|st| b.stack(st)).collect();
    for e in &prof.entries {
        let values = vec![e.blocks.round() as i64, e.bytes.round() as i64];
        b.sample(stack_locs[e.stack].clone(), values, e.epoch);
    }
    b.finish()
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The survivors as a gzipped `profile.proto`, as `pprof` reads it.
#[must_use]
pub fn pprof(r: &Report) -> Vec<u8> {
    alloc_snapshot::pprof::gzip(&profile(r))
}
