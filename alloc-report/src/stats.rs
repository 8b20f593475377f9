//! Robust trend statistics: the Theil–Sen slope and the Mann–Kendall test.
//!
//! Both are rank-based, so one outlier snapshot (a burst of work caught in
//! flight) moves them little. [`mann_kendall`] is O(n log n) (it counts
//! inversions with a merge sort); [`theil_sen`] is O(n²) in the number of
//! points, so [`robust_slope`] first reduces a long window to at most
//! [`SLOPE_POINTS`] bin medians, which keeps a report of 10,000 sites over
//! 1,000 snapshots fast.

/// The most points [`robust_slope`] runs Theil–Sen on.
pub(crate) const SLOPE_POINTS: usize = 64;
/// The most points [`trend_test`] runs Mann–Kendall on.
pub(crate) const TREND_POINTS: usize = 128;

/// The Mann–Kendall test over at most [`TREND_POINTS`] bin medians of `y`
/// (all of `y` when shorter). Medians of consecutive snapshots also damp
/// work caught in flight; a real rise stays a rise.
#[must_use]
pub(crate) fn trend_test(y: &[f64]) -> MannKendall {
    let n = y.len();
    if n <= TREND_POINTS {
        return mann_kendall(y);
    }
    let mut medians = Vec::with_capacity(TREND_POINTS);
    let mut buf = Vec::with_capacity(n / TREND_POINTS + 1);
    for b in 0..TREND_POINTS {
        let (lo, hi) = (b * n / TREND_POINTS, (b + 1) * n / TREND_POINTS);
        if lo < hi {
            buf.clear();
            buf.extend_from_slice(&y[lo..hi]);
            medians.push(median(&mut buf));
        }
    }
    mann_kendall(&medians)
}

/// `(x, y)` reduced to at most [`SLOPE_POINTS`] bin medians (unchanged if
/// shorter): consecutive bins of (nearly) equal size, each represented by
/// its middle `x` and its median `y`.
fn binned(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    binned_to(x, y, SLOPE_POINTS)
}

/// [`binned`] to at most `bins` points.
fn binned_to(x: &[f64], y: &[f64], bins: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len().min(y.len());
    if n <= bins {
        return (x[..n].to_vec(), y[..n].to_vec());
    }
    let mut bx = Vec::with_capacity(bins);
    let mut by = Vec::with_capacity(bins);
    let mut buf = Vec::with_capacity(n / bins + 1);
    for b in 0..bins {
        let (lo, hi) = (b * n / bins, (b + 1) * n / bins);
        if lo == hi {
            continue;
        }
        buf.clear();
        buf.extend_from_slice(&y[lo..hi]);
        by.push(median(&mut buf));
        // x is in time order: the middle element is its median.
        bx.push((x[lo + (hi - lo - 1) / 2] + x[lo + (hi - lo) / 2]) / 2.0);
    }
    (bx, by)
}

/// A slope for counting noise (sampled estimates, which rise in rare large
/// steps): the median of the slopes of the point pairs at least half the
/// series apart, over at most [`SLOPE_POINTS`] bin medians. Theil–Sen over
/// all pairs is biased on such data (close pairs see a step or none at
/// all); long pairs each span many steps, so their median slope is close
/// to the mean rate, and one outlier still moves it little.
#[must_use]
pub(crate) fn long_pair_slope(x: &[f64], y: &[f64]) -> f64 {
    let (bx, by) = binned(x, y);
    let n = bx.len();
    let lag = (n / 2).max(1);
    let mut slopes = Vec::with_capacity(n * n / 8 + 1);
    for i in 0..n {
        for j in i + lag..n {
            let dx = bx[j] - bx[i];
            if dx != 0.0 {
                slopes.push((by[j] - by[i]) / dx);
            }
        }
    }
    median(&mut slopes)
}

/// The Theil–Sen slope of `(x, y)`, over at most [`SLOPE_POINTS`] points:
/// a longer series is cut into that many consecutive bins of (nearly) equal
/// size, each represented by its middle `x` and its median `y`. Exact
/// Theil–Sen when the series is short enough.
#[must_use]
pub(crate) fn robust_slope(x: &[f64], y: &[f64]) -> f64 {
    let (bx, by) = binned(x, y);
    theil_sen(&bx, &by)
}

/// The Theil–Sen estimator: the median of the slopes of all point pairs with
/// different `x`. Returns 0 when fewer than two distinct `x` exist.
#[must_use]
pub(crate) fn theil_sen(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[j] - x[i];
            if dx != 0.0 {
                slopes.push((y[j] - y[i]) / dx);
            }
        }
    }
    median(&mut slopes)
}

/// The median of `v` (0 when empty); reorders `v`. Linear time.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    let odd = v.len() % 2 == 1;
    let (lower, &mut upper, _) = v.select_nth_unstable_by(m, f64::total_cmp);
    if odd {
        upper
    } else {
        // The largest of the lower half.
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + upper) / 2.0
    }
}

