//! The allocation path: `EpochAlloc` and its `GlobalAlloc` implementation.
//!
//! # Architecture invariant
//! Nothing here allocates through this allocator, panics, or waits for a
//! lock that code holding it could be waiting on us for. The fast path is:
//! place the tag (arithmetic on the layout), call the inner allocator, read
//! the epoch (a relaxed load), read the thread's slot pointer (a `const`
//! thread-local), take the size off the sampling countdown (allocations
//! only), compare the epoch (or a free's tag) with the slot's cached current
//! epoch, and update the counters that only this thread writes (plain loads
//! and stores). Everything else (samples, sampled
//! frees, the tool's scope, first use of a thread, old epochs) is in
//! [`alloc_slow`], [`free_slow`] and [`account_slow`], marked cold.

use crate::backend::{self, Backend};
use crate::counters::{Op, SAMPLED, TOOL_EPOCH};
use crate::epoch::EPOCH;
use crate::reentry::{self, Deferred};
use crate::registry::{self, TOOL, TOOL_BLOCKS, TOOL_BYTES, UNREGISTERED};
use crate::sampled_table::Record;
use crate::sampler::draw;
use crate::sampler::mode::{always_sampled, ALWAYS_SAMPLED_MIN};
use crate::sampler::path::{self, Chance};
use crate::slot::Slot;
use crate::tag::{self, place};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

/// A global allocator that tags every block with its birth epoch and keeps
/// exact live bytes and blocks per epoch, over an inner allocator `A`.
///
/// ```
/// use alloc_core::{EpochAlloc, System};
///
/// #[global_allocator]
/// static GLOBAL: EpochAlloc<System> = EpochAlloc::new(System);
/// # fn main() {}
/// ```
///
/// With the default `jemalloc` feature, use `EpochAlloc<Jemalloc>` (the
/// configuration the benchmarks measure).
pub struct EpochAlloc<A> {
    inner: A,
}

impl<A> EpochAlloc<A> {
    /// Wraps `inner`. A `const fn`, so it can initialise a `static`.
    pub const fn new(inner: A) -> Self {
        EpochAlloc { inner }
    }

