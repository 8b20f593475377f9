//! The tool's own allocations never show up as the user's: snapshots (many,
//! kept alive, then dropped; also taken on another thread) and everything
//! allocated inside `untracked` count in `Snapshot::tool`, and the user's
//! totals and per-epoch entries do not move. Blocks keep their owner when
//! freed or resized on the other side of the boundary: a user block resized
//! inside `untracked` moves to the current epoch like any realloc and stays
//! the user's, a user block freed there leaves the user's epoch, a tool block
//! freed outside `untracked` leaves the tool's count.

use alloc_core::{advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc, Snapshot};
use alloc_tests::{exact, exit_on_panic, say, watchdog, Counts};
use std::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// The user's side of a snapshot that must not move: live totals,
/// operation counts and per-epoch entries.
fn assert_user_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert_eq!(before.totals, after.totals, "{what}: user totals changed");
    assert_eq!(before.epochs, after.epochs, "{what}: user epochs changed");
}

fn tool_live(s: &Snapshot) -> Counts {
    Counts::new(s.tool.live_bytes as i64, s.tool.live_blocks as i64)
}

fn snapshots_are_the_tools() {
    const KEPT: usize = 1000;
    // One live user block, so every snapshot has a non-empty `epochs` vector
    // (a heap allocation of the snapshot's own).
    let e = advance_epoch();
    let layout = Layout::from_size_align(333, 8).unwrap();
    // SAFETY: non-zero size.
    let user = unsafe { GLOBAL.alloc(layout) };
    assert!(!user.is_null());
    let mut kept: Vec<Snapshot> = untracked(|| Vec::with_capacity(KEPT));
    let first = snapshot();
    for _ in 0..KEPT {
        kept.push(snapshot());
    }
    let mid = snapshot();
    assert_user_unchanged(&first, &mid, "1000 snapshots kept alive");
    let grown = tool_live(&mid).blocks - tool_live(&first).blocks;
    assert!(
        grown >= KEPT as i64,
        "tool live blocks grew by {grown} with {KEPT} snapshots alive"
    );
    for s in &kept {
        assert_user_unchanged(&first, s, "a kept snapshot");
    }
    // Dropped outside `untracked`: the frees are the tool's.
    drop(kept);
    let last = snapshot();
    assert_user_unchanged(&first, &last, "1000 snapshots dropped");
    let back = tool_live(&last).blocks - tool_live(&first).blocks;
    // A snapshot holds blocks of its own: its list of loaded modules (a
    // vector, and per module its path, ranges and build id), its epochs,
    // its run identity's id, its sampled stacks (a vector, and per stack
    // its frames), its sites and its histograms' buckets (the start-up's
    // records give it some): `last` counts `first`'s and `mid`'s, which
    // `first` did not.
    let own = |s: &Snapshot| {
        let modules = 1 + s
            .modules
            .iter()
            .map(|m| 1 + i64::from(!m.ranges.is_empty()) + i64::from(m.build_id.is_some()))
            .sum::<i64>();
        let stacks = i64::from(!s.stacks.is_empty())
            + s.stacks.iter().filter(|st| !st.frames.is_empty()).count() as i64
            + i64::from(!s.sites.is_empty());
        let h = &s.histograms;
        let histograms = [&h.alloc_size, &h.lifetime_epochs, &h.lifetime_ns]
            .iter()
            .filter(|h| !h.buckets.is_empty())
            .count() as i64;
        let epochs = i64::from(!s.epochs.is_empty());
        let run = i64::from(s.run.as_ref().is_some_and(|r| !r.id.is_empty()));
        modules + stacks + histograms + epochs + run
    };
    assert!(
        back.abs() <= 4 + own(&first) + own(&mid),
        "tool live blocks {} -> {} after dropping the snapshots",
        tool_live(&first).blocks,
        tool_live(&last).blocks
    );
    assert_eq!(exact(&last, e), Counts::new(333, 1));

    // Snapshots taken on another thread (spawned and joined by the tool).
    let other: Vec<Snapshot> = untracked(|| {
        std::thread::spawn(|| alloc_core::untracked(|| (0..100).map(|_| snapshot()).collect()))
            .join()
            .unwrap()
    });
    let after_thread = snapshot();
    assert_user_unchanged(&last, &after_thread, "snapshots on another thread");
    drop(other);
    let dropped = snapshot();
    assert_user_unchanged(&last, &dropped, "dropping another thread's snapshots");

    // SAFETY: `user` is live with `layout`.
    unsafe { GLOBAL.dealloc(user, layout) };
    say!(
        "  {KEPT} snapshots kept alive (+{grown} tool blocks) and dropped, 100 on another \
         thread: user totals and epochs unchanged"
    );
}

