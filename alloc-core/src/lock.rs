//! The one way this crate waits for a lock.
//!
//! Every lock here is a `spin` mutex: a bare atomic flag that never
//! allocates, so taking it on the allocation path cannot recurse. Holders
//! never allocate, never call out (no unwinding, no system call but
//! `sched_yield`), and hold it for a bounded number of instructions, so a
//! waiter only ever waits for another thread's short critical section.

use spin::mutex::{SpinMutex, SpinMutexGuard};

/// Takes `m`: spins briefly, then yields the CPU between tries, so that many
/// waiters (a burst of exiting threads) do not starve the holder on a machine
/// with few cores. `sched_yield` is a system call: it neither allocates nor
/// takes a lock.
pub(crate) fn lock<T>(m: &'static SpinMutex<T>) -> SpinMutexGuard<'static, T> {
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