    /// The inner allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

/// Counts a new block of `size` bytes at `addr` for birth epoch `epoch` in
/// the current thread's slot and takes it off the sampling countdown;
/// returns the tag the block carries (`epoch`; its record's id with
/// [`SAMPLED`] if it was sampled, [`crate::sampled_table::tag`]; or the tool's
/// tag inside the tool's scope).
#[inline(always)]
fn account_alloc<A: Backend>(addr: *mut u8, epoch: u32, size: usize) -> u32 {
    let slot = registry::current();
    // SAFETY: `current` only returns pointers to `static` slots.
    if unsafe { &*slot }.try_alloc(epoch, size as i64) {
        epoch
    } else {
        alloc_slow::<A>(slot, addr as usize, epoch, size, Chance::Countdown)
    }
}

/// The rest of a small allocation that [`Slot::try_alloc`] refused: counts
/// it in [`alloc_slow`], writes its tag, returns `p`.
///
/// # Safety
/// `p` is a fresh block of `small_total(size)` bytes, `size` of them the
/// user's.
#[cold]
#[inline(never)]
unsafe fn alloc_small_slow<A: Backend>(
    slot: *const Slot,
    p: *mut u8,
    epoch: u32,
    size: usize,
) -> *mut u8 {
    let tag = alloc_slow::<A>(slot, p as usize, epoch, size, Chance::Countdown);
    // SAFETY: the caller's contract: the trailer is inside the block.
    unsafe { tag::write(p, tag::small_total(size), tag::Place::Trailer, tag) };
    p
}

/// [`account_alloc`] for a block of at least
/// [`ALWAYS_SAMPLED_MIN`] bytes, which may be always sampled.
#[cold]
#[inline(never)]
fn account_alloc_large<A: Backend>(addr: *mut u8, epoch: u32, size: usize) -> u32 {
    if always_sampled(size) {
        alloc_slow::<A>(
            registry::current(),
            addr as usize,
            epoch,
            size,
            Chance::Always,
        )
    } else {
        account_alloc::<A>(addr, epoch, size)
    }
}

/// An allocation that is not "this thread's slot holds this epoch and its
/// sampling countdown has not run out", or that is always sampled
/// (`chance`; the countdown was not touched then).
#[cold]
#[inline(never)]
fn alloc_slow<A: Backend>(
    slot: *const Slot,
    addr: usize,
    epoch: u32,
    size: usize,
    chance: Chance,
) -> u32 {
    if ptr::eq(slot, &TOOL) {
        count_tool(size as i64, 1);
        return TOOL_EPOCH;
    }
    if reentry::inside() {
        // A signal handler interrupted this thread inside the tool: counted
        // later, never sampled.
        let op = Deferred::Count {
            epoch,
            bytes: size as i64,
            op: Op::Alloc,
        };
        reentry::defer(op, apply_deferred::<A>);
        return epoch;
    }
    let _inside = reentry::enter();
    let slot = if ptr::eq(slot, &UNREGISTERED) {
        let slot = register::<A>();
        if !ptr::eq(slot, &registry::BUSY) && chance == Chance::Countdown {
            // The fast path took this block off another slot's countdown.
            // SAFETY: `register` returns static slots.
            let s = unsafe { &*slot };
            s.sampler
                .countdown
                .store(s.sampler.countdown.load(Relaxed) - size as i64, Relaxed);
        }
        slot
    } else {
        slot
    };
    if ptr::eq(slot, &registry::BUSY) {
        // No slot of our own (pool full, thread exiting): never sampled.
        registry::with_shared(|s| s.record(epoch, size as i64, Op::Alloc));
        return epoch;
    }
    // SAFETY: `slot` is a static slot owned by this thread.
    let s = unsafe { &*slot };
    s.record(epoch, size as i64, Op::Alloc);
    s.make_current(epoch);
    if chance == Chance::Always || s.sampler.countdown.load(Relaxed) < 0 {
        path::on_alloc(s, registry::owner_id(slot), (addr, epoch, size), chance)
    } else {
        epoch
    }
}

/// Counts the free of a block of `size` bytes at `addr` with tag `tag`.
#[inline(always)]
fn account_free<A: Backend>(addr: *mut u8, tag: u32, size: usize) {
    let slot = registry::current();
    // SAFETY: `current` only returns pointers to `static` slots.
    if !unsafe { &*slot }.try_free(tag, -(size as i64)) {
        free_slow::<A>(slot, addr as usize, tag, size);
    }
}

/// Counts the free of a sampled block, a tool block, or one whose epoch
/// this thread's ring does not hold, at `addr` (which may have gone back to
/// the inner allocator already).
#[cold]
#[inline(never)]
fn free_slow<A: Backend>(slot: *const Slot, addr: usize, tag: u32, size: usize) {
    if tag & SAMPLED == 0 {
        return account_slow::<A>(slot, tag, -(size as i64), Op::Free);
    }
    if reentry::inside() {
        reentry::defer(
            Deferred::FreeSampled { tag, addr, size },
            apply_deferred::<A>,
        );
        return;
    }
    let _inside = reentry::enter();
    // The tag names the record, which holds the birth epoch. (The block
    // may be back in the inner allocator already, and even given to
    // another thread: `addr` only checks that the record is this block's.)
    // No record cannot happen (the table's invariant); then there is no
    // birth epoch to count the free in.
    if let Some(birth) = path::on_free(tag, addr, own_slot(slot)) {
        count_in::<A>(slot, birth, -(size as i64), Op::Free);
    }
}

/// Counts a realloc of a user block from `old` to `new` bytes, tagged
/// `birth`, at `addr` in the current epoch `now`, and decides whether the
/// new incarnation is sampled; returns its tag. `charged` says whether the
/// fast path already took `new` off `slot`'s countdown; `record` is the
/// block's sample record, taken out of the table after the inner realloc.
///
/// A realloc in a later epoch than `birth` moves the block: its old size
/// leaves `birth` and its new size joins `now` ([`Op::MoveOut`],
/// [`Op::MoveIn`]). Outside leak scopes the new incarnation is sampled
/// like an allocation of `new` bytes and an old record is dropped; inside
/// one, a recorded block keeps its record and nothing new is recorded (a
/// block allocated before the scope and resized inside it is not the
/// scope's).
#[cold]
#[inline(never)]
fn realloc_slow_account<A: Backend>(
    slot: *const Slot,
    addr: usize,
    (birth, now): (u32, u32),
    (old, new): (usize, usize),
    charged: bool,
    record: Option<Record>,
) -> u32 {
    let count = |s: &Slot| realloc_counts((birth, now), (old, new), |e, b, op| s.record(e, b, op));
    let (slot, charged) = if ptr::eq(slot, &UNREGISTERED) {
        (register::<A>(), false)
    } else {
        (slot, charged)
    };
    if ptr::eq(slot, &registry::BUSY) || ptr::eq(slot, &TOOL) {
        // No slot of our own (pool full, thread exiting), or a user block
        // resized inside the tool's scope: counted, never sampled.
        registry::with_shared(count);
        return now;
    }
    // SAFETY: `slot` is a static slot owned by this thread.
    let s = unsafe { &*slot };
    count(s);
    if s.scope.is_open() {
        return crate::leaks::scope::on_realloc(s, record, (addr, new), now);
    }
    let chance = if always_sampled(new) {
        Chance::Always
    } else {
        if !charged {
            s.sampler
                .countdown
                .store(s.sampler.countdown.load(Relaxed) - new as i64, Relaxed);
        }
        if s.sampler.countdown.load(Relaxed) >= 0 {
            return now;
        }
        Chance::Countdown
    };
    path::on_alloc(s, registry::owner_id(slot), (addr, now, new), chance)
}

/// A realloc within the current epoch `now` that [`Slot::try_realloc`]
/// refused (it took `new` off the countdown): [`realloc_slow_account`], or
/// deferred when the thread is already inside the tool.
#[cold]
#[inline(never)]
fn realloc_in_epoch<A: Backend>(
    slot: *const Slot,
    addr: usize,
    now: u32,
    (old, new): (usize, usize),
) -> u32 {
    if reentry::inside() {
        return realloc_reentrant::<A>(addr, now, now, (old, new));
    }
    let _inside = reentry::enter();
    realloc_slow_account::<A>(slot, addr, (now, now), (old, new), true, None)
}

/// What a realloc of a block born in `birth` from `old` to `new` bytes in
/// epoch `now` counts, each as `count(epoch, bytes, op)`.
fn realloc_counts(
    (birth, now): (u32, u32),
    (old, new): (usize, usize),
    mut count: impl FnMut(u32, i64, Op),
) {
    if birth == now {
        count(now, new as i64 - old as i64, Op::Realloc);
    } else {
        count(birth, -(old as i64), Op::MoveOut);
        count(now, new as i64, Op::MoveIn);
    }
}

/// The tag of a realloc's new block when a signal handler interrupted this
/// thread inside the tool: the counts (and a sampled block's record) are
/// deferred, the new block is not sampled.
fn realloc_reentrant<A: Backend>(
    addr: usize,
    tag: u32,
    now: u32,
    (old, new): (usize, usize),
) -> u32 {
    if tag & SAMPLED != 0 {
        let op = Deferred::ReallocSampled {
            tag,
            addr,
            old,
            new,
            now,
        };
        reentry::defer(op, apply_deferred::<A>);
    } else if tag == TOOL_EPOCH {
        count_tool(new as i64 - old as i64, 0);
        return TOOL_EPOCH;
    } else {
        realloc_counts((tag, now), (old, new), |epoch, bytes, op| {
            reentry::defer(Deferred::Count { epoch, bytes, op }, apply_deferred::<A>);
        });
    }
    now
}

/// This thread's slot if it owns one (not a special slot).
fn own_slot(slot: *const Slot) -> Option<&'static Slot> {
    if registry::owner_id(slot) != 0 {
        // SAFETY: a pool slot that `current` returned is this thread's.
        Some(unsafe { &*slot })
    } else {
        None
    }
}

