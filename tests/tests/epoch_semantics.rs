//! The birth-epoch rules of alloc-core, each checked against exact counts:
//!
//! - `advance_epoch` returns consecutive, increasing epochs and `epoch()`
//!   agrees;
//! - a block allocated in one epoch and freed in a later one leaves its birth
//!   epoch, not the epoch of the free;
//! - a realloc in a later epoch (moving the block, or switching between the
//!   trailer tag and the side table) moves it to that epoch: its old size
//!   leaves the epoch it was in, its new size joins the current one, and
//!   the operation counts as a realloc, not as an allocation or a free; a
//!   realloc within the block's epoch changes that epoch by the difference;
//! - frees on another thread than the allocation, both ways;
//! - more than `EXACT_WINDOW` epochs: the recent window stays one entry per
//!   epoch and exact, older epochs fold into ranges whose totals stay exact,
//!   also when folded blocks are freed or resized;
//! - a million advances finish, the snapshot stays bounded (< 600 entries)
//!   and the tool's metadata does not grow with the number of epochs.

use alloc_core::{
    advance_epoch, epoch, snapshot, untracked, EpochAlloc, Jemalloc, Snapshot, EXACT_WINDOW,
};
use alloc_tests::{
    check_model, check_shape, exact, exit_on_panic, ops_delta, say, watchdog, Counts, Model,
};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Allocates a raw block of `size` bytes (align 8).
fn alloc(size: usize) -> *mut u8 {
    // SAFETY: callers pass non-zero sizes.
    let p = unsafe { GLOBAL.alloc(Layout::from_size_align(size, 8).unwrap()) };
    assert!(!p.is_null(), "alloc({size}) failed");
    p
}

/// Frees a raw block from [`alloc`] (or resized to `size`).
fn free(p: *mut u8, size: usize) {
    // SAFETY: `p` is live with this layout (see `alloc` and `realloc`).
    unsafe { GLOBAL.dealloc(p, Layout::from_size_align(size, 8).unwrap()) }
}

/// Resizes a raw block from [`alloc`] of `old` bytes to `new` bytes.
fn realloc(p: *mut u8, old: usize, new: usize) -> *mut u8 {
    // SAFETY: `p` is live with size `old`, align 8; `new` is small and
    // non-zero.
    let q = unsafe { GLOBAL.realloc(p, Layout::from_size_align(old, 8).unwrap(), new) };
    assert!(!q.is_null(), "realloc({old} -> {new}) failed");
    q
}

fn advance_returns_increasing_epochs() {
    let start = epoch();
    for i in 1..=1000u32 {
        let e = advance_epoch();
        assert_eq!(e, start + i, "advance_epoch() number {i}");
        assert_eq!(epoch(), e, "epoch() after advance number {i}");
    }
    say!("  advance_epoch: 1000 consecutive increasing epochs, epoch() agrees");
}

fn freed_later_leaves_the_birth_epoch() {
    // Sizes with a trailer tag, and ones with a side-table tag.
    const SIZES: [usize; 6] = [1, 24, 1000, 40_000, 300_000, 5 << 20];
    let a = advance_epoch();
    let mut ps = [std::ptr::null_mut(); SIZES.len()];
    for (p, &size) in ps.iter_mut().zip(&SIZES) {
        *p = alloc(size);
    }
    let total: usize = SIZES.iter().sum();
    let s = snapshot();
    assert_eq!(exact(&s, a), Counts::new(total as i64, SIZES.len() as i64));

    let b = advance_epoch();
    let before = snapshot();
    let mut left = total as i64;
    for (i, (&p, &size)) in ps.iter().zip(&SIZES).enumerate() {
        free(p, size);
        left -= size as i64;
        let s = snapshot();
        let remaining = (SIZES.len() - i - 1) as i64;
        assert_eq!(
            exact(&s, a),
            Counts::new(left, remaining),
            "after freeing {size} B"
        );
        assert_eq!(
            exact(&s, b),
            Counts::default(),
            "free counted in the current epoch"
        );
    }
    let after = snapshot();
    assert_eq!(ops_delta(&before, &after), (0, SIZES.len() as i64, 0));
    say!("  allocated in epoch {a}, freed in epoch {b}: counts left epoch {a} exactly");
}

fn realloc_later_moves_the_block_to_the_current_epoch() {
    let a = advance_epoch();
    let before = snapshot();
    let mut p = alloc(100);
    let mut size = 100;
    let mut was = a;
    // Grow (moves), grow into the side table, shrink back to a trailer, in
    // later epochs; then twice within one epoch.
    for new in [10_000usize, 3 << 20, 10, 70_000, 1] {
        let e = advance_epoch();
        p = realloc(p, size, new);
        size = new;
        let s = snapshot();
        assert_eq!(
            exact(&s, was),
            Counts::default(),
            "epoch {was} after the block moved to epoch {e}"
        );
        assert_eq!(
            exact(&s, e),
            Counts::new(size as i64, 1),
            "after realloc to {new} in epoch {e}"
        );
        was = e;
    }
    for new in [5000usize, 40] {
        p = realloc(p, size, new);
        size = new;
        assert_eq!(
            exact(&snapshot(), was),
            Counts::new(size as i64, 1),
            "after realloc to {new} within epoch {was}"
        );
    }
    free(p, size);
    let after = snapshot();
    assert_eq!(exact(&after, was), Counts::default());
    assert_eq!(
        ops_delta(&before, &after),
        (1, 1, 7),
        "allocs, frees, reallocs"
    );
    say!("  realloc in 5 later epochs (moving, trailer <-> side tag) moved the block from {a} to {was}; 2 within {was} stayed");
}

