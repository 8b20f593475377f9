//! `fork()` while other threads are in the middle of sampled allocations
//! (capturing stacks, inserting records): the child, which has only the
//! forking thread, completes a snapshot (the sampling tables' locks were
//! released by the atfork handlers), allocates with sampling itself, frees
//! inherited sampled blocks, and exits cleanly. 50 forks under a watchdog;
//! each child has 20 seconds.

use alloc_core::{set_sampling, snapshot, EpochAlloc, Jemalloc, SampleMode};
use alloc_tests::{exit_on_panic, say, watchdog};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

static STOP: AtomicBool = AtomicBool::new(false);
static WORK: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn busy(id: u64) {
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut i = 0u64;
    while !STOP.load(Relaxed) {
        live.push(vec![id as u8; (i % 300 + 1) as usize]);
        if live.len() > 64 {
            live.swap_remove((i % 64) as usize);
        }
        i += 1;
        WORK.fetch_add(1, Relaxed);
    }
}

/// Runs in the child: must not hang, must not panic (it would exit 101).
fn child(inherited: Vec<Vec<u8>>) -> i32 {
    let before = snapshot();
    if before.sampling.live_sampled == 0 {
        return 3;
    }
    drop(inherited);
    let mut mine = Vec::new();
    for i in 0..200 {
        mine.push(vec![i as u8; 64]);
    }
    let after = snapshot();
    if after.sampling.sampled < before.sampling.sampled + 200 {
        return 4;
    }
    black_box(mine);
    0
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(600), "sampling_fork");
    set_sampling(SampleMode::All);
    let workers: Vec<_> = (0..3)
        .map(|id| std::thread::spawn(move || busy(id)))
        .collect();
    while WORK.load(Relaxed) < 1000 {
        std::thread::yield_now();
    }
    let t = Instant::now();
    let forks = 50;
    for n in 0..forks {
        let inherited: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 100]).collect();
        // SAFETY: the child only runs `child` (which allocates through this
        // crate's allocator, whose locks the atfork handlers released) and
        // leaves with `_exit`, never returning into the parent's state.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = child(inherited);
            // SAFETY: ends the child without running the parent's exit
            // handlers.
            unsafe { libc::_exit(code) };
        }
        drop(inherited);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        loop {
            // SAFETY: `pid` is our child; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            assert_eq!(r, 0, "waitpid failed");
            if Instant::now() > deadline {
                // SAFETY: kills our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("fork {n}: the child hung (deadlock after fork?)");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "fork {n}: child status {status:#x}"
        );
    }
    STOP.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    say!(
        "sampling_fork: {forks} forks in {:?} while 3 threads sampled every allocation ({} \
         allocations): every child snapshotted, sampled and exited cleanly",
        t.elapsed(),
        WORK.load(Relaxed)
    );
}