/// Gives this thread a slot of its own ([`registry::register`]; `BUSY` if
/// none is free) with its first sampling countdown drawn ([`draw::arm`]),
/// and registers `A`'s statistics reader for snapshots, which only the
/// first registration in the process sets ([`backend::register_stats`]).
#[cold]
#[inline(never)]
fn register<A: Backend>() -> *const Slot {
    backend::register_stats::<A>();
    registry::register(draw::arm)
}

/// Does what a reentrant slow path left for later ([`reentry`]; every
/// [`reentry::defer`] here passes this function with its work); the
/// thread is inside the tool and holds no lock of it.
fn apply_deferred<A: Backend>(op: Deferred) {
    let slot = registry::current();
    match op {
        Deferred::Nothing => {}
        Deferred::Count { epoch, bytes, op } => count_in::<A>(slot, epoch, bytes, op),
        Deferred::FreeSampled { tag, addr, size } => {
            if let Some(birth) = path::on_free(tag, addr, own_slot(slot)) {
                count_in::<A>(slot, birth, -(size as i64), Op::Free);
            }
        }
        Deferred::ReallocSampled {
            tag,
            addr,
            old,
            new,
            now,
        } => {
            let birth = crate::sampled_table::remove(crate::sampled_table::id_of(tag), addr)
                .map_or(now, |r| r.epoch);
            realloc_counts((birth, now), (old, new), |epoch, bytes, op| {
                count_in::<A>(slot, epoch, bytes, op);
            });
        }
    }
}

