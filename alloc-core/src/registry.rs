//! Who counts where: thread slots, the shared slot, and the tool's scope.
//!
//! Each thread's `CURRENT` pointer names the [`Slot`] it counts into:
//!
//! ```text
//!   UNREGISTERED ──first alloc──► own slot ──pthread key destructor──► BUSY
//!        │                          │  ▲                                (counts go to SHARED,
//!        └──no free slot──► BUSY    ▼  │ ToolScope drop                 under its lock)
//!                                  TOOL
//! ```
//!
//! `UNREGISTERED`, `BUSY` and `TOOL` are *special slots*: their ring never
//! matches a tag, so the fast path never touches them and the slow path
//! (`alloc.rs`'s slow paths) recognises them by address. This keeps
//! the fast path free of any state check beyond the ring comparison it makes
//! anyway.
//!
//! A thread's own slot comes from a fixed pool of [`MAX_THREAD_SLOTS`] slots
//! in `.bss`; it is returned when the thread exits (a pthread key
//! destructor drains its counts into `SHARED`), so thread churn does not grow
//! metadata. Threads beyond the pool, and allocations made during thread
//! teardown, count into `SHARED` under a spin lock.

use crate::slot::{Slot, SlotCopy};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU8, AtomicUsize, Ordering::*};
// spin's mutex is a bare atomic flag: it never allocates, so holding it on
// the allocation path cannot recurse.
use spin::mutex::SpinMutex;

/// Threads that can own a counter slot at once.
#[cfg(not(miri))]
pub const MAX_THREAD_SLOTS: usize = 1024;
/// Threads that can own a counter slot at once.
#[cfg(miri)]
pub const MAX_THREAD_SLOTS: usize = 8;

pub(crate) static UNREGISTERED: Slot = Slot::special();
pub(crate) static BUSY: Slot = Slot::special();
pub(crate) static TOOL: Slot = Slot::special();

static SLOTS: [Slot; MAX_THREAD_SLOTS] = [const { Slot::new() }; MAX_THREAD_SLOTS];
static OWNED: [AtomicBool; MAX_THREAD_SLOTS] = [const { AtomicBool::new(false) }; MAX_THREAD_SLOTS];
/// Each slot's owner thread as the retention scan reads it (see
/// [`ThreadRoots`]), written by the owner when it registers.
static THREADS: [ThreadRoots; MAX_THREAD_SLOTS] = [const { ThreadRoots::new() }; MAX_THREAD_SLOTS];
/// One past the highest slot index ever claimed: snapshots read `0..HIGH`.
static HIGH: AtomicUsize = AtomicUsize::new(0);
static OWNED_NOW: AtomicUsize = AtomicUsize::new(0);

/// Counts of threads without a slot, and of exited threads. Guarded by
/// `SHARED_LOCK`, which is also held while a snapshot sums all slots and
/// across `fork()`.
pub(crate) static SHARED: Slot = Slot::new();
pub(crate) static SHARED_LOCK: SpinMutex<()> = SpinMutex::new(());

/// Live bytes and blocks of the tool's own allocations.
pub(crate) static TOOL_BYTES: AtomicI64 = AtomicI64::new(0);
pub(crate) static TOOL_BLOCKS: AtomicI64 = AtomicI64::new(0);

thread_local! {
    // A `const` initialiser and no destructor: a plain thread-local access,
    // valid until the thread is gone, with no lazy initialisation that could
    // allocate or recurse.
    static CURRENT: Cell<*const Slot> = const { Cell::new(&raw const UNREGISTERED) };
}

/// The slot the current thread counts into.
#[inline(always)]
pub(crate) fn current() -> *const Slot {
    CURRENT.try_with(Cell::get).unwrap_or(&raw const BUSY)
}

fn set_current(slot: *const Slot) {
    let _ = CURRENT.try_with(|c| c.set(slot));
}

