//! `fork()` while other threads allocate hard, take snapshots and start and
//! end threads (so some are inside the tool at the moment of the fork). In
//! the child, the forking thread frees the blocks it allocated before the
//! fork and takes snapshots: the birth epoch's counts go down by exactly
//! those blocks, the free counter by their number, and a new epoch in the
//! child counts exactly what the child allocates. The child reports through
//! its exit status only (it prints nothing: another thread may have held the
//! stdout lock at the fork). The parent waits with a 20 s watchdog, kills a
//! stuck child and fails. 50 forks.

use alloc_core::{advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc, Snapshot};
use alloc_tests::{exit_on_panic, fill, find_mismatch, say, watchdog, Counts, Rng};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const FORKS: usize = 50;
const BLOCKS: usize = 64;
const WORKERS: usize = 3;
const CHILD_LIMIT: Duration = Duration::from_secs(20);

/// Why a child failed, as its exit status.
const CHILD_FAILURES: [&str; 8] = [
    "ok",
    "a block allocated before the fork lost its contents",
    "the birth epoch did not go down by exactly the freed blocks",
    "the frees counter did not go up by exactly the freed blocks",
    "the totals' live counts did not go down by exactly the freed blocks",
    "a new epoch in the child does not hold exactly the child's allocations",
    "the birth epoch's entry was missing before the frees",
    "the new epoch in the child does not empty after its frees",
];

static STOP: AtomicBool = AtomicBool::new(false);
static WORK: AtomicU64 = AtomicU64::new(0);

/// Allocates hard through the ordinary std paths (Vec, Box, String), with
/// snapshots now and then; worker 0 also starts short-lived threads.
fn worker(id: usize) {
    let mut rng = Rng::new(0xF0_4C + id as u64);
    let mut live: Vec<Vec<u8>> = Vec::with_capacity(512);
    let mut n = 0u64;
    while !STOP.load(Relaxed) {
        let size = rng.skewed_size().min(64 << 10);
        if live.len() < 512 {
            live.push(vec![id as u8; size]);
        }
        if rng.percent(45) && !live.is_empty() {
            let i = rng.below(live.len() as u64) as usize;
            let mut v = live.swap_remove(i);
            if rng.percent(30) {
                v.resize(v.len() * 2 + 1, 1);
            }
            drop(v);
        }
        let b = Box::new([n; 4]);
        std::hint::black_box(&b);
        if n.is_multiple_of(256) {
            std::hint::black_box(snapshot());
        }
        if id == 0 && n.is_multiple_of(500) {
            std::thread::spawn(move || std::hint::black_box(vec![n; 64]).len())
                .join()
                .unwrap();
        }
        n += 1;
    }
    WORK.fetch_add(n, Relaxed);
}

/// Bytes at each end of a block that carry its pattern (all of a small
/// block; the ends of a large one, which keeps debug builds fast).
const MARKED: usize = 4096;

/// Writes the pattern `seed` over the first and last `MARKED` bytes.
///
/// # Safety
/// `p` must be valid for writes of `size` bytes.
unsafe fn mark(p: *mut u8, size: usize, seed: u64) {
    let n = size.min(MARKED);
    // SAFETY: both ranges are inside the block (n <= size).
    unsafe {
        fill(p, n, seed);
        fill(p.add(size - n), n, seed ^ 1);
    }
}

/// Whether the marks written by [`mark`] are intact.
///
/// # Safety
/// `p` must be valid for reads of `size` bytes, marked by [`mark`].
unsafe fn marked(p: *const u8, size: usize, seed: u64) -> bool {
    let n = size.min(MARKED);
    // SAFETY: both ranges are inside the block and were written by `mark`
    // (the second one last, where they overlap).
    unsafe {
        find_mismatch(p.add(size - n), n, seed ^ 1).is_none()
            && (size < 2 * n || find_mismatch(p, n, seed).is_none())
    }
}

/// Live counts of the entry for exactly `epoch`, or `None`.
fn entry(s: &Snapshot, epoch: u32) -> Option<Counts> {
    s.epoch_entry(epoch)
        .filter(|e| e.first == e.last)
        .map(Counts::from)
}