fn untracked_allocations_are_the_tools() {
    let e = advance_epoch();
    let before = snapshot();
    let layout = Layout::from_size_align(12_345, 64).unwrap();
    let (v, raw) = untracked(|| {
        let v: Vec<u8> = vec![7u8; 1 << 20];
        // SAFETY: non-zero size.
        let raw = unsafe { GLOBAL.alloc(layout) };
        // Nested scopes stay the tool's.
        let nested = untracked(|| vec![1u64; 1000]);
        (v, (raw, nested))
    });
    let (raw, nested) = raw;
    assert!(!raw.is_null());
    let after = snapshot();
    assert_user_unchanged(&before, &after, "allocations inside untracked");
    assert_eq!(exact(&after, e), Counts::default());
    let grew = tool_live(&after).bytes - tool_live(&before).bytes;
    let expected = (1 << 20) + 12_345 + 8000;
    assert!(
        (expected..expected + 65536).contains(&grew),
        "tool live bytes grew by {grew}, expected about {expected}"
    );

    // Tool blocks resized and freed outside `untracked` stay the tool's.
    let mut nested = nested;
    nested.resize(100_000, 2); // a realloc of a tool block, outside the scope
    let resized = snapshot();
    assert_user_unchanged(&before, &resized, "tool block resized outside untracked");
    drop(v);
    drop(nested);
    // SAFETY: `raw` is live with `layout`.
    unsafe { GLOBAL.dealloc(raw, layout) };
    let freed = snapshot();
    assert_user_unchanged(&before, &freed, "tool blocks freed outside untracked");
    let left = tool_live(&freed).bytes - tool_live(&before).bytes;
    assert!(
        left.abs() < 65536,
        "tool live bytes {} -> {} after freeing the untracked blocks",
        before.tool.live_bytes,
        freed.tool.live_bytes
    );
    say!(
        "  untracked: 1 MiB Vec + 12345 B raw + nested scope counted as the tool's \
         (+{grew} B), resized and freed outside: user unchanged"
    );
}

fn user_blocks_stay_the_users_inside_untracked() {
    let e = advance_epoch();
    let layout = Layout::from_size_align(500, 16).unwrap();
    // SAFETY: non-zero size.
    let p = unsafe { GLOBAL.alloc(layout) };
    assert!(!p.is_null());
    let s = snapshot();
    assert_eq!(exact(&s, e), Counts::new(500, 1));
    let later = advance_epoch();
    // SAFETY: `p` is live with `layout`; 5000 is a valid size.
    let q = untracked(|| unsafe { GLOBAL.realloc(p, layout, 5000) });
    assert!(!q.is_null());
    let s = snapshot();
    assert_eq!(exact(&s, e), Counts::default());
    assert_eq!(
        exact(&s, later),
        Counts::new(5000, 1),
        "user block resized inside untracked"
    );
    let before_free = snapshot();
    untracked(|| {
        // SAFETY: `q` is live with size 5000, align 16.
        unsafe { GLOBAL.dealloc(q, Layout::from_size_align(5000, 16).unwrap()) }
    });
    let s = snapshot();
    assert_eq!(
        exact(&s, later),
        Counts::default(),
        "user block freed inside untracked"
    );
    assert_eq!(s.totals.frees, before_free.totals.frees + 1, "user frees");
    say!("  user block resized and freed inside untracked: moved from epoch {e} to {later}, then freed there");
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(120), "tool_allocations");
    say!("tool_allocations:");
    snapshots_are_the_tools();
    untracked_allocations_are_the_tools();
    user_blocks_stay_the_users_inside_untracked();
    say!("tool_allocations: all checks passed");
}
