//! 10,000 short-lived threads (100 batches of 100), then one batch of more
//! threads than the tool has counter slots (`MAX_THREAD_SLOTS` + 100, alive
//! at once, so some count through the shared fallback), whose `thread_local!`
//! values allocate in their lazy initialisers and in their destructors: a
//! destructor frees the block its initialiser allocated, allocates and frees
//! a temporary, initialises a second thread-local during teardown (whose own
//! destructor allocates too), and some leak a known number of bytes on
//! purpose. A pthread key destructor, which glibc runs after alloc-core's own
//! thread-exit hook has retired the thread's slot, allocates, frees and
//! leaks too. Each batch's destructors run in an epoch of their own, which
//! afterwards holds exactly the leaked bytes and blocks; once the leaks are
//! freed every such epoch is empty. The tool's thread count and metadata do
//! not grow with the number of threads, and a thread taking snapshots in a
//! loop the whole time never hangs.
//!
//! Why a separate epoch for the destructors: std allocates too when a thread
//! starts (its stack-overflow handler keeps a `BTreeMap` of live threads;
//! with more than 11 alive it allocates and frees B-tree nodes, as the
//! user). Those are real user allocations, but not the model's, so each
//! batch starts its threads in one epoch and, once all have started, lets
//! them finish in the next; removing from the map only frees.

use alloc_core::{
    advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc, Snapshot, MAX_THREAD_SLOTS,
};
use alloc_tests::{exact, exit_on_panic, ops_delta, say, watchdog, Counts};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const BATCHES: usize = 100;
const PER_BATCH: usize = 100;
/// The last batch: more threads alive at once than there are slots.
const BIG_BATCH: usize = MAX_THREAD_SLOTS + 100;
const THREADS: usize = BATCHES * PER_BATCH + BIG_BATCH;
const MAX_LEAKS: usize = 2 * THREADS;

/// Blocks leaked on purpose by destructors: address and size.
static LEAK_PTRS: [AtomicUsize; MAX_LEAKS] = [const { AtomicUsize::new(0) }; MAX_LEAKS];
static LEAK_SIZES: [AtomicUsize; MAX_LEAKS] = [const { AtomicUsize::new(0) }; MAX_LEAKS];
static LEAKS: AtomicUsize = AtomicUsize::new(0);
/// User operations the threads performed (raw calls on `GLOBAL`).
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);
/// Destructor runs.
static HOLDER_DROPS: AtomicUsize = AtomicUsize::new(0);
static LATE_DROPS: AtomicUsize = AtomicUsize::new(0);
static KEY_DROPS: AtomicUsize = AtomicUsize::new(0);
/// A pthread key created after alloc-core's, so its destructor runs after
/// alloc-core has retired the exiting thread's slot.
static LAST_KEY: AtomicUsize = AtomicUsize::new(0);

fn raw_alloc(size: usize) -> *mut u8 {
    // SAFETY: callers pass non-zero sizes.
    let p = unsafe { GLOBAL.alloc(Layout::from_size_align(size, 8).unwrap()) };
    assert!(!p.is_null(), "alloc({size}) failed");
    ALLOCS.fetch_add(1, Relaxed);
    p
}

