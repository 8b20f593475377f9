//! Fixed log-linear histograms that the sampling path can record into
//! without allocating: exact below 16, then 8 buckets per doubling (each
//! bucket spans at most 1/8 of its values), 496 buckets over `u64`.
//!
//! Recording is one relaxed `fetch_add`, done only for sampled blocks. A
//! snapshot turns the counts into [`alloc_snapshot::Histogram`]s, which
//! convert to `hdrhistogram` for quantiles.

use alloc_snapshot::{Bucket, Histogram};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

const BUCKETS: usize = 8 + 61 * 8;

/// One histogram of `u64` values.
pub(crate) struct Hist([AtomicU64; BUCKETS]);

/// Sizes of sampled allocations, weighted by their sampling weight.
pub(crate) static ALLOC_SIZE: Hist = Hist::new();
/// Lifetimes of freed sampled blocks in epochs.
pub(crate) static LIFETIME_EPOCHS: Hist = Hist::new();
/// Lifetimes of freed sampled blocks in nanoseconds.
pub(crate) static LIFETIME_NS: Hist = Hist::new();

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

    /// The non-empty buckets now.
    pub(crate) fn read(&self) -> Histogram {
        Histogram {
            buckets: self
                .0
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let count = c.load(Relaxed);
                    (count > 0).then(|| {
                        let (low, high) = range(i);
                        Bucket { low, high, count }
                    })
                })
                .collect(),
        }
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
