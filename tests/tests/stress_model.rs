//! Exactness under concurrency: 8 threads do random `alloc`, `alloc_zeroed`,
//! `realloc` and `dealloc` calls directly on the global `EpochAlloc<Jemalloc>`
//! (sizes 1 B to 1 MiB skewed toward small, alignments up to 4096), hand a
//! good share of their frees to other threads through shared inboxes, and
//! keep a model of live bytes and blocks per birth epoch (a realloc moves
//! its block to the current epoch: old size out of the birth epoch, new
//! size in).
//!
//! Epochs advance only between phases, at a barrier, by a rotating leader
//! (every thread advances some time; every 8th phase jumps 150 epochs, so
//! blocks outlive the exact window and fold into coarse ranges while live;
//! about 3% of blocks go to a long-lived set, resized and freed now and then
//! after they have folded).
//! Within a phase the epoch is fixed, so each block's birth epoch is known.
//! At checkpoints (all threads parked at the barrier) the snapshot must equal
//! the model for every epoch of the test, exactly, and be zero once
//! everything is freed. Block contents are checked on every realloc and free.
//!
//! The last phases are "chaos" phases: one thread advances the epoch every
//! 64 operations while all allocate and another takes snapshots, so birth
//! epochs race with advances and the seqlock'd folds race with readers.
//! Blocks born then have no known birth epoch: the model counts them apart,
//! and the checks compare the sum over all epochs (exact) and, after every
//! block is freed, that every epoch is empty again (an allocation and its
//! free must meet in the same epoch or bucket, whichever thread does each).
//!
//! The workers never allocate outside the model: their bookkeeping is
//! allocated up front (inside `untracked`) and never grows.

use alloc_core::{advance_epoch, epoch, snapshot, untracked, EpochAlloc, Jemalloc};
use alloc_tests::{
    check_model, check_shape, exit_on_panic, find_nonzero, say, scaled, watchdog, Counts, Model,
    Rng,
};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const THREADS: usize = 8;
/// Live blocks a thread keeps at most.
const LIVE_CAP: usize = 600;
/// Long-lived blocks a thread keeps at most.
const KEEP_CAP: usize = 256;
/// Blocks an inbox holds at most (a full inbox makes the sender free).
const INBOX_CAP: usize = 8192;
/// Every `JUMP_EVERY`th phase advances `JUMP` epochs instead of one.
const JUMP_EVERY: usize = 8;
const JUMP: u32 = 150;
/// The first phase starts at epoch 1000, where coarse ranges are 64 epochs
/// wide, so that folded epochs of the test show up as ranges.
const FIRST_EPOCH: u32 = 1000;
/// The snapshot is compared with the model every `CHECK_EVERY` phases.
const CHECK_EVERY: usize = 4;

/// The `epoch` of a block born in a chaos phase (birth epoch unknown).
const UNKNOWN: u32 = u32::MAX;

/// One live block.
#[derive(Clone, Copy, Debug)]
struct Block {
    p: usize,
    size: usize,
    align: usize,
    epoch: u32,
    id: u64,
}

impl Block {
    fn layout(&self) -> Layout {
        Layout::from_size_align(self.size, self.align).unwrap()
    }

    /// Writes the block's marks: its id in the first (up to) 8 bytes and a
    /// check byte at the end.
    fn mark(&self) {
        let head = self.id.to_le_bytes();
        let n = self.size.min(8);
        // SAFETY: the block holds `size` writable bytes and n <= size.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), self.p as *mut u8, n) };
        if self.size > 8 {
            // SAFETY: size - 1 is inside the block.
            unsafe {
                (self.p as *mut u8)
                    .add(self.size - 1)
                    .write(self.id as u8 ^ 0xA5)
            };
        }
    }

    /// Checks the marks of a block whose first `kept` bytes are still its
    /// own: the first `min(8, kept)` bytes always, the end byte when `kept`
    /// covers the whole block. Panics on a mismatch.
    fn check(&self, kept: usize, what: &str) {
        let head = self.id.to_le_bytes();
        let n = kept.min(self.size).min(8);
        // SAFETY: the block holds at least `n` initialised bytes.
        let got = unsafe { std::slice::from_raw_parts(self.p as *const u8, n) };
        assert_eq!(got, &head[..n], "{what}: head of {self:?} corrupted");
        if kept >= self.size && self.size > 8 {
            // SAFETY: size - 1 is inside the block and was written by mark.
            let last = unsafe { (self.p as *const u8).add(self.size - 1).read() };
            assert_eq!(
                last,
                self.id as u8 ^ 0xA5,
                "{what}: end of {self:?} corrupted"
            );
        }
    }
}

