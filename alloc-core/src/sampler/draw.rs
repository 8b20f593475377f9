//! The per-thread countdown to the next sample: a random number generator
//! in the thread's slot, the exponential draw under the mode in force, and
//! the weight of a block drawn at a mean interval.

use super::mode::{interval, sampling_seed};
use crate::slot::{Slot, REDRAW};
use core::sync::atomic::Ordering::*;

/// While sampling is off a thread looks at the mode again after this many
/// bytes, so it picks up a mode switched on by another thread even if it
/// missed the reset of its countdown.
pub(super) const OFF_RECHECK: i64 = 64 << 20;

/// The next random 64-bit number of the slot's generator (xorshift64*).
///
/// The allocation path's own generator, not the workspace's `fastrand`
/// (which tests and benchmarks use): its state is a field of the thread's
/// slot (no thread-local of its own), seeded per stream from
/// `ALLOC_CORE_SEED` so that a fixed seed samples the same blocks, and it
/// never allocates or panics: code on the allocation path stays
/// alloc-core's own, where those rules are checked.
fn next_random(slot: &Slot) -> u64 {
    let mut x = slot.sampler.rng.load(Relaxed);
    if x == 0 {
        x = seed(slot);
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    slot.sampler.rng.store(x, Relaxed);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn seed(slot: &Slot) -> u64 {
    let mut z = match sampling_seed() {
        // The stream number, spread by the golden ratio, picks one of the
        // seed's streams.
        Some(s) => {
            s ^ super::mode::next_stream()
                .wrapping_add(1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }
        None => (slot as *const Slot as u64) ^ crate::sys::monotonic_ns().rotate_left(32),
    };
    // splitmix64 finaliser: spreads the few bits that differ.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// Whether a countdown (after the fast path took a size off it) is the
/// [`REDRAW`] marker.
pub(super) fn is_redraw(countdown: i64) -> bool {
    countdown <= REDRAW / 2
}

/// A fresh countdown for `slot` under the mode in force.
pub(super) fn draw(slot: &Slot) -> i64 {
    draw_under(slot, interval())
}

/// A fresh countdown for `slot` under the encoded mode `mode` (0 off, 1
/// all, else the mean interval): [`REDRAW`] in a leak scope or with every
/// allocation sampled (each allocation then takes the slow path and looks
/// at the mode again), [`OFF_RECHECK`] when off, else exponential with
/// mean `mode`.
fn draw_under(slot: &Slot, mode: u64) -> i64 {
    if slot.scope.is_open() {
        return REDRAW;
    }
    match mode {
        0 => OFF_RECHECK,
        1 => REDRAW,
        mean => exponential(slot, mean),
    }
}

/// An exponential draw with mean `mean` bytes from `slot`'s generator.
pub(super) fn exponential(slot: &Slot, mean: u64) -> i64 {
    // u in (0, 1]: -ln(u) is exponential with mean 1.
    let u = ((next_random(slot) >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
    let x = -u.ln() * mean as f64;
    if x >= i64::MAX as f64 {
        i64::MAX
    } else {
        x as i64
    }
}

/// The weight of a block of `size` bytes sampled under the encoded mode
/// `mean` (>= 2): `1 / p` with `p = 1 - exp(-size / mean)`.
pub(super) fn weight_of(size: usize, mean: u64) -> f64 {
    let p = -(-(size as f64) / mean as f64).exp_m1();
    if p > 0.0 {
        1.0 / p
    } else {
        f64::from(f32::MAX)
    }
}

/// A fresh, independent sampling trial for a block of `size` bytes under
/// the mode in force, ignoring leak scopes: `Some(weight)` if it is
/// sampled. For a record sampled outside a leak scope whose block is
/// resized inside one (the resize is a new incarnation; its old weight
/// belonged to the old size).
pub(crate) fn fresh_trial(slot: &Slot, size: usize) -> Option<f32> {
    match interval() {
        0 => None,
        1 => Some(1.0),
        mean => (exponential(slot, mean) < size as i64).then(|| weight_of(size, mean) as f32),
    }
}

/// Gives a newly claimed slot its first countdown.
pub(crate) fn arm(slot: &Slot) {
    slot.sampler.countdown.store(draw(slot), Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::mode::set_sampling_seed;

    /// The one test that changes the process-wide seed (tests run in
    /// parallel): fixed seeds replay, different seeds differ, countdowns
    /// follow the mode and are exponential with the configured mean.
    #[test]
    fn countdowns_replay_under_a_seed_and_follow_the_mode() {
        let draws = |seed: u64| {
            set_sampling_seed(Some(seed));
            let slot = Box::new(Slot::new());
            (0..100)
                .map(|_| draw_under(&slot, 1000))
                .collect::<Vec<_>>()
        };
        let a = draws(42);
        assert_eq!(a, draws(42), "a fixed seed replays");
        assert_ne!(a, draws(43), "another seed differs");
        assert_eq!(sampling_seed(), Some(43));

        let slot = Box::new(Slot::new());
        assert_eq!(draw_under(&slot, 0), OFF_RECHECK, "off");
        assert_eq!(draw_under(&slot, 1), REDRAW, "every allocation");
        slot.scope.set_depth(1);
        assert_eq!(draw_under(&slot, 1000), REDRAW, "a leak scope records all");
        assert!(is_redraw(REDRAW - (1 << 40)) && !is_redraw(-(1 << 40)));
        slot.scope.set_depth(0);

        set_sampling_seed(Some(7));
        let mean = 1000.0;
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| draw_under(&slot, 1000) as f64).collect();
        set_sampling_seed(None);
        assert_eq!(sampling_seed(), None);
        // Bounds of 6 standard errors: the mean of n exponentials has
        // standard error mean / sqrt(n) (the cast to an integer takes at
        // most 1 off each draw); P(X < mean) = 1 - 1/e for an exponential,
        // a proportion with standard error sqrt(p (1 - p) / n).
        let avg = xs.iter().sum::<f64>() / n as f64;
        let se = mean / (n as f64).sqrt();
        assert!((avg + 0.5 - mean).abs() < 6.0 * se, "mean {avg}");
        let p = 1.0 - (-1.0f64).exp();
        let frac = xs.iter().filter(|&&x| x < mean).count() as f64 / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((frac - p).abs() < 6.0 * se, "{frac}");
    }
}
