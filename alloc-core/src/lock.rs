//! The one way this crate waits for a lock.
//!
//! Every lock here is a `spin` mutex: a bare atomic flag that never
//! allocates, so taking it on the allocation path cannot recurse. Holders
//! never allocate, never call out (no unwinding, no system call but
//! `sched_yield`), and hold it for a bounded number of instructions, so a
//! waiter only ever waits for another thread's short critical section.
//!
//! The one waiter that could wait for its own thread is a signal handler
//! that allocates while the code it interrupted holds the lock: so holding
//! a lock marks the thread inside the tool ([`crate::reentry`]), and the
//! allocation path takes no lock while its thread is inside.

use core::ops::{Deref, DerefMut};
use spin::mutex::{SpinMutex, SpinMutexGuard};

/// A held lock; the thread is inside the tool until it is dropped.
pub(crate) struct Held<T: 'static> {
    // Dropped first: the lock is released before the deferred work of the
    // outermost `Inside` runs (which may take it again).
    guard: SpinMutexGuard<'static, T>,
    _inside: crate::reentry::Inside,
}

impl<T> Deref for Held<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// Takes `m` (see [`spin()`]), marking the thread inside the tool first.
pub(crate) fn lock<T>(m: &'static SpinMutex<T>) -> Held<T> {
    let inside = crate::reentry::enter();
    Held {
        guard: spin(m),
        _inside: inside,
    }
}

/// Takes `m` without marking the thread: for fork's `prepare`, which marks
/// it once for all the locks it keeps across `fork()`.
///
/// Spins briefly, then yields the CPU between tries, so that many waiters (a
/// burst of exiting threads) do not starve the holder on a machine with few
/// cores. `sched_yield` is a system call: it neither allocates nor takes a
/// lock.
pub(crate) fn spin<T>(m: &'static SpinMutex<T>) -> SpinMutexGuard<'static, T> {
    let mut spins = 0u32;
    loop {
        if let Some(guard) = m.try_lock() {
            return guard;
        }
        if spins < 64 {
            spins += 1;
            core::hint::spin_loop();
        } else {
            crate::sys::yield_now();
        }
    }
}