struct Shared {
    barrier: Barrier,
    inboxes: Vec<Mutex<Vec<Block>>>,
    models: Vec<Mutex<Model>>,
    /// The epoch of the current phase, set by the leader.
    phase_epoch: AtomicU32,
    first_epoch: AtomicU32,
    phases: usize,
    /// Phases `phases - chaos_phases..phases` are chaos phases.
    chaos_phases: usize,
    /// Live bytes and blocks of blocks born in chaos phases.
    chaos_bytes: AtomicI64,
    chaos_blocks: AtomicI64,
    /// Snapshots taken during chaos phases, epochs advanced then.
    chaos_snapshots: AtomicU64,
    chaos_advances: AtomicU64,
    ops_per_phase: usize,
    ops: [AtomicU64; 6],
    checks: AtomicU64,
    /// Most range (folded) entries seen at a checkpoint.
    max_ranges: AtomicU64,
}

const OP_NAMES: [&str; 6] = [
    "alloc",
    "alloc_zeroed",
    "realloc",
    "local free",
    "remote free",
    "handed over",
];
const ALLOC: usize = 0;
const ZEROED: usize = 1;
const REALLOC: usize = 2;
const LOCAL_FREE: usize = 3;
const REMOTE_FREE: usize = 4;
const HANDED: usize = 5;

/// Per-thread state, all allocated up front.
struct Worker<'a> {
    id: usize,
    sh: &'a Shared,
    rng: Rng,
    live: Vec<Block>,
    /// Long-lived blocks (they outlive many epochs and fold).
    keep: Vec<Block>,
    spare: Vec<Block>,
    counts: [u64; 6],
    next_id: u64,
}