fn frees_on_another_thread() {
    const N: usize = 100;
    // Main allocates in `a`; a thread started in a later epoch frees.
    let a = advance_epoch();
    let mut ps: Vec<(usize, usize)> = untracked(|| Vec::with_capacity(N));
    for i in 0..N {
        let size = 8 + i * 37;
        ps.push((alloc(size) as usize, size));
    }
    let total: usize = ps.iter().map(|(_, s)| s).sum();
    assert_eq!(exact(&snapshot(), a), Counts::new(total as i64, N as i64));
    advance_epoch();
    untracked(|| {
        std::thread::spawn(move || {
            for (p, size) in ps.iter() {
                free(*p as *mut u8, *size);
            }
            alloc_core::untracked(move || drop(ps));
        })
        .join()
        .unwrap()
    });
    assert_eq!(
        exact(&snapshot(), a),
        Counts::default(),
        "epoch {a} after remote frees"
    );

    // A thread allocates in `c` (nothing else runs in `c`); main frees.
    let shared: Arc<Mutex<Vec<(usize, usize)>>> =
        untracked(|| Arc::new(Mutex::new(Vec::with_capacity(N))));
    let barrier = untracked(|| Arc::new(Barrier::new(2)));
    let (s2, b2) = untracked(|| (shared.clone(), barrier.clone()));
    let t = untracked(|| {
        std::thread::spawn(move || {
            b2.wait(); // started (its own start-up allocations are done)
            b2.wait(); // main advanced to `c`
            let mut v = s2.lock().unwrap();
            for i in 0..N {
                let size = 1 + i * 101;
                v.push((alloc(size) as usize, size));
            }
            drop(v);
            b2.wait(); // allocations done
            b2.wait(); // main advanced past `c`; exit there
            alloc_core::untracked(move || drop((s2, b2)));
        })
    });
    barrier.wait();
    let c = advance_epoch();
    barrier.wait();
    barrier.wait();
    let d = advance_epoch();
    barrier.wait();
    untracked(|| t.join().unwrap());
    let v = shared.lock().unwrap();
    let total: usize = v.iter().map(|(_, s)| s).sum();
    assert_eq!(
        exact(&snapshot(), c),
        Counts::new(total as i64, N as i64),
        "epoch {c}: blocks of an exited thread"
    );
    for &(p, size) in v.iter() {
        free(p as *mut u8, size);
    }
    let s = snapshot();
    assert_eq!(
        exact(&s, c),
        Counts::default(),
        "epoch {c} after main freed"
    );
    assert_eq!(
        exact(&s, d),
        Counts::default(),
        "epoch {d}: nothing born there"
    );
    drop(v);
    untracked(move || drop((shared, barrier)));
    say!("  {N} blocks freed by another thread (both directions): counts left the birth epoch");
}

/// Advances until the current epoch is `target - 1`, then once more,
/// returning `target`. Powers of two start a coarse range in any reasonable
/// folding, so no range straddles the first checked epoch.
fn advance_to(target: u32) -> u32 {
    assert!(epoch() < target, "already at {} >= {target}", epoch());
    while epoch() + 1 < target {
        advance_epoch();
    }
    let e = advance_epoch();
    assert_eq!(e, target);
    e
}

fn check(s: &Snapshot, model: &Model, from: u32, what: &str) {
    if let Err(e) = check_shape(s) {
        panic!("{what}: bad snapshot shape: {e}");
    }
    if let Err(e) = check_model(s, model, from) {
        panic!(
            "{what}: snapshot differs from the model (epoch {}):\n{e}",
            s.epoch
        );
    }
}