/// The result of a Mann–Kendall trend test.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub(crate) struct MannKendall {
    /// The statistic S: pairs going up minus pairs going down.
    pub(crate) s: i64,
    /// The normal score of S, with continuity and tie correction.
    pub(crate) z: f64,
    /// One-sided p-value for "no trend" against "increasing".
    pub(crate) p_increasing: f64,
}

/// Sorts `v` and returns the number of pairs `i < j` with `v[i] > v[j]`
/// (strict inversions), by merge sort. `tmp` is scratch space.
fn sort_counting_inversions(v: &mut [f64], tmp: &mut Vec<f64>) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut inv = sort_counting_inversions(&mut v[..mid], tmp);
    inv += sort_counting_inversions(&mut v[mid..], tmp);
    if v[mid - 1].total_cmp(&v[mid]).is_le() {
        return inv;
    }
    tmp.clear();
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        // Equal values take the left one first: ties are not inversions.
        if v[j].total_cmp(&v[i]).is_lt() {
            inv += (mid - i) as u64;
            tmp.push(v[j]);
            j += 1;
        } else {
            tmp.push(v[i]);
            i += 1;
        }
    }
    tmp.extend_from_slice(&v[i..mid]);
    tmp.extend_from_slice(&v[j..n]);
    v.copy_from_slice(tmp);
    inv
}

/// The Mann–Kendall test on a series in time order. O(n log n).
#[must_use]
pub(crate) fn mann_kendall(y: &[f64]) -> MannKendall {
    let n = y.len();
    let mut sorted = y.to_vec();
    let mut tmp = Vec::with_capacity(n);
    let down = sort_counting_inversions(&mut sorted, &mut tmp);
    // Variance with the correction for tied groups; tied pairs are neither
    // up nor down.
    let mut ties = 0.0;
    let mut tied_pairs: u64 = 0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && sorted[j].total_cmp(&sorted[i]).is_eq() {
            j += 1;
        }
        let t = (j - i) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        tied_pairs += ((j - i) * (j - i - 1) / 2) as u64;
        i = j.max(i + 1);
    }
    let pairs = (n * n.saturating_sub(1) / 2) as u64;
    let up = pairs - tied_pairs - down;
    let s = up as i64 - down as i64;
    let nf = n as f64;
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    if var <= 0.0 || s == 0 {
        return MannKendall {
            s,
            z: 0.0,
            p_increasing: if s > 0 { 0.5 } else { 1.0 },
        };
    }
    let z = if s > 0 {
        (s as f64 - 1.0) / var.sqrt()
    } else {
        (s as f64 + 1.0) / var.sqrt()
    };
    MannKendall {
        s,
        z,
        p_increasing: 1.0 - normal_cdf(z),
    }
}

/// The standard normal cumulative distribution function.
#[must_use]
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes `erfcc`, relative
/// error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let mut y: Vec<f64> = x.iter().map(|v| 3.0 * v + 1.0).collect();
        y[5] = 1000.0;
        assert!((theil_sen(&x, &y) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn mann_kendall_sees_a_rise_and_not_a_flat_line() {
        let up: Vec<f64> = (0..10).map(f64::from).collect();
        assert!(mann_kendall(&up).p_increasing < 0.001);
        assert_eq!(mann_kendall(&[5.0; 10]).p_increasing, 1.0);
        let down: Vec<f64> = up.iter().rev().copied().collect();
        assert!(mann_kendall(&down).p_increasing > 0.99);
    }

    /// The O(n²) definition of S.
    fn s_by_pairs(y: &[f64]) -> i64 {
        let mut s = 0;
        for i in 0..y.len() {
            for j in i + 1..y.len() {
                s += match y[j].total_cmp(&y[i]) {
                    std::cmp::Ordering::Greater => 1,
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                };
            }
        }
        s
    }

    #[test]
    fn mann_kendall_s_matches_the_pairwise_definition() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for n in [0usize, 1, 2, 3, 7, 50, 301] {
            let y: Vec<f64> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Few distinct values, so there are ties; a trend.
                    (x % 5) as f64 + (i / 40) as f64
                })
                .collect();
            assert_eq!(mann_kendall(&y).s, s_by_pairs(&y), "n = {n}");
        }
    }

    #[test]
    fn robust_slope_of_a_long_noisy_line() {
        let x: Vec<f64> = (0..1000).map(f64::from).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|v| {
                5.0 * v
                    + if (*v as u32).is_multiple_of(7) {
                        900.0
                    } else {
                        0.0
                    }
            })
            .collect();
        assert!((robust_slope(&x, &y) - 5.0).abs() < 0.05);
        assert_eq!(
            robust_slope(&x[..10], &y[..10]),
            theil_sen(&x[..10], &y[..10])
        );
    }

    #[test]
    fn long_pair_slope_of_rare_steps_is_near_the_rate() {
        // A step of 100 every 10 points: rate 10 per point.
        let x: Vec<f64> = (0..200).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 100.0 * (v / 10.0).floor()).collect();
        let s = long_pair_slope(&x, &y);
        assert!((s - 10.0).abs() < 0.5, "{s}");
    }

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn normal_cdf_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.96) - 0.025).abs() < 1e-4);
    }
}