impl Worker<'_> {
    fn alloc(&mut self, model: &mut Model, epoch: u32, zeroed: bool) {
        let size = self.rng.skewed_size();
        let align = self.rng.skewed_align();
        let layout = Layout::from_size_align(size, align).unwrap();
        let p = if zeroed {
            // SAFETY: non-zero size.
            unsafe { GLOBAL.alloc_zeroed(layout) }
        } else {
            // SAFETY: non-zero size.
            unsafe { GLOBAL.alloc(layout) }
        };
        assert!(!p.is_null(), "alloc({layout:?}) failed");
        assert_eq!(p as usize % align, 0, "alloc({layout:?}) misaligned");
        if zeroed {
            let (head, tail) = (size.min(4096), size.saturating_sub(4096).min(4096));
            // SAFETY: the block holds `size` zeroed bytes; head <= size.
            let nz_head = unsafe { find_nonzero(p, head) };
            // SAFETY: as above; the last `tail` bytes are inside the block.
            let nz_tail = unsafe { find_nonzero(p.add(size - tail), tail) };
            assert_eq!(
                (nz_head, nz_tail),
                (None, None),
                "alloc_zeroed({layout:?}) not zeroed"
            );
        }
        self.next_id += 1;
        let b = Block {
            p: p as usize,
            size,
            align,
            epoch,
            id: (self.id as u64) << 48 | self.next_id,
        };
        b.mark();
        self.count(model, epoch, size as i64, 1);
        if self.keep.len() < KEEP_CAP && self.rng.percent(3) {
            self.keep.push(b);
        } else {
            self.live.push(b);
        }
        self.counts[if zeroed { ZEROED } else { ALLOC }] += 1;
    }

    /// Counts a change of a block born in `epoch` in the model, or in the
    /// chaos counts when the birth epoch is unknown.
    fn count(&self, model: &mut Model, epoch: u32, bytes: i64, blocks: i64) {
        if epoch == UNKNOWN {
            self.sh.chaos_bytes.fetch_add(bytes, Relaxed);
            self.sh.chaos_blocks.fetch_add(blocks, Relaxed);
        } else {
            model.add(epoch, Counts::new(bytes, blocks));
        }
    }

    fn set(&mut self, long_lived: bool) -> &mut Vec<Block> {
        if long_lived {
            &mut self.keep
        } else {
            &mut self.live
        }
    }

    /// Resizes a random block in the phase's `epoch` (`UNKNOWN` in a chaos
    /// phase): it moves to that epoch, old size out of its birth epoch and
    /// new size in, unless it was born in it.
    fn realloc(&mut self, model: &mut Model, epoch: u32, long_lived: bool) {
        let n = self.set(long_lived).len() as u64;
        let i = self.rng.below(n) as usize;
        let b = self.set(long_lived)[i];
        b.check(b.size, "before realloc");
        let new = if self.rng.percent(10) {
            b.size
        } else {
            self.rng.skewed_size()
        };
        // SAFETY: `b` is live with its layout; `new` is non-zero and small.
        let q = unsafe { GLOBAL.realloc(b.p as *mut u8, b.layout(), new) };
        assert!(!q.is_null(), "realloc({:?} -> {new}) failed", b.layout());
        assert_eq!(q as usize % b.align, 0, "realloc misaligned");
        // The old contents, now at `q`: all of them when growing, the head
        // when shrinking.
        let moved = Block { p: q as usize, ..b };
        moved.check(new, "after realloc");
        let nb = Block {
            p: q as usize,
            size: new,
            epoch,
            ..b
        };
        nb.mark();
        if b.epoch == epoch {
            self.count(model, epoch, new as i64 - b.size as i64, 0);
        } else {
            self.count(model, b.epoch, -(b.size as i64), -1);
            self.count(model, epoch, new as i64, 1);
        }
        self.set(long_lived)[i] = nb;
        self.counts[REALLOC] += 1;
    }

    fn free(&mut self, b: Block, model: &mut Model, remote: bool) {
        b.check(b.size, "before free");
        // SAFETY: `b` is live with its layout and freed once.
        unsafe { GLOBAL.dealloc(b.p as *mut u8, b.layout()) };
        self.count(model, b.epoch, -(b.size as i64), -1);
        self.counts[if remote { REMOTE_FREE } else { LOCAL_FREE }] += 1;
    }

    /// Frees a random live block here, or hands it to another thread.
    fn free_or_hand_over(&mut self, model: &mut Model, hand_over: bool, long_lived: bool) {
        let n = self.set(long_lived).len() as u64;
        let i = self.rng.below(n) as usize;
        let b = self.set(long_lived).swap_remove(i);
        if hand_over {
            let to = (self.id + 1 + self.rng.below(THREADS as u64 - 1) as usize) % THREADS;
            let mut inbox = self.sh.inboxes[to].lock().unwrap();
            if inbox.len() < inbox.capacity() {
                inbox.push(b);
                self.counts[HANDED] += 1;
                return;
            }
        }
        self.free(b, model, false);
    }

    /// Frees every block other threads handed to this one.
    fn drain_inbox(&mut self, model: &mut Model) {
        std::mem::swap(
            &mut *self.sh.inboxes[self.id].lock().unwrap(),
            &mut self.spare,
        );
        while let Some(b) = self.spare.pop() {
            self.free(b, model, true);
        }
    }

    /// One phase of random operations. `epoch` is the phase's epoch, or
    /// `UNKNOWN` in a chaos phase, where `advancer` advances the epoch every
    /// 64 operations and `snapper` takes a snapshot every 256.
    fn phase(&mut self, epoch: u32, advancer: bool, snapper: bool) {
        let sh = self.sh;
        let mut model = sh.models[self.id].lock().unwrap();
        for n in 0..sh.ops_per_phase {
            if n % 16 == 0 {
                self.drain_inbox(&mut model);
            }
            if advancer && n % 64 == 0 {
                advance_epoch();
                sh.chaos_advances.fetch_add(1, Relaxed);
            }
            if snapper && n % 256 == 0 {
                std::hint::black_box(snapshot());
                sh.chaos_snapshots.fetch_add(1, Relaxed);
            }
            let r = self.rng.below(100);
            let full = self.live.len() >= LIVE_CAP;
            if r == 99 && !self.keep.is_empty() {
                // A long-lived block, probably born in a folded epoch.
                if self.rng.percent(50) {
                    self.realloc(&mut model, epoch, true);
                } else {
                    let hand_over = self.rng.percent(45);
                    self.free_or_hand_over(&mut model, hand_over, true);
                }
            } else if self.live.is_empty() || (!full && r < 45) {
                let zeroed = self.rng.percent(20);
                self.alloc(&mut model, epoch, zeroed);
            } else if r < 60 {
                self.realloc(&mut model, epoch, false);
            } else {
                let hand_over = self.rng.percent(45);
                self.free_or_hand_over(&mut model, hand_over, false);
            }
        }
    }
}