fn count_tool(bytes: i64, blocks: i64) {
    TOOL_BYTES.fetch_add(bytes, Relaxed);
    TOOL_BLOCKS.fetch_add(blocks, Relaxed);
}

/// A free that is not "this thread's slot holds this epoch".
/// `epoch` has no sampled bit.
#[cold]
#[inline(never)]
fn account_slow<A: Backend>(slot: *const Slot, epoch: u32, bytes: i64, op: Op) {
    if epoch == TOOL_EPOCH {
        count_tool(bytes, if op == Op::Free { -1 } else { 0 });
        return;
    }
    if reentry::inside() {
        reentry::defer(Deferred::Count { epoch, bytes, op }, apply_deferred::<A>);
        return;
    }
    let _inside = reentry::enter();
    count_in::<A>(slot, epoch, bytes, op);
}

/// Counts `bytes` in `epoch` as `op` in `slot`, the thread's own (given one
/// first if it has none) or the shared one. The thread is inside the tool.
#[inline(always)]
fn count_in<A: Backend>(slot: *const Slot, epoch: u32, bytes: i64, op: Op) {
    let slot = if ptr::eq(slot, &UNREGISTERED) {
        register::<A>()
    } else {
        slot
    };
    if ptr::eq(slot, &registry::BUSY) || ptr::eq(slot, &TOOL) {
        // No slot of our own (pool full, thread exiting), or a user block
        // freed inside the tool's scope.
        registry::with_shared(|s| s.record(epoch, bytes, op));
    } else {
        // SAFETY: `slot` is a static slot owned by this thread.
        unsafe { &*slot }.record(epoch, bytes, op);
    }
}

impl<A: Backend> EpochAlloc<A> {
    #[inline(always)]
    fn place(&self, size: usize, align: usize) -> (usize, tag::Place) {
        place(size, align, |s| self.inner.size_class(s))
    }