fn window_stays_exact_and_folded_totals_stay_exact() {
    const EPOCHS: u32 = 700;
    let window = EXACT_WINDOW;
    assert_eq!(window, 256, "EXACT_WINDOW");
    let base = advance_to(4096);
    let mut model = untracked(|| Model::with_epochs((base + EPOCHS + 2 * window + 10) as usize));
    let mut blocks: Vec<(usize, usize, u32)> =
        untracked(|| Vec::with_capacity(2 * EPOCHS as usize));
    for i in 0..EPOCHS {
        let e = if i == 0 { base } else { advance_epoch() };
        let n = 1 + (i % 3) as usize;
        for j in 0..n {
            let size = 1 + (e as usize * 7 + j * 1013) % 3000;
            blocks.push((alloc(size) as usize, size, e));
            model.alloc(e, size);
        }
    }
    let s = snapshot();
    check(&s, &model, base, "700 epochs with live blocks");
    let exact_entries = s
        .epochs
        .iter()
        .filter(|e| e.first == e.last && e.first >= base)
        .count();
    let ranges = s.epochs.iter().filter(|e| e.first != e.last).count();
    assert!(
        exact_entries >= window as usize,
        "only {exact_entries} exact entries, expected the whole window of {window}"
    );

    // Push everything out of the window, then check again.
    for _ in 0..window + 44 {
        advance_epoch();
    }
    let s = snapshot();
    check(&s, &model, base, "after 300 more epochs");

    // Free every third folded block, resize every fifth, in the current
    // epoch: frees leave the (folded) birth epoch; resized blocks leave it
    // too and join the current epoch.
    let now = epoch();
    let mut kept: Vec<(usize, usize, u32)> = untracked(|| Vec::with_capacity(blocks.len()));
    for (i, &(p, size, e)) in blocks.iter().enumerate() {
        if i % 3 == 0 {
            free(p as *mut u8, size);
            model.free(e, size);
        } else if i % 5 == 1 {
            let new = size * 2 + 17;
            let q = realloc(p as *mut u8, size, new);
            model.realloc(e, now, size, new);
            kept.push((q as usize, new, now));
        } else {
            kept.push((p, size, e));
        }
    }
    let s = snapshot();
    check(&s, &model, base, "after freeing and resizing folded blocks");
    assert_eq!(
        exact(&s, now),
        model.get(now),
        "the current epoch holds exactly the resized blocks (no frees)"
    );
    assert!(model.get(now).blocks > 0, "some blocks were resized");

    // Free the rest: everything from `base` on is empty.
    for &(p, size, e) in &kept {
        free(p as *mut u8, size);
        model.free(e, size);
    }
    let s = snapshot();
    check(&s, &model, base, "after freeing everything");
    assert!(
        s.epochs.iter().all(|e| e.last < base),
        "entries left from {base} on: {:?}",
        s.epochs
            .iter()
            .filter(|e| e.last >= base)
            .collect::<Vec<_>>()
    );
    untracked(move || drop((blocks, kept, model)));
    say!(
        "  {EPOCHS} epochs with live blocks: {exact_entries} exact entries, {ranges} folded ranges; \
         totals exact after folding, freeing and resizing folded blocks"
    );
}

fn a_million_advances_stay_bounded() {
    const ADVANCES: u32 = 1_000_000;
    const EVERY: u32 = 10_000;
    let base = advance_to(8192);
    let capacity = (base + ADVANCES + 2) as usize;
    let mut model = untracked(|| Model::with_epochs(capacity));
    let mut blocks: Vec<(usize, usize, u32)> = untracked(|| Vec::with_capacity(200));
    let survivor = alloc(4242);
    model.alloc(base, 4242);
    let before = snapshot();
    let start = Instant::now();
    for i in 1..=ADVANCES {
        let e = advance_epoch();
        if i % EVERY == 0 {
            let size = (i / EVERY) as usize;
            blocks.push((alloc(size) as usize, size, e));
            model.alloc(e, size);
        }
    }
    let took = start.elapsed();
    let after = snapshot();
    check(&after, &model, base, "after a million advances");
    assert_eq!(after.epoch, base + ADVANCES);
    assert!(
        after.epochs.len() < 600,
        "{} snapshot entries after {ADVANCES} epochs (should be bounded)",
        after.epochs.len()
    );
    let (m0, m1) = (before.tool.metadata_bytes, after.tool.metadata_bytes);
    assert!(
        m1 <= m0 + 65536,
        "tool metadata grew from {m0} to {m1} bytes over {ADVANCES} epochs"
    );
    assert!(
        took < Duration::from_secs(60),
        "a million advances took {took:?} (a hang guard, not a benchmark)"
    );
    let (born_bytes, born_blocks) = after.live_born_before(after.epoch);
    assert!(
        born_bytes >= 4242 && born_blocks >= 1 + ADVANCES as u64 / EVERY as u64 - 1,
        "live_born_before({}) = ({born_bytes}, {born_blocks})",
        after.epoch
    );
    let entries = after.epochs.len();
    free(survivor, 4242);
    model.free(base, 4242);
    for &(p, size, e) in &blocks {
        free(p as *mut u8, size);
        model.free(e, size);
    }
    let s = snapshot();
    check(&s, &model, base, "after freeing the million-epoch blocks");
    untracked(move || drop((blocks, model)));
    say!(
        "  {ADVANCES} advances in {took:?}: {entries} snapshot entries, metadata {m0} -> {m1} B, \
         totals exact across {} epochs",
        ADVANCES
    );
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "epoch_semantics");
    say!("epoch_semantics:");
    advance_returns_increasing_epochs();
    freed_later_leaves_the_birth_epoch();
    realloc_later_moves_the_block_to_the_current_epoch();
    frees_on_another_thread();
    window_stays_exact_and_folded_totals_stay_exact();
    a_million_advances_stay_bounded();
    say!("epoch_semantics: all checks passed");
}