/// Sums the threads' models and compares them with a snapshot. Called by
/// the leader while every other thread waits at the barrier.
fn checkpoint(sh: &Shared, total: &mut Model, what: &str, phase: usize) {
    total.clear();
    for m in &sh.models {
        total.merge(&m.lock().unwrap());
    }
    let s = snapshot();
    let chaos = Counts::new(sh.chaos_bytes.load(Relaxed), sh.chaos_blocks.load(Relaxed));
    if chaos != Counts::default() {
        // Blocks of unknown birth epoch are live: compare the sum over
        // every epoch from 1 on (exact), not epoch by epoch.
        let mut got = Counts::default();
        for e in s.epochs.iter().filter(|e| e.first >= 1) {
            got.add(Counts::from(e));
        }
        let mut want = total.sum(0..=total.capacity() as u32 - 1);
        want.add(chaos);
        assert_eq!(
            got, want,
            "{what} (phase {phase}, epoch {}): live since epoch 1 differs from the model \
             ({chaos:?} of it born in chaos phases)",
            s.epoch
        );
        if let Err(e) = check_shape(&s) {
            panic!("{what} (phase {phase}): bad snapshot shape: {e}");
        }
        sh.checks.fetch_add(1, Relaxed);
        return;
    }
    // Everything from epoch 1 on is the workers' (they start, and std's
    // thread start-up allocates, in epoch 0; epochs 1..FIRST_EPOCH stay
    // empty), so ranges reaching below FIRST_EPOCH compare exactly too.
    let from = 1;
    if let Err(e) = check_shape(&s) {
        panic!("{what} (phase {phase}): bad snapshot shape: {e}");
    }
    if let Err(e) = check_model(&s, total, from) {
        panic!(
            "{what} (phase {phase}, epoch {}): snapshot differs from the model:\n{e}",
            s.epoch
        );
    }
    sh.checks.fetch_add(1, Relaxed);
    let ranges = s.epochs.iter().filter(|e| e.first != e.last).count();
    sh.max_ranges.fetch_max(ranges as u64, Relaxed);
}

fn run(id: usize, sh: &Shared) {
    let mut w = untracked(|| Worker {
        id,
        sh,
        rng: Rng::new(0x5EED_0000 + id as u64),
        live: Vec::with_capacity(LIVE_CAP + 1),
        keep: Vec::with_capacity(KEEP_CAP),
        spare: Vec::with_capacity(INBOX_CAP),
        counts: [0; 6],
        next_id: 0,
    });
    let mut total = untracked(|| Model::with_epochs(sh.models[0].lock().unwrap().capacity()));
    let first_chaos = sh.phases - sh.chaos_phases;
    for phase in 0..sh.phases {
        let leader = phase % THREADS == id;
        let chaos = phase >= first_chaos;
        sh.barrier.wait(); // everyone is done with the previous phase
        if leader {
            if phase > 0 && phase % CHECK_EVERY == 0 {
                checkpoint(sh, &mut total, "checkpoint", phase);
            }
            let n = if phase == 0 {
                FIRST_EPOCH - epoch()
            } else if phase % JUMP_EVERY == JUMP_EVERY - 1 {
                JUMP
            } else {
                1
            };
            let mut e = 0;
            for _ in 0..n {
                e = advance_epoch();
            }
            if phase == 0 {
                sh.first_epoch.store(e, Relaxed);
            }
            sh.phase_epoch.store(e, Relaxed);
        }
        sh.barrier.wait(); // the phase's epoch is set
        if chaos {
            let advancer = leader;
            let snapper = (phase + 1) % THREADS == id;
            w.phase(UNKNOWN, advancer, snapper);
        } else {
            let e = sh.phase_epoch.load(Relaxed);
            assert_eq!(epoch(), e, "epoch changed outside the barrier");
            w.phase(e, false, false);
        }
    }

    // The end: compare with live blocks, free everything, compare again.
    sh.barrier.wait();
    if id == 0 {
        checkpoint(sh, &mut total, "after the last phase", sh.phases);
    }
    sh.barrier.wait();
    {
        let mut model = sh.models[id].lock().unwrap();
        while let Some(b) = w.live.pop().or_else(|| w.keep.pop()) {
            w.free(b, &mut model, false);
        }
    }
    sh.barrier.wait(); // nothing is handed over any more
    {
        let mut model = sh.models[id].lock().unwrap();
        w.drain_inbox(&mut model);
    }
    sh.barrier.wait();
    if id == 0 {
        checkpoint(sh, &mut total, "after freeing everything", sh.phases);
        let all_zero = (0..total.capacity() as u32).all(|e| total.get(e).blocks == 0);
        assert!(all_zero, "model not empty after freeing everything");
        let s = snapshot();
        let from = sh.first_epoch.load(Relaxed);
        assert!(
            s.epochs.iter().all(|e| e.last < from),
            "entries left from epoch {from} on after freeing everything"
        );
    }
    for (a, c) in sh.ops.iter().zip(w.counts) {
        a.fetch_add(c, Relaxed);
    }
    untracked(move || drop((w.live, w.keep, w.spare, total)));
}