/// Takes `SHARED_LOCK` (see [`crate::lock::lock`]).
pub(crate) fn lock_shared() -> crate::lock::Held<()> {
    crate::lock::lock(&SHARED_LOCK)
}

/// Counts into `SHARED` under its lock (threads without a slot of their own).
pub(crate) fn with_shared<R>(f: impl FnOnce(&Slot) -> R) -> R {
    let _guard = lock_shared();
    f(&SHARED)
}

/// Gives the current thread a slot of its own, or `BUSY` if none is free.
/// `prepare` readies a claimed slot for its new owner (the sampler draws
/// its first countdown) before the thread counts into it.
#[cold]
pub(crate) fn register(prepare: fn(&Slot)) -> *const Slot {
    // Anything this thread allocates while registering counts into SHARED.
    set_current(&raw const BUSY);
    if !hooks::install() {
        return &raw const BUSY;
    }
    let Some(i) = claim() else {
        return &raw const BUSY;
    };
    let slot: *const Slot = &SLOTS[i];
    SLOTS[i].scope.reset();
    // A reused slot gets a stream of its own, not its last owner's.
    SLOTS[i].sampler.rng.store(0, Relaxed);
    prepare(&SLOTS[i]);
    THREADS[i].record();
    if !hooks::on_thread_exit(slot) {
        OWNED[i].store(false, Release);
        OWNED_NOW.fetch_sub(1, Relaxed);
        return &raw const BUSY;
    }
    set_current(slot);
    slot
}

fn claim() -> Option<usize> {
    for (i, owned) in OWNED.iter().enumerate() {
        if !owned.load(Relaxed)
            && owned
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok()
        {
            HIGH.fetch_max(i + 1, AcqRel);
            OWNED_NOW.fetch_add(1, Relaxed);
            return Some(i);
        }
    }
    None
}

/// Called once per exiting thread with its slot: later allocations of this
/// thread count into SHARED, the slot's counts move there, the slot is freed.
fn retire(slot: *const Slot) {
    set_current(&raw const BUSY);
    let Some(i) = SLOTS.iter().position(|s| core::ptr::eq(s, slot)) else {
        return;
    };
    {
        let _guard = lock_shared();
        SLOTS[i].drain_into(&SHARED);
    }
    OWNED[i].store(false, Release);
    OWNED_NOW.fetch_sub(1, Relaxed);
}

/// The index + 1 of `slot` in the pool (0 for the special and shared slots):
/// the owner id of leak-scope records.
pub(crate) fn owner_id(slot: *const Slot) -> u32 {
    let base = SLOTS.as_ptr() as usize;
    let off = (slot as usize).wrapping_sub(base);
    if off < MAX_THREAD_SLOTS * size_of::<Slot>() {
        (off / size_of::<Slot>()) as u32 + 1
    } else {
        0
    }
}

/// Makes every owned slot draw a new sampling countdown at its next
/// allocation (after the sampling mode changed). A store into another
/// thread's countdown may be lost to that thread's own update; see
/// [`crate::set_sampling`].
pub(crate) fn reset_countdowns() {
    for_owned_slots(|slot| slot.sampler.countdown.store(crate::slot::REDRAW, Relaxed));
}

/// Makes every owned slot reseed its generator and draw a fresh countdown
/// at its next allocation (after the sampling seed changed). Stores into
/// other threads' slots may be lost to their own updates, as in
/// [`reset_countdowns`].
pub(crate) fn reset_generators() {
    for_owned_slots(|slot| {
        slot.sampler.rng.store(0, Relaxed);
        slot.sampler.countdown.store(crate::slot::REDRAW, Relaxed);
    });
}

fn for_owned_slots(f: impl Fn(&Slot)) {
    let high = HIGH.load(Acquire).min(MAX_THREAD_SLOTS);
    for (slot, owned) in SLOTS[..high].iter().zip(&OWNED) {
        if owned.load(Acquire) {
            f(slot);
        }
    }
}