fn raw_free(p: *mut u8, size: usize) {
    // SAFETY: `p` came from `raw_alloc(size)` and is freed once.
    unsafe { GLOBAL.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
    FREES.fetch_add(1, Relaxed);
}

fn leak(size: usize) {
    let p = raw_alloc(size);
    let i = LEAKS.fetch_add(1, Relaxed);
    LEAK_PTRS[i].store(p as usize, Relaxed);
    LEAK_SIZES[i].store(size, Relaxed);
}

/// The bytes thread `i`'s `Holder` destructor leaks (0: none).
fn holder_leak(i: usize) -> usize {
    if i.is_multiple_of(3) {
        8 + i % 64
    } else {
        0
    }
}

/// The bytes thread `i`'s `Late` destructor leaks (0: none).
fn late_leak(i: usize) -> usize {
    if i.is_multiple_of(5) {
        1 + i % 7
    } else {
        0
    }
}

/// The bytes thread `i`'s pthread key destructor leaks (0: none).
fn key_leak(i: usize) -> usize {
    if i.is_multiple_of(7) {
        3 + i % 5
    } else {
        0
    }
}

/// All the bytes and blocks thread `i`'s destructors leak.
fn leaks_of(i: usize) -> Counts {
    let sizes = [holder_leak(i), late_leak(i), key_leak(i)];
    Counts::new(
        sizes.iter().sum::<usize>() as i64,
        sizes.iter().filter(|&&s| s > 0).count() as i64,
    )
}

/// The pthread key destructor: runs after every `thread_local!` destructor
/// and after alloc-core's own key destructor (keys run in creation order).
extern "C" fn key_destructor(value: *mut libc::c_void) {
    let i = value as usize - 1;
    let tmp = raw_alloc(777);
    raw_free(tmp, 777);
    if key_leak(i) > 0 {
        leak(key_leak(i));
    }
    KEY_DROPS.fetch_add(1, Relaxed);
}

/// Allocates in its lazy initialiser; frees, allocates, touches `LATE` and
/// maybe leaks in its destructor.
struct Holder {
    block: *mut u8,
    size: usize,
}

impl Holder {
    fn new() -> Self {
        let size = 16 + INDEX.get() % 200;
        Holder {
            block: raw_alloc(size),
            size,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let i = INDEX.get();
        raw_free(self.block, self.size);
        let tmp = raw_alloc(100 + i % 50);
        raw_free(tmp, 100 + i % 50);
        // Initialises another thread-local during teardown.
        let _ = LATE.try_with(|l| l.touched.set(true));
        if holder_leak(i) > 0 {
            leak(holder_leak(i));
        }
        HOLDER_DROPS.fetch_add(1, Relaxed);
    }
}

/// First touched inside `Holder`'s destructor.
struct Late {
    block: *mut u8,
    touched: Cell<bool>,
}

impl Late {
    fn new() -> Self {
        Late {
            block: raw_alloc(24),
            touched: Cell::new(false),
        }
    }
}

impl Drop for Late {
    fn drop(&mut self) {
        let i = INDEX.get();
        raw_free(self.block, 24);
        let tmp = raw_alloc(4000);
        raw_free(tmp, 4000);
        if late_leak(i) > 0 {
            leak(late_leak(i));
        }
        LATE_DROPS.fetch_add(1, Relaxed);
    }
}

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
    static HOLDER: Holder = Holder::new();
    static LATE: Late = Late::new();
}

/// The body of churn thread `i`: initialise `HOLDER`, wait until the whole
/// batch has started and the epoch moved on, a little work, then exit (the
/// destructors do the interesting part).
fn churn(i: usize, gate: &Barrier) {
    INDEX.set(i);
    let key = LAST_KEY.load(Relaxed) as libc::pthread_key_t;
    // SAFETY: `key` was created in `main`; the value is a plain number.
    let set = unsafe { libc::pthread_setspecific(key, (i + 1) as *const libc::c_void) };
    assert_eq!(set, 0, "pthread_setspecific");
    HOLDER.with(|h| assert!(!h.block.is_null()));
    gate.wait();
    gate.wait();
    for k in 0..3 {
        let p = raw_alloc(1 + (i + k) % 300);
        raw_free(p, 1 + (i + k) % 300);
    }
}

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "thread_churn");
    let start = Instant::now();
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; `key_destructor` has the C ABI.
    let made = unsafe { libc::pthread_key_create(&mut key, Some(key_destructor)) };
    assert_eq!(made, 0, "pthread_key_create");
    LAST_KEY.store(key as usize, Relaxed);

    // A snapshot loop on its own thread for the whole churn.
    let stop = untracked(|| Arc::new(AtomicBool::new(false)));
    let taken = untracked(|| Arc::new(AtomicU64::new(0)));
    let slowest_ns = untracked(|| Arc::new(AtomicU64::new(0)));
    let snapper = untracked(|| {
        let (stop, taken, slowest) = (stop.clone(), taken.clone(), slowest_ns.clone());
        std::thread::spawn(move || {
            alloc_core::untracked(|| {
                while !stop.load(Relaxed) {
                    let t = Instant::now();
                    let s = snapshot();
                    slowest.fetch_max(t.elapsed().as_nanos() as u64, Relaxed);
                    std::hint::black_box(&s);
                    taken.fetch_add(1, Relaxed);
                    // Back to back, snapshots (which hold the tool's shared
                    // lock while they read every slot) slow the exiting
                    // threads several times over on 2 cores; a pause keeps
                    // the run short and still snapshots thousands of times.
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        })
    });
    let mut handles = untracked(|| Vec::with_capacity(BIG_BATCH));
    let before = snapshot();
    let mut after_first_batch = None;
    let mut before_big_batch = None;
    let mut dtor_epochs = untracked(|| Vec::with_capacity(BATCHES + 1));
    let mut most_threads = 0;
    for batch in 0..=BATCHES {
        let (first, count) = if batch < BATCHES {
            (batch * PER_BATCH, PER_BATCH)
        } else {
            before_big_batch = Some(snapshot());
            (BATCHES * PER_BATCH, BIG_BATCH)
        };
        let gate = untracked(|| Arc::new(Barrier::new(count + 1)));
        let leaks_before = LEAKS.load(Relaxed);
        advance_epoch(); // threads start (and std's map grows) here
        untracked(|| {
            for i in first..first + count {
                let gate = gate.clone();
                handles.push(std::thread::spawn(move || churn(i, &gate)));
            }
        });
        gate.wait(); // all started, each has allocated (and holds a slot if one was free)
        let parked: Snapshot = snapshot();
        most_threads = most_threads.max(parked.tool.threads);
        assert!(
            parked.tool.threads as usize <= MAX_THREAD_SLOTS,
            "batch {batch}: {} threads own a slot, there are {MAX_THREAD_SLOTS}",
            parked.tool.threads
        );
        let d = advance_epoch(); // the threads finish and their destructors run here
        gate.wait();
        untracked(|| {
            for h in handles.drain(..) {
                h.join().unwrap();
            }
        });
        let s = snapshot();
        let leaked = &LEAK_SIZES[leaks_before..LEAKS.load(Relaxed)];
        let want_bytes: usize = (first..first + count)
            .map(|i| leaks_of(i).bytes as usize)
            .sum();
        let got_bytes: usize = leaked.iter().map(|s| s.load(Relaxed)).sum();
        assert_eq!(
            got_bytes, want_bytes,
            "batch {batch}: leaked bytes recorded"
        );
        assert_eq!(
            exact(&s, d),
            Counts::new(want_bytes as i64, leaked.len() as i64),
            "batch {batch} ({count} threads): destructor epoch {d} should hold exactly the leaks"
        );
        dtor_epochs.push(d);
        if batch == 0 {
            after_first_batch = Some(s);
        }
        untracked(move || drop(gate));
    }
    stop.store(true, Relaxed);
    untracked(|| snapper.join().unwrap());
    let after = snapshot();
    let churn_time = start.elapsed();

    assert_eq!(
        HOLDER_DROPS.load(Relaxed),
        THREADS,
        "Holder destructors run"
    );
    let late_runs = LATE_DROPS.load(Relaxed);
    assert_eq!(
        late_runs, THREADS,
        "Late (initialised during teardown) destructors run"
    );
    assert_eq!(
        KEY_DROPS.load(Relaxed),
        THREADS,
        "pthread key destructors run"
    );
    let want_bytes: usize = (0..THREADS).map(|i| leaks_of(i).bytes as usize).sum();
    let want_blocks: usize = (0..THREADS).map(|i| leaks_of(i).blocks as usize).sum();
    let leaks = LEAKS.load(Relaxed);
    assert_eq!(leaks, want_blocks, "leaked blocks recorded");
    let recorded: usize = LEAK_SIZES[..leaks].iter().map(|s| s.load(Relaxed)).sum();
    assert_eq!(recorded, want_bytes, "leaked bytes recorded");
    let mut in_dtor_epochs = Counts::default();
    for &d in &dtor_epochs {
        in_dtor_epochs.add(exact(&after, d));
    }
    assert_eq!(
        in_dtor_epochs,
        Counts::new(want_bytes as i64, want_blocks as i64),
        "destructor epochs after all {THREADS} threads"
    );
    // std's own start-up allocations come on top of the threads' own.
    let (allocs, frees, reallocs) = ops_delta(&before, &after);
    let (mine_a, mine_f) = (ALLOCS.load(Relaxed) as i64, FREES.load(Relaxed) as i64);
    assert!(
        allocs >= mine_a && frees >= mine_f && reallocs == 0,
        "operation counters moved by ({allocs}, {frees}, {reallocs}), \
         the threads did ({mine_a}, {mine_f}, 0) themselves"
    );

    // Slots of exited threads are reused: neither the thread count nor the
    // metadata grows with the number of threads that ever lived (until the
    // big batch, which has as many alive at once as there are slots).
    let first = after_first_batch.unwrap();
    let regular = before_big_batch.unwrap();
    assert!(
        after.tool.threads <= before.tool.threads + 2,
        "tool.threads {} before, {} after the churn",
        before.tool.threads,
        after.tool.threads
    );
    let (m1, mn) = (first.tool.metadata_bytes, regular.tool.metadata_bytes);
    assert!(
        mn <= 2 * m1 + (1 << 20),
        "tool metadata {m1} B after one batch, {mn} B after {BATCHES} batches"
    );
    let m_big = after.tool.metadata_bytes;

    // Free the leaks: the destructor epochs empty.
    for (p, s) in LEAK_PTRS[..leaks].iter().zip(&LEAK_SIZES[..leaks]) {
        raw_free(p.load(Relaxed) as *mut u8, s.load(Relaxed));
    }
    let end = snapshot();
    for &d in &dtor_epochs {
        assert_eq!(
            exact(&end, d),
            Counts::default(),
            "epoch {d} after freeing the leaks"
        );
    }
    untracked(move || drop((handles, dtor_epochs)));
    say!(
        "thread_churn: {THREADS} threads ({BATCHES} batches of {PER_BATCH}, then {BIG_BATCH} at \
         once) in {churn_time:?}; destructors ran {THREADS} + {late_runs} + {THREADS} (pthread key) times and leaked exactly \
         {want_bytes} B in {want_blocks} blocks, epoch by epoch; {allocs} allocs, {frees} frees \
         ({} + {} by std's thread start-up); {} concurrent snapshots (slowest {:?}); at most {} \
         threads owned a slot; threads {} -> {}; metadata {m1} B after one batch, {mn} B after \
         {BATCHES}, {m_big} B after the big batch",
        allocs - mine_a,
        frees - mine_f,
        taken.load(Relaxed),
        Duration::from_nanos(slowest_ns.load(Relaxed)),
        most_threads,
        before.tool.threads,
        after.tool.threads
    );
}
