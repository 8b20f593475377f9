//! The clock of sampled blocks' birth and death (the lifetime histogram):
//! read twice per sampled block, so it must be cheap.
//!
//! On x86-64 with an invariant time-stamp counter (CPUID `0x8000_0007`,
//! EDX bit 8: constant rate, running in every power state, the clock
//! source Linux itself prefers), a reading is one `rdtsc` (about 18 ns on
//! the 2-core KVM machine of the benchmarks, against about 44 ns for
//! `clock_gettime(CLOCK_MONOTONIC)` through the vDSO). Tick differences
//! become nanoseconds with a factor measured against `CLOCK_MONOTONIC`
//! between an anchor (the first reading) and a later one, measured again at
//! doubling intervals (so an early factor over a short span is soon
//! replaced), at most every 2^32 ticks (a second or two); each measurement
//! is one `clock_gettime`, on the free of a sampled block. Elsewhere (other
//! architectures, no invariant TSC, Miri) a tick is a nanosecond of
//! `CLOCK_MONOTONIC`.
//!
//! No lock, no allocation: a few relaxed atomics. Two threads measuring at
//! once may mix their readings; the next measurement corrects it.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// 0: not decided yet; [`TSC`]: `rdtsc`; [`MONOTONIC`]: `clock_gettime`.
static SOURCE: AtomicU8 = AtomicU8::new(0);
const TSC: u8 = 1;
const MONOTONIC: u8 = 2;

/// The anchor: a tick reading and `CLOCK_MONOTONIC` next to it (ns).
static ANCHOR_TICKS: AtomicU64 = AtomicU64::new(0);
static ANCHOR_NS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per tick, 32.32 fixed point; 0 until first measured.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);
/// The tick reading of the last measurement of [`NS_PER_TICK`].
static MEASURED_AT: AtomicU64 = AtomicU64::new(0);
/// Measure again at most this many ticks after the last measurement.
const MAX_SPAN: u64 = 1 << 32;

/// Now, in ticks (see the module docs). Never 0 once a clock runs.
#[inline]
pub(crate) fn ticks() -> u64 {
    match SOURCE.load(Relaxed) {
        TSC => tsc(),
        MONOTONIC => crate::sys::monotonic_ns(),
        _ => decide(),
    }
}

/// Nanoseconds between two readings of [`ticks`] (0 if `now` is earlier).
pub(crate) fn elapsed_ns(birth: u64, now: u64) -> u64 {
    let d = now.saturating_sub(birth);
    if SOURCE.load(Relaxed) != TSC {
        return d;
    }
    let mut f = NS_PER_TICK.load(Relaxed);
    let last = MEASURED_AT.load(Relaxed);
    let since_anchor = last.wrapping_sub(ANCHOR_TICKS.load(Relaxed));
    if f == 0 || now.wrapping_sub(last) >= since_anchor.clamp(1, MAX_SPAN) {
        f = measure(now).unwrap_or(f);
    }
    ((u128::from(d) * u128::from(f)) >> 32).min(u128::from(u64::MAX)) as u64
}

/// Measures [`NS_PER_TICK`] from the anchor to `now` (in ticks).
#[cold]
fn measure(now: u64) -> Option<u64> {
    let ns = crate::sys::monotonic_ns();
    let dt = now
        .checked_sub(ANCHOR_TICKS.load(Relaxed))
        .filter(|&d| d > 0)?;
    let dns = ns.checked_sub(ANCHOR_NS.load(Relaxed))?;
    let f = ((u128::from(dns) << 32) / u128::from(dt)).min(u128::from(u64::MAX)) as u64;
    NS_PER_TICK.store(f, Relaxed);
    MEASURED_AT.store(now, Relaxed);
    Some(f)
}

/// The first reading: chooses the source and sets the anchor.
#[cold]
fn decide() -> u64 {
    if !invariant_tsc() {
        SOURCE.store(MONOTONIC, Relaxed);
        return crate::sys::monotonic_ns();
    }
    let ns = crate::sys::monotonic_ns();
    let t = tsc();
    ANCHOR_NS.store(ns, Relaxed);
    ANCHOR_TICKS.store(t, Relaxed);
    MEASURED_AT.store(t, Relaxed);
    SOURCE.store(TSC, Relaxed);
    t
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn invariant_tsc() -> bool {
    use core::arch::x86_64::__cpuid;
    // `__cpuid` is safe from Rust 1.89 on and `unsafe` before (MSRV 1.88).
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 processor; leaf 0x8000_0000
    // returns the highest extended leaf, which is checked before 0x8000_0007
    // is read.
    unsafe {
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
    }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn invariant_tsc() -> bool {
    false
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
fn tsc() -> u64 {
    // `_rdtsc` is safe from Rust 1.89 on and `unsafe` before (MSRV 1.88).
    #[allow(unused_unsafe)]
    // SAFETY: RDTSC exists on every x86-64 processor and reads a counter.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
fn tsc() -> u64 {
    crate::sys::monotonic_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "a 20 ms wait")]
    fn ticks_measure_nanoseconds_like_the_monotonic_clock() {
        let (t0, n0) = (ticks(), crate::sys::monotonic_ns());
        let mut spin = 0u64;
        while crate::sys::monotonic_ns() - n0 < 20_000_000 {
            spin = core::hint::black_box(spin + 1);
        }
        let (t1, n1) = (ticks(), crate::sys::monotonic_ns());
        // Two calls: the first may measure the factor over a short span,
        // the second sees a span of at least 20 ms since the anchor.
        let _ = elapsed_ns(t0, t1);
        let got = elapsed_ns(t0, t1) as f64;
        let want = (n1 - n0) as f64;
        assert!(
            (got / want - 1.0).abs() < 0.05,
            "{got} ns by ticks, {want} ns"
        );
        assert_eq!(elapsed_ns(t1, t0), 0, "a reading before the birth is 0");
    }
}