/// Where a registered thread keeps memory the retention scan reads as roots:
/// its kernel thread id, its thread pointer (its static TLS blocks are at
/// fixed offsets from it) and its stack's bounds. Written once by the
/// owner when it registers (plain atomics, no lock); read by the scan.
pub(crate) struct ThreadRoots {
    tid: AtomicU32,
    tp: AtomicUsize,
    stack_lo: AtomicUsize,
    stack_hi: AtomicUsize,
}

/// One registered thread as the retention scan reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanThread {
    pub(crate) tid: u32,
    pub(crate) tp: usize,
    /// The stack, `[lo, hi)`; (0, 0) if unknown.
    pub(crate) stack: (usize, usize),
}

impl ThreadRoots {
    const fn new() -> Self {
        ThreadRoots {
            tid: AtomicU32::new(0),
            tp: AtomicUsize::new(0),
            stack_lo: AtomicUsize::new(0),
            stack_hi: AtomicUsize::new(0),
        }
    }

    /// Records the calling thread (its slot's new owner). Once per thread,
    /// at its registration: `gettid`, a register read, and the stack bounds
    /// the frame-pointer walk finds once per thread anyway.
    fn record(&self) {
        #[cfg(all(target_os = "linux", not(miri)))]
        self.tid.store(crate::sys::thread_id(), Relaxed);
        self.tp.store(crate::sys::thread_pointer(), Relaxed);
        let (lo, hi) = crate::stacks::this_thread_stack().unwrap_or((0, 0));
        self.stack_lo.store(lo, Relaxed);
        self.stack_hi.store(hi, Release);
    }
}

/// The threads that own a slot now, for the retention scan. A thread may
/// exit meanwhile: its memory is then read through a call that tolerates
/// unmapped memory.
pub(crate) fn scan_threads(out: &mut Vec<ScanThread>) {
    let high = HIGH.load(Acquire).min(MAX_THREAD_SLOTS);
    for (t, owned) in THREADS[..high].iter().zip(&OWNED) {
        if owned.load(Acquire) {
            let hi = t.stack_hi.load(Acquire);
            out.push(ScanThread {
                tid: t.tid.load(Relaxed),
                tp: t.tp.load(Relaxed),
                stack: (t.stack_lo.load(Relaxed), hi),
            });
        }
    }
}

/// Runs `f` with this thread's allocations counted as the tool's.
pub(crate) struct ToolScope {
    prev: *const Slot,
}

impl ToolScope {
    pub(crate) fn enter() -> Self {
        let prev = current();
        set_current(&raw const TOOL);
        ToolScope { prev }
    }
}

impl Drop for ToolScope {
    fn drop(&mut self) {
        set_current(self.prev);
    }
}

/// Sums every slot into `sum` (one slot at a time through `scratch`), with
/// `SHARED_LOCK` held so no exiting thread moves counts meanwhile. Neither
/// buffer is allocated here.
pub(crate) fn read_all(mut each: impl FnMut(&SlotCopy), scratch: &mut SlotCopy) {
    let _guard = lock_shared();
    let high = HIGH.load(Acquire).min(MAX_THREAD_SLOTS);
    for (slot, owned) in SLOTS[..high].iter().zip(&OWNED) {
        // A slot without an owner was zeroed (under this lock) when it was
        // released; one claimed since is zero until its owner counts.
        if owned.load(Acquire) {
            slot.read_into(scratch);
            each(scratch);
        }
    }
    SHARED.read_into(scratch);
    each(scratch);
}

/// Calls `each` with every owned slot and the shared slot, under the shared
/// lock (so no slot is released meanwhile): for what a slot holds beyond
/// its counts (the sampling histograms). `each` must not allocate.
pub(crate) fn each_slot(mut each: impl FnMut(&Slot)) {
    let _guard = lock_shared();
    let high = HIGH.load(Acquire).min(MAX_THREAD_SLOTS);
    for (slot, owned) in SLOTS[..high].iter().zip(&OWNED) {
        if owned.load(Acquire) {
            each(slot);
        }
    }
    each(&SHARED);
}

