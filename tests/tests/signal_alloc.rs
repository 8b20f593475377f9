//! A signal handler that allocates, frees and reallocates on a thread that
//! it interrupted inside the tool (sampling, a sampled free, holding a lock
//! of the tool during a snapshot) never deadlocks, in every sampling mode:
//! the defaults' policy in its dense phase, off, an interval, every
//! allocation. 1,000 signals go to each of two threads that churn (small
//! blocks, reallocs, a map; one also takes snapshots) in an epoch of their
//! own; each signal's handler allocates a block and grows it (a realloc)
//! and allocates and frees a scratch block. On the thread that never enters
//! the tool's scope the handler keeps its block and frees the one it kept
//! two signals before; afterwards the epoch holds exactly the blocks kept,
//! and nothing once they are freed. (On the snapshot thread the handler
//! frees its block at once: a handler that interrupts a snapshot allocates
//! in the tool's scope, where every block is counted as the tool's.)
//!
//! jemalloc itself, like any `malloc`, is not async-signal-safe: a handler
//! that needs one of its arena locks while the code it interrupted holds it
//! waits forever, with or without this tool. So the inner allocator here is
//! jemalloc with the signal blocked while jemalloc's own code runs
//! (`Masked`): the signal lands anywhere in the tool (the allocation path,
//! sampling, snapshots), never inside jemalloc, and what deadlocks or loses
//! a count is the tool's doing.
//!
//! A handler that does not answer within 10 s, or a run past the watchdog,
//! fails the test (a deadlock shows as one of those).

use alloc_core::{
    advance_epoch, epoch, sampling, set_sampling, signal_reentry_lost, snapshot, Backend,
    EpochAlloc, Jemalloc, SampleMode,
};
use alloc_tests::{say, watchdog};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Masked> = EpochAlloc::new(Masked);

/// jemalloc, with `SIGUSR1` blocked while its code runs.
struct Masked;

fn masked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: `sigset_t` is plain data that `sigemptyset` initialises;
    // `pthread_sigmask` is async-signal-safe and only changes this thread's
    // mask, which is restored before returning.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