/// What the child does; returns its exit status. Must not panic or print.
fn child(blocks: &[(usize, usize, u64)], born: u32) -> i32 {
    let freed_bytes: usize = blocks.iter().map(|b| b.1).sum();
    let freed = Counts::new(freed_bytes as i64, blocks.len() as i64);
    let s1 = snapshot();
    let Some(e1) = entry(&s1, born) else { return 6 };
    for &(p, size, seed) in blocks {
        // SAFETY: the block was allocated with `size` bytes and marked with
        // `seed` before the fork; the child has its own copy of it.
        if !unsafe { marked(p as *const u8, size, seed) } {
            return 1;
        }
    }
    for &(p, size, _) in blocks {
        // SAFETY: every block is live with this layout (in the child's copy
        // of the address space) and freed once here.
        unsafe { GLOBAL.dealloc(p as *mut u8, Layout::from_size_align(size, 16).unwrap()) };
    }
    let s2 = snapshot();
    let e2 = entry(&s2, born).unwrap_or_default();
    if Counts::new(e1.bytes - e2.bytes, e1.blocks - e2.blocks) != freed {
        return 2;
    }
    if s2.totals.frees != s1.totals.frees + blocks.len() as u64 {
        return 3;
    }
    let live1 = Counts::new(s1.totals.live_bytes as i64, s1.totals.live_blocks as i64);
    let live2 = Counts::new(s2.totals.live_bytes as i64, s2.totals.live_blocks as i64);
    if Counts::new(live1.bytes - live2.bytes, live1.blocks - live2.blocks) != freed {
        return 4;
    }
    // The child goes on allocating: a fresh epoch of its own.
    let mine = advance_epoch();
    let v: Vec<u64> = Vec::with_capacity(1000);
    let b = Box::new([7u8; 100]);
    let s3 = snapshot();
    if entry(&s3, mine) != Some(Counts::new(8000 + 100, 2)) {
        return 5;
    }
    drop((v, b));
    let s4 = snapshot();
    if entry(&s4, mine).is_some() {
        return 7;
    }
    0
}

fn wait_with_watchdog(pid: libc::pid_t, round: usize) -> Duration {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(
            r >= 0,
            "waitpid failed: {}",
            std::io::Error::last_os_error()
        );
        if r == pid {
            if libc::WIFEXITED(status) {
                let code = libc::WEXITSTATUS(status);
                let why = CHILD_FAILURES
                    .get(code as usize)
                    .unwrap_or(&"unknown status");
                assert_eq!(code, 0, "fork {round}: child exited with {code}: {why}");
            } else if libc::WIFSIGNALED(status) {
                panic!(
                    "fork {round}: child killed by signal {}",
                    libc::WTERMSIG(status)
                );
            } else {
                panic!("fork {round}: child ended with wait status {status:#x}");
            }
            return start.elapsed();
        }
        if start.elapsed() > CHILD_LIMIT {
            // SAFETY: `pid` is our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above; reaps the killed child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("fork {round}: child still running after {CHILD_LIMIT:?} (deadlock after fork?), killed");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(600), "fork_child");
    let workers: Vec<_> = untracked(|| {
        (0..WORKERS)
            .map(|id| std::thread::spawn(move || worker(id)))
            .collect()
    });
    let mut rng = Rng::new(42);
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for round in 0..FORKS {
        let born = advance_epoch();
        let mut blocks = [(0usize, 0usize, 0u64); BLOCKS];
        for (k, b) in blocks.iter_mut().enumerate() {
            // Mostly small (trailer tag), some large (side-table tag).
            let size = match k % 8 {
                0 => 100_000 + rng.range(0..=50_000),
                1 => 2 << 20,
                _ => rng.range(1..=2000),
            };
            // SAFETY: non-zero size.
            let p = unsafe { GLOBAL.alloc(Layout::from_size_align(size, 16).unwrap()) };
            assert!(!p.is_null());
            let seed = (round * BLOCKS + k) as u64;
            // SAFETY: `p` is a fresh block of `size` bytes.
            unsafe { mark(p, size, seed) };
            *b = (p as usize, size, seed);
        }
        // Let the workers get going again after the previous wait.
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: fork has no preconditions; the child only runs `child`
        // (allocator and snapshot calls, no locks of ours) and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = child(&blocks, born);
            // SAFETY: ends the child without running the parent's atexit
            // handlers or destructors.
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
        slowest = slowest.max(wait_with_watchdog(pid, round));
        for &(p, size, seed) in &blocks {
            // SAFETY: the parent's copy of the block is live and marked.
            let intact = unsafe { marked(p as *const u8, size, seed) };
            assert!(intact, "fork {round}: parent's block changed");
            // SAFETY: as above; freed once.
            unsafe { GLOBAL.dealloc(p as *mut u8, Layout::from_size_align(size, 16).unwrap()) };
        }
    }
    STOP.store(true, Relaxed);
    untracked(|| {
        for w in workers {
            w.join().unwrap();
        }
    });
    say!(
        "fork_child: {FORKS} forks while {WORKERS} threads allocated ({} ops), snapshotted and \
         spawned threads: every child freed the forking thread's {BLOCKS} pre-fork blocks with \
         exact counts and exited 0 (slowest child {slowest:?}, total {:?})",
        WORK.load(Relaxed),
        started.elapsed()
    );
}
