//! Leak assertions across tasks: `track_future` follows a future to every
//! worker thread of a multi-threaded tokio runtime that polls it, records
//! what it allocates there, and nothing that other tasks allocate.
//!
//! The future under test hops threads on purpose: at each step it hands its
//! waker to a plain thread that wakes it from outside the runtime, so the
//! task goes to the shared queue and whichever worker is free picks it up
//! (without allocating: `spawn_blocking` would, whenever its pool grows). Each
//! test checks that the future really was polled on more than one worker.

use alloc_core::{track_future, EpochAlloc};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

#[global_allocator]
static GLOBAL: EpochAlloc<alloc_core::Jemalloc> = EpochAlloc::new(alloc_core::Jemalloc);

/// Where the leaky variant keeps what it should have dropped (the seed's
/// module-level connection list).
static KEPT: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

const STEPS: usize = 400;
/// Steps a future may take beyond [`STEPS`] while it has been polled on one
/// worker only: on a busy machine one worker can pick up every wake-up for a
/// while, and the tests need the future to have hopped.
const MAX_STEPS: usize = 50 * STEPS;
const LEAK_SIZE: usize = 1000;
/// What a concurrent, untracked task keeps: never the tracked future's.
const OTHER_SIZE: usize = 777;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// What [`serve`] did.
#[derive(Debug, Default)]
struct Served {
    /// Workers it was polled on.
    threads: usize,
    /// Buffers it kept, and on how many distinct workers it allocated them.
    kept: usize,
    kept_threads: usize,
    /// The line that allocates the buffer.
    buffer_line: u32,
}

/// A plain thread that wakes the wakers handed to it; `None` in the slot
/// after `Some(None)` stops it.
#[derive(Default)]
struct Hopper {
    slot: Mutex<Option<Option<Waker>>>,
    ready: Condvar,
}

impl Hopper {
    fn start() -> Arc<Hopper> {
        let w = Arc::new(Hopper::default());
        let w2 = Arc::clone(&w);
        std::thread::spawn(move || loop {
            let mut slot = w2.slot.lock().unwrap();
            while slot.is_none() {
                slot = w2.ready.wait(slot).unwrap();
            }
            match slot.take() {
                Some(Some(waker)) => waker.wake(),
                _ => return,
            }
        });
        w
    }

    fn stop(&self) {
        *self.slot.lock().unwrap() = Some(None);
        self.ready.notify_one();
    }
}

/// Pending once, with the waker handed to the [`Hopper`] thread.
struct Hop<'a> {
    by: &'a Hopper,
    sent: bool,
}

impl Future for Hop<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sent {
            return Poll::Ready(());
        }
        self.sent = true;
        *self.by.slot.lock().unwrap() = Some(Some(cx.waker().clone()));
        self.by.ready.notify_one();
        Poll::Pending
    }
}

/// One simulated connection per step ([`STEPS`] of them, more up to
/// [`MAX_STEPS`] until a second worker has polled it): a buffer and a
/// reply, dropped before the next step, except that `leak_every` (if set) keeps one buffer in
/// [`KEPT`] every so many steps and at the first step on each worker. Its
/// output holds no heap memory.
async fn serve(leak_every: Option<usize>, hop: Arc<Hopper>) -> Served {
    let mut threads = HashSet::new();
    let mut kept_threads = HashSet::new();
    let mut served = Served::default();
    let mut step = 0;
    while step < STEPS || (threads.len() < 2 && step < MAX_STEPS) {
        let me = std::thread::current().id();
        let new_worker = threads.insert(me);
        let (buffer, line) = (vec![step as u8; LEAK_SIZE].into_boxed_slice(), line!());
        served.buffer_line = line;
        let reply = format!("reply {step} of {} bytes", buffer.len());
        std::hint::black_box(&reply);
        if leak_every.is_some_and(|n| step % n == 0 || new_worker) {
            KEPT.lock().unwrap().push(buffer); // the leak
            kept_threads.insert(me);
            served.kept += 1;
        } else {
            drop(buffer);
        }
        // Hop: woken from outside, any free worker polls it next.
        Hop {
            by: &hop,
            sent: false,
        }
        .await;
        step += 1;
    }
    served.threads = threads.len();
    served.kept_threads = kept_threads.len();
    served
}

/// Another task on the same workers that keeps a block per step: its
/// blocks are not the tracked future's.
async fn other_task() {
    for _ in 0..STEPS {
        KEPT.lock()
            .unwrap()
            .push(vec![0u8; OTHER_SIZE].into_boxed_slice());
        tokio::task::yield_now().await;
    }
}

/// Runs `serve` as a spawned task (so workers poll it, not the test
/// thread), once untracked to warm the runtime up (the blocking thread,
/// worker-local buffers), then tracked, beside [`other_task`].
fn run(leak_every: Option<usize>) -> (Served, alloc_core::Survivors) {
    let rt = runtime();
    let hop = Hopper::start();
    let out = rt.block_on(async {
        tokio::spawn(serve(None, Arc::clone(&hop))).await.unwrap();
        // Room for every block either task may keep, so that `KEPT` never
        // grows inside the tracked future.
        KEPT.lock().unwrap().reserve(MAX_STEPS + STEPS);
        let other = tokio::spawn(other_task());
        let tracked = tokio::spawn(track_future(serve(leak_every, Arc::clone(&hop))));
        other.await.unwrap();
        tracked.await.unwrap()
    });
    hop.stop();
    out
}

fn sizes(survivors: &alloc_core::Survivors, size: usize) -> usize {
    survivors.blocks.iter().filter(|b| b.size == size).count()
}

#[test]
fn a_clean_future_on_many_workers_leaves_no_survivors() {
    let (served, survivors) = run(None);
    assert!(
        served.threads >= 2,
        "the future was polled on {} worker(s); it must hop to check anything",
        served.threads
    );
    assert!(survivors.is_empty(), "{survivors}");
}

#[test]
fn a_leak_on_any_worker_is_found_with_its_line() {
    let (served, survivors) = run(Some(10));
    assert!(served.kept >= STEPS / 10);
    assert!(
        served.kept_threads >= 2,
        "the kept buffers were allocated on {} worker(s); the test needs several",
        served.kept_threads
    );
    assert_eq!(sizes(&survivors, LEAK_SIZE), served.kept, "{survivors}");
    assert_eq!(sizes(&survivors, OTHER_SIZE), 0, "{survivors}");
    assert_eq!(survivors.blocks.len(), served.kept, "{survivors}");
    let site = format!("alloc-core/tests/track_future.rs:{} ", served.buffer_line);
    for b in &survivors.blocks {
        let label = b.stack.label();
        assert!(
            label.starts_with(&site) && label.contains("serve"),
            "{label}"
        );
    }
}
