//! Fixed log-linear histograms that the sampling path can record into
//! without allocating: exact below 16, then 8 buckets per doubling (each
//! bucket spans at most 1/8 of its values), 496 buckets over `u64`.
//!
//! Recording is done only for sampled blocks: into the recording thread's
//! own [`Hists`] (in its counter slot: a plain load and store, no
//! read-modify-write instruction), or with a relaxed `fetch_add` into the
//! process-wide ones when the thread has no slot of its own. A snapshot sums
//! them and turns the counts into [`alloc_snapshot::Histogram`]s, which
//! convert to `hdrhistogram` for quantiles.

use alloc_snapshot::{Bucket, Histogram};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) const BUCKETS: usize = 8 + 61 * 8;

/// One histogram of `u64` values.
pub(crate) struct Hist([AtomicU64; BUCKETS]);

/// The three histograms of a snapshot.
pub(crate) struct Hists {
    /// Sizes of sampled allocations, weighted by their sampling weight.
    pub(crate) alloc_size: Hist,
    /// Lifetimes of freed sampled blocks in epochs.
    pub(crate) lifetime_epochs: Hist,
    /// Lifetimes of freed sampled blocks in nanoseconds.
    pub(crate) lifetime_ns: Hist,
}

/// Counts recorded by threads without a slot of their own (or freeing in
/// the tool's scope), with `fetch_add`.
pub(crate) static SHARED: Hists = Hists::new();

impl Hists {
    pub(crate) const fn new() -> Self {
        Hists {
            alloc_size: Hist::new(),
            lifetime_epochs: Hist::new(),
            lifetime_ns: Hist::new(),
        }
    }

    fn each(&self) -> [&Hist; 3] {
        [&self.alloc_size, &self.lifetime_epochs, &self.lifetime_ns]
    }

    /// Adds every count into `sum` (`Sums::new()`'s layout).
    pub(crate) fn add_to(&self, sum: &mut Sums) {
        for (h, s) in self.each().into_iter().zip(sum.0.iter_mut()) {
            for (c, t) in h.0.iter().zip(s.iter_mut()) {
                *t = t.wrapping_add(c.load(Relaxed));
            }
        }
    }

    /// Moves every count into `into` and zeroes `self`. The caller owns
    /// both (as `Slot::drain_into`).
    pub(crate) fn drain_into(&self, into: &Hists) {
        for (h, d) in self.each().into_iter().zip(into.each()) {
            for (c, t) in h.0.iter().zip(d.0.iter()) {
                let v = c.swap(0, Relaxed);
                if v != 0 {
                    t.store(t.load(Relaxed).wrapping_add(v), Relaxed);
                }
            }
        }
    }
}

/// Plain sums of [`Hists`] (boxed by the snapshot before it takes a lock).
pub(crate) struct Sums(pub(crate) [[u64; BUCKETS]; 3]);

impl Sums {
    pub(crate) const fn new() -> Self {
        Sums([[0; BUCKETS]; 3])
    }

    /// The sums as snapshot histograms: allocation sizes, lifetimes in
    /// epochs, lifetimes in nanoseconds.
    pub(crate) fn histograms(&self) -> [Histogram; 3] {
        self.0
            .each_ref()
            .map(|counts| histogram_of(counts.iter().copied()))
    }
}

/// The log-linear bucket of `v`: exact below 16, then 8 buckets per
/// doubling (bucket `16 + (lg - 4) * 8 + the 3 bits after the top one`),
/// each spanning at most 1/8 of its values. The one bucketing of the crate:
/// these histograms and the counters' coarse epoch buckets
/// (`counters::bucket`, the same function over `u32`) both use it.
#[inline]
pub(crate) const fn index(v: u64) -> usize {
    if v < 8 {
        v as usize
    } else {
        let lg = 63 - v.leading_zeros() as usize; // 3..=63
        let sub = (v >> (lg - 3)) as usize & 7;
        8 + (lg - 3) * 8 + sub
    }
}

/// The values `low..=high` that bucket `i` holds (inverse of [`index`]).
pub(crate) const fn range(i: usize) -> (u64, u64) {
    if i < 8 {
        (i as u64, i as u64)
    } else {
        let lg = ((i - 8) / 8 + 3) as u32;
        let sub = ((i - 8) % 8) as u64;
        let low = (1u64 << lg) | (sub << (lg - 3));
        (low, low + ((1u64 << (lg - 3)) - 1))
    }
}

impl Hist {
    const fn new() -> Self {
        Hist([const { AtomicU64::new(0) }; BUCKETS])
    }

    /// Counts `n` values equal to `v`.
    #[inline]
    pub(crate) fn record(&self, v: u64, n: u64) {
        self.0[index(v)].fetch_add(n, Relaxed);
    }

    /// [`Hist::record`] into a histogram that only the current thread
    /// writes (its slot's): a plain load and store.
    #[inline]
    pub(crate) fn record_owned(&self, v: u64, n: u64) {
        let c = &self.0[index(v)];
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// The non-empty buckets now.
    #[cfg(test)]
    fn read(&self) -> Histogram {
        histogram_of(self.0.iter().map(|c| c.load(Relaxed)))
    }
}

/// The non-empty buckets of `counts` (one per bucket, in order).
fn histogram_of(counts: impl Iterator<Item = u64>) -> Histogram {
    Histogram {
        buckets: counts
            .enumerate()
            .filter(|&(_, count)| count > 0)
            .map(|(i, count)| {
                let (low, high) = range(i);
                Bucket { low, high, count }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u64_in_order_and_invert() {
        let mut next = 0u64;
        for i in 0..BUCKETS {
            let (low, high) = range(i);
            assert_eq!(low, next, "bucket {i}");
            assert_eq!(index(low), i);
            assert_eq!(index(high), i);
            if i >= 8 {
                assert!((high - low + 1) * 8 <= low);
            }
            next = high.wrapping_add(1);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
    }

    #[test]
    fn read_reports_what_was_recorded() {
        let h = Hist::new();
        h.record(5, 2);
        h.record(1000, 3);
        let r = h.read();
        assert_eq!(r.count(), 5);
        assert_eq!(
            r.buckets[0],
            Bucket {
                low: 5,
                high: 5,
                count: 2
            }
        );
        assert!(r.buckets[1].low <= 1000 && 1000 <= r.buckets[1].high);
    }
}