/// Sampling modes the model runs under, each in a process of its own (the
/// mode comes from `ALLOC_CORE_SAMPLE`, read at the first allocation;
/// `default` runs without it: the default policy, which switches
/// every-allocation capture on and off at snapshots while the threads
/// allocate), with the factor its phase count is divided by
/// (every-allocation sampling captures a stack per allocation).
const MODES: [(&str, alloc_core::SampleMode, usize); 4] = [
    ("off", alloc_core::SampleMode::Off, 1),
    ("64KiB", alloc_core::SampleMode::Interval(64 << 10), 1),
    ("all", alloc_core::SampleMode::All, 8),
    (
        "default",
        alloc_core::SampleMode::Interval(alloc_core::DEFAULT_INTERVAL),
        4,
    ),
];

/// Runs this binary once per sampling mode and checks each run passed.
fn run_every_mode() {
    for (env, _, divisor) in MODES {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        match env {
            "default" => child.env_remove("ALLOC_CORE_SAMPLE"),
            _ => child.env("ALLOC_CORE_SAMPLE", env),
        };
        let status = child
            .env("STRESS_MODEL_DIVISOR", divisor.to_string())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "stress_model with ALLOC_CORE_SAMPLE={env}: {status}"
        );
    }
}

fn main() {
    exit_on_panic();
    let Some(divisor) = std::env::var("STRESS_MODEL_DIVISOR")
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
    else {
        return run_every_mode();
    };
    let env = std::env::var("ALLOC_CORE_SAMPLE").unwrap_or_else(|_| "default".into());
    let mode = MODES.iter().find(|m| m.0 == env).map(|m| m.1);
    assert_eq!(
        Some(alloc_core::sampling()),
        mode,
        "mode from the environment"
    );
    watchdog(Duration::from_secs(600), "stress_model");
    let chaos_phases = scaled(16, 2 * divisor);
    let phases = scaled(64, 2 * divisor) + chaos_phases;
    let ops_per_phase = 8000;
    let max_epoch = FIRST_EPOCH as usize + phases * JUMP as usize + 2;
    let max_epoch = max_epoch + chaos_phases * (ops_per_phase / 64 + 1);
    let sh = untracked(|| Shared {
        barrier: Barrier::new(THREADS),
        inboxes: (0..THREADS)
            .map(|_| Mutex::new(Vec::with_capacity(INBOX_CAP)))
            .collect(),
        models: (0..THREADS)
            .map(|_| Mutex::new(Model::with_epochs(max_epoch)))
            .collect(),
        phase_epoch: AtomicU32::new(0),
        first_epoch: AtomicU32::new(0),
        phases,
        chaos_phases,
        chaos_bytes: AtomicI64::new(0),
        chaos_blocks: AtomicI64::new(0),
        chaos_snapshots: AtomicU64::new(0),
        chaos_advances: AtomicU64::new(0),
        ops_per_phase,
        ops: Default::default(),
        checks: AtomicU64::new(0),
        max_ranges: AtomicU64::new(0),
    });
    let start = Instant::now();
    untracked(|| {
        std::thread::scope(|s| {
            for id in 0..THREADS {
                let sh = &sh;
                s.spawn(move || run(id, sh));
            }
        })
    });
    let took = start.elapsed();
    let ops: Vec<u64> = untracked(|| sh.ops.iter().map(|a| a.load(Relaxed)).collect());
    let frees = ops[LOCAL_FREE] + ops[REMOTE_FREE];
    let remote_share = ops[REMOTE_FREE] as f64 / frees as f64;
    assert!(
        remote_share >= 0.25,
        "only {:.1}% of frees were on another thread",
        remote_share * 100.0
    );
    assert_eq!(
        ops[HANDED], ops[REMOTE_FREE],
        "handed-over blocks all freed"
    );
    let total_ops: u64 = ops[..5].iter().sum();
    let summary = untracked(|| {
        OP_NAMES
            .iter()
            .zip(&ops)
            .map(|(n, c)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let sampled = alloc_core::snapshot().sampling.sampled;
    say!(
        "stress_model (sampling {env}: {sampled} samples): {THREADS} threads, {phases} phases ({chaos_phases} with {} concurrent \
         advances and {} concurrent snapshots), epochs {}..={}: {total_ops} ops ({summary}; \
         {:.1}% of frees on another thread) in {took:?}; {} checkpoints exact (up to {} folded \
         ranges), all epochs empty at the end",
        sh.chaos_advances.load(Relaxed),
        sh.chaos_snapshots.load(Relaxed),
        sh.first_epoch.load(Relaxed),
        epoch(),
        remote_share * 100.0,
        sh.checks.load(Relaxed),
        sh.max_ranges.load(Relaxed)
    );
}