// SAFETY: every method forwards to jemalloc with the same arguments.
unsafe impl GlobalAlloc for Masked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        masked(|| unsafe { Jemalloc.alloc(layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        masked(|| unsafe { Jemalloc.alloc_zeroed(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        masked(|| unsafe { Jemalloc.dealloc(ptr, layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        masked(|| unsafe { Jemalloc.realloc(ptr, layout, new_size) })
    }
}

impl Backend for Masked {}

const SIGNALS_PER_THREAD: usize = 1_000;
const THREADS: usize = 2;
/// A kept block is allocated with `FIRST_LEN` bytes and grown to `KEPT_LEN`.
const FIRST_LEN: usize = 2_500;
const KEPT_LEN: usize = 3_300;
/// The scratch block each handler allocates and frees.
const SCRATCH_LEN: usize = 1_800;
const SLOTS: usize = SIGNALS_PER_THREAD * THREADS;

/// Blocks the handlers keep, by signal number.
static KEPT: [AtomicPtr<u8>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
/// Handler runs (the next signal number).
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread's handler keeps its blocks (the thread that
    /// never enters the tool's scope).
    static KEEPS: Cell<bool> = const { Cell::new(false) };
}
/// The churning threads' `pthread_t`s.
static PTHREADS: [AtomicUsize; THREADS] = [const { AtomicUsize::new(0) }; THREADS];

extern "C" fn on_signal(_: libc::c_int) {
    let n = HANDLED.load(Relaxed);
    // An allocation, then a realloc that grows it to exactly `KEPT_LEN`.
    let mut v: Vec<u8> = Vec::with_capacity(FIRST_LEN);
    v.resize(FIRST_LEN, n as u8);
    v.reserve_exact(KEPT_LEN - FIRST_LEN);
    v.resize(KEPT_LEN, 1);
    let block = v.into_boxed_slice();
    if KEEPS.with(Cell::get) {
        KEPT[n % SLOTS].store(Box::into_raw(block).cast::<u8>(), Relaxed);
        if n >= 2 {
            free_kept(n - 2);
        }
    } else {
        drop(block);
    }
    black_box(vec![2u8; SCRATCH_LEN]);
    HANDLED.store(n + 1, Release);
}

fn free_kept(n: usize) {
    let p = KEPT[n].swap(std::ptr::null_mut(), Relaxed);
    if !p.is_null() {
        // SAFETY: `p` came from `Box::into_raw` of a `[u8]` of `KEPT_LEN`
        // elements, and the swap took it out of `KEPT` once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, KEPT_LEN)) });
    }
}

fn churn(id: usize, snapshots: bool) {
    let mut i = 0u64;
    while !STOP.load(Relaxed) {
        let mut map: HashMap<u64, String> = HashMap::new();
        for k in 0..32 {
            map.insert(k, format!("{id}-{i}-{k}"));
        }
        let mut v: Vec<u32> = Vec::new();
        for k in 0..300 {
            v.push(k);
        }
        if snapshots && i.is_multiple_of(8) {
            black_box(snapshot().epochs.len());
        }
        black_box((map.len(), v.len()));
        i += 1;
    }
}

/// Fills this thread's jemalloc cache with blocks of the handler's sizes.
fn warm_handler_sizes() {
    for len in [FIRST_LEN, KEPT_LEN, SCRATCH_LEN] {
        let blocks: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; len]).collect();
        black_box(blocks);
    }
}

/// Live bytes and blocks born in `first` and later.
fn live_since(first: u32) -> (u64, u64) {
    let s = snapshot();
    s.epochs
        .iter()
        .filter(|e| e.first >= first)
        .fold((0, 0), |(b, n), e| (b + e.live_bytes, n + e.live_blocks))
}

fn install_handler() {
    // SAFETY: a zeroed `sigaction` is a valid empty one; the handler is an
    // `extern "C" fn(c_int)`, as `sa_sigaction` expects without
    // `SA_SIGINFO`.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

fn run(mode: &str) {
    HANDLED.store(0, Relaxed);
    STOP.store(false, Relaxed);
    let ready = Barrier::new(THREADS + 1);
    let go = Barrier::new(THREADS + 1);
    let first = std::thread::scope(|s| {
        for (id, pthread) in PTHREADS.iter().enumerate() {
            let (ready, go) = (&ready, &go);
            s.spawn(move || {
                black_box(std::thread::current().id());
                warm_handler_sizes();
                KEEPS.with(|k| k.set(id == 0));
                // SAFETY: `pthread_self` has no preconditions.
                pthread.store(unsafe { libc::pthread_self() } as usize, Relaxed);
                ready.wait();
                go.wait();
                churn(id, id == 1);
            });
        }
        ready.wait();
        let ids: Vec<libc::pthread_t> = PTHREADS
            .iter()
            .map(|p| p.load(Relaxed) as libc::pthread_t)
            .collect();
        let first = advance_epoch();
        go.wait();
        for n in 0..SIGNALS_PER_THREAD * THREADS {
            // SAFETY: the thread is alive until `STOP` is set below.
            let sent = unsafe { libc::pthread_kill(ids[n % THREADS], libc::SIGUSR1) };
            assert_eq!(sent, 0, "pthread_kill");
            let sent = Instant::now();
            while HANDLED.load(Acquire) <= n {
                if sent.elapsed() > Duration::from_secs(10) {
                    eprintln!("{mode}: signal {n} not handled within 10 s (deadlock?)");
                    std::process::exit(1);
                }
                std::hint::spin_loop();
            }
        }
        STOP.store(true, Relaxed);
        first
    });
    // The churn freed all it allocated: what the epochs since `first` hold
    // is what the handlers kept.
    let kept = KEPT.iter().filter(|p| !p.load(Relaxed).is_null()).count() as u64;
    let (bytes, blocks) = live_since(first);
    say!(
        "{mode}: {} signals handled; {kept} blocks kept; live since epoch {first}: \
         {bytes} bytes in {blocks} blocks",
        HANDLED.load(Relaxed)
    );
    assert_eq!(
        (bytes, blocks),
        (kept * KEPT_LEN as u64, kept),
        "{mode}: the epochs since {first} hold exactly the handlers' kept blocks"
    );
    for n in 0..SLOTS {
        free_kept(n);
    }
    assert_eq!(
        live_since(first),
        (0, 0),
        "{mode}: nothing once they are freed"
    );
    assert_eq!(
        signal_reentry_lost(),
        0,
        "{mode}: no deferred count dropped"
    );
    advance_epoch();
}

fn main() {
    watchdog(Duration::from_secs(600), "signal_alloc");
    install_handler();

    // The defaults' policy, driven into its dense phase: blocks that survive
    // a snapshot interval make the next snapshot switch capture on.
    let mut leaked = Vec::new();
    for _ in 0..3 {
        leaked.push(vec![7u8; 512]);
        advance_epoch();
        black_box(snapshot().epochs.len());
    }
    // Every allocation is recorded now: 64 blocks of 1,000 bytes (far
    // below one expected sample at the sparse interval) all are.
    let probe_epoch = advance_epoch();
    let probe: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1000]).collect();
    let samples: u64 = snapshot()
        .sites
        .iter()
        .filter(|s| s.epoch == probe_epoch)
        .map(|s| s.samples)
        .sum();
    drop(probe);
    say!(
        "default policy (configured {:?}): {samples} samples of the probe's 65 blocks",
        sampling()
    );
    assert!(
        samples >= 64,
        "the policy records every allocation while survivors exist"
    );
    run("default policy (dense)");
    drop(leaked);

    for (name, mode) in [
        ("off", SampleMode::Off),
        ("interval 4096", SampleMode::Interval(4096)),
        ("every allocation", SampleMode::All),
    ] {
        set_sampling(mode);
        run(name);
    }
    say!("signal_alloc: ok at epoch {}", epoch());
}