    /// Shared body of `alloc` and `alloc_zeroed`. Small blocks (any
    /// alignment) take a straight path; the rest go through `place`.
    ///
    /// # Safety
    /// As for `GlobalAlloc::alloc`; `get_small` must call the inner
    /// allocator's `alloc_small` or `alloc_small_zeroed` with the size and
    /// alignment it is given, `get` its `alloc` or `alloc_zeroed` with the
    /// layout it is given.
    #[inline(always)]
    unsafe fn alloc_with(
        &self,
        layout: Layout,
        get_small: impl FnOnce(usize, usize) -> *mut u8,
        get: impl FnOnce(Layout) -> *mut u8,
    ) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if tag::is_small(size) {
            let total = tag::small_total(size);
            // `total <= 4096 + TAG`: a valid layout at `align` (see `place`).
            let p = get_small(total, align);
            if p.is_null() {
                return p;
            }
            // Only `p` and `size` live across the call above, and the slow
            // path is a tail call: the fast path saves few registers.
            let epoch = EPOCH.0.load(Relaxed);
            let slot = registry::current();
            // SAFETY: `current` only returns pointers to `static` slots.
            if unsafe { &*slot }.try_alloc(epoch, size as i64) {
                // SAFETY: `p` is a fresh block of `total >= size + TAG` bytes.
                unsafe { tag::write(p, tag::small_total(size), tag::Place::Trailer, epoch) };
                return p;
            }
            // SAFETY: `p` is a fresh small block of `size` user bytes.
            return unsafe { alloc_small_slow::<A>(slot, p, epoch, size) };
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.alloc_other(layout, get) }
    }

    /// `alloc_with` for blocks that are not small: a function of its own
    /// (a tail call), so that the small path's prologue saves only the
    /// registers it needs.
    ///
    /// # Safety
    /// As for `alloc_with`.
    #[inline(never)]
    unsafe fn alloc_other(&self, layout: Layout, get: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        let (total, at) = self.place(size, align);
        // SAFETY: `place` returns `total >= size` with `total` rounded up to
        // the (power-of-two) alignment still within `isize::MAX`.
        let p = get(unsafe { Layout::from_size_align_unchecked(total, align) });
        if p.is_null() {
            return p;
        }
        let epoch = EPOCH.0.load(Relaxed);
        let tag = if size >= ALWAYS_SAMPLED_MIN {
            account_alloc_large::<A>(p, epoch, size)
        } else {
            account_alloc::<A>(p, epoch, size)
        };
        // SAFETY: `p` is a fresh block of `total` bytes placed by `place`.
        unsafe { tag::write(p, total, at, tag) };
        p
    }
}