/// Slots owned now, and bytes of slots ever touched.
pub(crate) fn slot_usage() -> (usize, usize) {
    (
        OWNED_NOW.load(Relaxed),
        HIGH.load(Relaxed) * size_of::<Slot>(),
    )
}

/// Process-wide hooks: the thread-exit key and the fork handlers.
mod hooks {
    use super::*;

    const NONE: u8 = 0;
    const BUSY_INSTALLING: u8 = 1;
    const READY: u8 = 2;
    const FAILED: u8 = 3;
    static STATE: AtomicU8 = AtomicU8::new(NONE);
    static KEY: AtomicUsize = AtomicUsize::new(0);

    /// Creates the pthread key (and fork handlers) once. False if that failed.
    pub(super) fn install() -> bool {
        loop {
            match STATE.compare_exchange(NONE, BUSY_INSTALLING, Acquire, Acquire) {
                Ok(_) => {
                    let ok = create();
                    STATE.store(if ok { READY } else { FAILED }, Release);
                    return ok;
                }
                Err(READY) => return true,
                Err(FAILED) => return false,
                Err(_) => core::hint::spin_loop(),
            }
        }
    }

    fn create() -> bool {
        let Some(key) = crate::sys::thread_key_create(destructor) else {
            return false;
        };
        KEY.store(key as usize, Release);
        // The three handlers only touch this crate's atomics and locks. A
        // failure only means fork() is not guarded, which is reported
        // nowhere; counting still works.
        #[cfg(not(miri))]
        crate::sys::at_fork(prepare, parent, child);
        true
    }

    /// Arranges for `retire(slot)` to run when this thread exits.
    pub(super) fn on_thread_exit(slot: *const Slot) -> bool {
        let key = KEY.load(Acquire) as crate::sys::ThreadKey;
        crate::sys::thread_key_set(key, slot.cast())
    }

    extern "C" fn destructor(value: *mut core::ffi::c_void) {
        if !value.is_null() {
            retire(value.cast_const().cast());
        }
    }

    /// Before fork: no snapshot, exit or shared count is half done.
    #[cfg_attr(miri, allow(dead_code))]
    extern "C" fn prepare() {
        // The thread is inside the tool until `parent` or `child`: a
        // signal handler that allocates meanwhile takes none of these locks.
        crate::reentry::enter().keep();
        // First: its holder may be inside the loader, never in our locks.
        crate::modules::fork::lock_all();
        core::mem::forget(crate::lock::spin(&SHARED_LOCK));
        crate::stacks::fork::lock_all();
        crate::sampled_table::fork::lock_all();
    }

    #[cfg_attr(miri, allow(dead_code))]
    extern "C" fn parent() {
        crate::sampled_table::fork::unlock_all();
        crate::stacks::fork::unlock_all();
        // SAFETY: `prepare` locked it in this thread and leaked the guard.
        unsafe { SHARED_LOCK.force_unlock() };
        crate::modules::fork::unlock_all();
        crate::reentry::resume();
    }

    /// In the child only the forking thread exists: release the lock and mark
    /// stable any slot whose (now vanished) owner was mid-fold.
    #[cfg_attr(miri, allow(dead_code))]
    extern "C" fn child() {
        // SAFETY: `prepare` locked it in the parent thread that is now this
        // one, and leaked the guard.
        unsafe { SHARED_LOCK.force_unlock() };
        crate::sampled_table::fork::unlock_all();
        crate::stacks::fork::unlock_all();
        crate::modules::fork::unlock_all();
        let high = HIGH.load(Acquire).min(MAX_THREAD_SLOTS);
        for slot in &SLOTS[..high] {
            slot.settle();
        }
        crate::reentry::resume();
    }
}