// SAFETY: every method forwards to the inner allocator with a layout at least
// as large and as aligned as the caller's (`place` only grows the size), and
// returns the inner allocator's pointer unchanged, so the caller's block is
// valid and aligned. Extra bytes hold the tag and are never handed out.
unsafe impl<A: Backend> GlobalAlloc for EpochAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwards the caller's contract; `alloc_with` calls the
        // inner `alloc_small` or `alloc` with the layout it computes.
        unsafe {
            self.alloc_with(
                layout,
                |total, align| self.inner.alloc_small(total, align),
                |l| self.inner.alloc(l),
            )
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`. The tag lies past the user's bytes, which
        // stay zero.
        unsafe {
            self.alloc_with(
                layout,
                |total, align| self.inner.alloc_small_zeroed(total, align),
                |l| self.inner.alloc_zeroed(l),
            )
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        if tag::is_small(size) {
            let total = tag::small_total(size);
            // SAFETY: `alloc` wrote this small block's tag as a trailer.
            let tag = unsafe { tag::read(ptr, total, tag::Place::Trailer) };
            let slot = registry::current();
            // SAFETY: `current` only returns pointers to `static` slots.
            if unsafe { &*slot }.try_free(tag, -(size as i64)) {
                // SAFETY: `alloc_small` gave this block with `total` at `align`.
                unsafe { self.inner.dealloc_small(ptr, total, align) };
            } else {
                // A tail call: nothing lives across it.
                // SAFETY: as above.
                unsafe { self.dealloc_small_slow(slot, ptr, tag, size, align) };
            }
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_other(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc_with(ptr, layout, new_size) }
    }
}

impl<A: Backend> EpochAlloc<A> {
    /// `dealloc` of a block that is not small (see `alloc_other`).
    ///
    /// # Safety
    /// As for `GlobalAlloc::dealloc`.
    #[inline(never)]
    unsafe fn dealloc_other(&self, ptr: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        let (total, at) = self.place(size, align);
        // SAFETY: the caller passes a block from `alloc` with this layout,
        // whose tag `alloc` wrote at the same place.
        let tag = unsafe { tag::read(ptr, total, at) };
        account_free::<A>(ptr, tag, size);
        // SAFETY: the block was obtained from the inner allocator with
        // exactly this size and alignment.
        unsafe {
            self.inner
                .dealloc(ptr, Layout::from_size_align_unchecked(total, align))
        }
    }

    /// The body of `realloc`.
    ///
    /// # Safety
    /// As for `GlobalAlloc::realloc`.
    #[inline(always)]
    unsafe fn realloc_with(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let (old_total, old_at) = self.place(layout.size(), align);
        let (new_total, new_at) = self.place(new_size, align);
        // SAFETY: as in `dealloc`: the tag is where `alloc` put it.
        let tag = unsafe { tag::read(ptr, old_total, old_at) };
        let now = EPOCH.0.load(Relaxed);
        if tag != now || new_size >= ALWAYS_SAMPLED_MIN {
            // Sampled, the tool's, born in another epoch, or large.
            // SAFETY: forwarded from the caller; `tag` was read from `ptr`.
            return unsafe {
                self.realloc_slow(
                    ptr,
                    layout,
                    new_size,
                    (tag, now),
                    old_total,
                    (new_total, new_at),
                )
            };
        }
        // SAFETY: forwarded from the caller; `old_total` and `new_total`
        // come from `place` for this block's layout and the new size.
        let p = unsafe { self.inner_realloc(ptr, old_total, align, new_total) };
        if p.is_null() {
            // The old block, its tag and the counters are untouched.
            return p;
        }
        let (old_size, slot) = (layout.size(), registry::current());
        // SAFETY: `current` only returns pointers to `static` slots.
        let tag = if unsafe { &*slot }.try_realloc(
            now,
            new_size as i64 - old_size as i64,
            new_size as i64,
        ) {
            now
        } else {
            realloc_in_epoch::<A>(slot, p as usize, now, (old_size, new_size))
        };
        // SAFETY: `p` holds `new_total` bytes placed by `place`.
        unsafe { tag::write(p, new_total, new_at, tag) };
        p
    }
}

impl<A: Backend> EpochAlloc<A> {
    /// The free of a small block that [`Slot::try_free`] refused: gives
    /// it back and counts it in [`free_slow`].
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` user bytes at `align`, from
    /// `alloc_small`, tagged `tag`, freed once.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_small_slow(
        &self,
        slot: *const Slot,
        ptr: *mut u8,
        tag: u32,
        size: usize,
        align: usize,
    ) {
        if tag & SAMPLED != 0 {
            // The record's line comes in while the block goes back.
            crate::sampled_table::prefetch(crate::sampled_table::id_of(tag));
        }
        // The block goes back first: nothing below reads it, and its
        // record is found by the id in `tag`, so another thread given the
        // same address meanwhile (and sampling it) makes a record of its
        // own under another id.
        // SAFETY: the caller's contract.
        unsafe { self.inner.dealloc_small(ptr, tag::small_total(size), align) };
        free_slow::<A>(slot, ptr as usize, tag, size);
    }

    /// The inner allocator's realloc of a block it gave out with `old_total`
    /// bytes at `align`, to `new_total` bytes.
    ///
    /// # Safety
    /// `ptr` came from the inner allocator with exactly `old_total` at
    /// `align`; `new_total` is a valid layout size at `align` (as `place`
    /// guarantees).
    #[inline(always)]
    unsafe fn inner_realloc(
        &self,
        ptr: *mut u8,
        old_total: usize,
        align: usize,
        new_total: usize,
    ) -> *mut u8 {
        // SAFETY: the caller's contract, passed through.
        unsafe {
            self.inner.realloc(
                ptr,
                Layout::from_size_align_unchecked(old_total, align),
                new_total,
            )
        }
    }

    /// `realloc` of a block that is sampled, the tool's, born in another
    /// epoch than `now`, or resized to a size that may be always sampled. A
    /// sampled block's record leaves the table after the inner realloc
    /// succeeds (found by the id in its tag: another thread given the old
    /// address meanwhile, and sampling it, makes a record of its own under
    /// another id); [`realloc_slow_account`] decides what follows.
    ///
    /// # Safety
    /// As for `GlobalAlloc::realloc`; `tag` is the block's tag, `old_total`
    /// its inner size, `new` the placement of `new_size`.
    #[cold]
    #[inline(never)]
    unsafe fn realloc_slow(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        (tag, now): (u32, u32),
        old_total: usize,
        (new_total, new_at): (usize, tag::Place),
    ) -> *mut u8 {
        let sampled = tag & SAMPLED != 0;
        if sampled {
            // The record's line comes in during the inner realloc.
            crate::sampled_table::prefetch(crate::sampled_table::id_of(tag));
        }
        // SAFETY: as in `realloc`.
        let p = unsafe { self.inner_realloc(ptr, old_total, layout.align(), new_total) };
        if p.is_null() {
            // The old block, its tag, its record and the counters are
            // untouched.
            return p;
        }
        if reentry::inside() {
            let new_tag = realloc_reentrant::<A>(ptr as usize, tag, now, (layout.size(), new_size));
            // SAFETY: `p` holds `new_total` bytes placed by `place`.
            unsafe { tag::write(p, new_total, new_at, new_tag) };
            return p;
        }
        let _inside = reentry::enter();
        let record = if sampled {
            crate::sampled_table::remove(crate::sampled_table::id_of(tag), ptr as usize)
        } else {
            None
        };
        let birth = match record {
            Some(ref r) => r.epoch,
            // A sampled tag without its record cannot happen (the table's
            // invariant); counted as born now rather than in an epoch
            // made up from the tag.
            None if sampled => now,
            None => tag,
        };
        let new_tag = if birth == TOOL_EPOCH {
            count_tool(new_size as i64 - layout.size() as i64, 0);
            TOOL_EPOCH
        } else {
            realloc_slow_account::<A>(
                registry::current(),
                p as usize,
                (birth, now),
                (layout.size(), new_size),
                false,
                record,
            )
        };
        // SAFETY: `p` holds `new_total` bytes placed by `place`.
        unsafe { tag::write(p, new_total, new_at, new_tag) };
        p
    }
}

#[cfg(test)]
mod tests {
    //! The wrapper over `System`, called directly (this test binary keeps
    //! std's allocator as its global one), so only these calls are counted.
    //! Miri runs these (`cargo +nightly miri test -p alloc-core
    //! --no-default-features`).

    use super::*;
    use crate::{advance_epoch, snapshot, untracked, System};
    use std::sync::Mutex;

    static A: EpochAlloc<System> = EpochAlloc::new(System);
    /// The counters are process-wide: tests that count take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn live_in(epoch: u32) -> (u64, u64) {
        let s = snapshot();
        s.epoch_entry(epoch)
            .map_or((0, 0), |e| (e.live_bytes, e.live_blocks))
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn alloc_free_count_in_the_birth_epoch_realloc_in_the_current_one() {
        let _serial = SERIAL.lock().unwrap();
        let e = advance_epoch();
        let sizes = [1usize, 7, 8, 60, 64, 100, 4095, 4096, 5000, 20_000];
        let aligns = [1usize, 8, 16, 64, 4096];
        let mut blocks = Vec::new();
        let mut expect = 0u64;
        for &size in &sizes {
            for &align in &aligns {
                let l = layout(size, align);
                // SAFETY: non-zero size.
                let p = unsafe { A.alloc_zeroed(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                // Per-epoch checks need every tag in an entry of its own.
                assert!(!crate::page_table::beyond_root(p as usize), "{p:p}");
                // SAFETY: `p` holds `size` zeroed bytes.
                assert!(unsafe { core::slice::from_raw_parts(p, size) }
                    .iter()
                    .all(|&b| b == 0));
                // SAFETY: as above.
                unsafe { p.write_bytes(0xa5, size) };
                expect += size as u64;
                blocks.push((p, l));
            }
        }
        assert_eq!(live_in(e), (expect, blocks.len() as u64));

        // Grow and shrink in a later epoch: each block moves to `later`,
        // whole, with its new size.
        let later = advance_epoch();
        let mut moved = 0u64;
        for (p, l) in blocks.iter_mut() {
            let new_size = if l.size() % 2 == 0 {
                l.size() * 3
            } else {
                l.size() / 2 + 1
            };
            // SAFETY: `p` came from `A` with `l`; `new_size` is non-zero.
            let q = unsafe { A.realloc(*p, *l, new_size) };
            assert!(!q.is_null());
            assert_eq!(q as usize % l.align(), 0);
            let kept = l.size().min(new_size);
            // SAFETY: `q` holds at least `kept` bytes copied from `p`.
            assert!(unsafe { core::slice::from_raw_parts(q, kept) }
                .iter()
                .all(|&b| b == 0xa5));
            moved += new_size as u64;
            *p = q;
            *l = layout(new_size, l.align());
        }
        assert_eq!(live_in(e), (0, 0));
        assert_eq!(live_in(later), (moved, blocks.len() as u64));
        let e = later;

        // Free half on another thread.
        let half = blocks.split_off(blocks.len() / 2);
        struct Blocks(Vec<(*mut u8, Layout)>);
        // SAFETY: the blocks are plain memory owned by this test; moving the
        // pointers to another thread hands that ownership over.
        unsafe impl Send for Blocks {}
        let sent = Blocks(half);
        std::thread::spawn(move || {
            let sent = sent;
            for (p, l) in sent.0 {
                // SAFETY: each block came from `A` with `l` and is freed once.
                unsafe { A.dealloc(p, l) };
            }
        })
        .join()
        .unwrap();
        for (p, l) in blocks {
            // SAFETY: as above.
            unsafe { A.dealloc(p, l) };
        }
        assert_eq!(live_in(e), (0, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri aborts on a request it cannot satisfy")]
    fn failure_returns_null_and_counts_nothing() {
        let _serial = SERIAL.lock().unwrap();
        let before = snapshot().totals;
        let huge = layout(isize::MAX as usize - 4095, 4096);
        // SAFETY: a valid layout; System refuses it.
        assert!(unsafe { A.alloc(huge) }.is_null());
        let l = layout(64, 8);
        // SAFETY: non-zero size.
        let p = unsafe { A.alloc(l) };
        // SAFETY: `p` came from `A` with `l`; the new size is a valid layout
        // size at align 8 that System cannot provide.
        assert!(unsafe { A.realloc(p, l, isize::MAX as usize - 7) }.is_null());
        // SAFETY: `p` is still live after the failed realloc.
        unsafe { A.dealloc(p, l) };
        let after = snapshot().totals;
        assert_eq!(after.live_bytes, before.live_bytes);
        assert_eq!(after.allocs, before.allocs + 1);
        assert_eq!(after.frees, before.frees + 1);
        assert_eq!(after.reallocs, before.reallocs);
    }

    #[test]
    fn the_tools_own_blocks_are_never_the_users() {
        let _serial = SERIAL.lock().unwrap();
        let before = snapshot();
        let l = layout(48, 8);
        // SAFETY: non-zero size.
        let p = untracked(|| unsafe { A.alloc(l) });
        let mid = snapshot();
        assert_eq!(mid.totals.live_bytes, before.totals.live_bytes);
        assert_eq!(mid.tool.live_bytes, before.tool.live_bytes + 48);
        // Freed outside the scope: still the tool's.
        // SAFETY: `p` came from `A` with `l`.
        unsafe { A.dealloc(p, l) };
        let after = snapshot();
        assert_eq!(after.totals, mid.totals);
        assert_eq!(after.tool.live_bytes, before.tool.live_bytes);
    }

    #[test]
    fn epochs_past_the_window_fold_into_ranges_with_exact_totals() {
        let _serial = SERIAL.lock().unwrap();
        let l = layout(24, 8);
        let first = advance_epoch();
        let mut blocks = Vec::new();
        for _ in 0..300 {
            // SAFETY: non-zero size.
            blocks.push(unsafe { A.alloc(l) });
            advance_epoch();
        }
        let s = snapshot();
        let window_start = s.epoch - (s.exact_window - 1);
        let (bytes, n) = s
            .epochs
            .iter()
            .filter(|e| e.last >= first)
            .fold((0, 0), |a, e| (a.0 + e.live_bytes, a.1 + e.live_blocks));
        // The ranges straddling `first` may hold older blocks of other tests.
        assert!(n >= 300 && bytes >= 300 * 24, "{n} blocks");
        for e in &s.epochs {
            assert!(e.first <= e.last);
            if e.last >= window_start {
                assert_eq!(e.first, e.last, "inside the window every epoch is exact");
            }
        }
        for w in s.epochs.windows(2) {
            assert!(w[0].last < w[1].first, "ranges are sorted and disjoint");
        }
        for p in blocks {
            // SAFETY: each came from `A` with `l`.
            unsafe { A.dealloc(p, l) };
        }
        let s = snapshot();
        assert!(s.epochs.iter().all(|e| e.last < first || e.first > s.epoch));
    }
}
