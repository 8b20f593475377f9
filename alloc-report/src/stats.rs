//! Robust trend statistics: the Theil–Sen slope and the Mann–Kendall test.
//!
//! Both are rank-based, so one outlier snapshot (a burst of work caught in
//! flight) moves them little. Both are O(n²) in the number of points, which
//! is fine for the few thousand snapshots a soak run writes.

/// The Theil–Sen estimator: the median of the slopes of all point pairs with
/// different `x`. Returns 0 when fewer than two distinct `x` exist.
pub fn theil_sen(x: &[f64], y: &[f64]) -> f64 {
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

/// The median of `v` (0 when empty); reorders `v`.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The result of a Mann–Kendall trend test.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MannKendall {
    /// The statistic S: pairs going up minus pairs going down.
    pub s: i64,
    /// The normal score of S, with continuity and tie correction.
    pub z: f64,
    /// One-sided p-value for "no trend" against "increasing".
    pub p_increasing: f64,
}

/// The Mann–Kendall test on a series in time order.
pub fn mann_kendall(y: &[f64]) -> MannKendall {
    let n = y.len();
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            s += match y[j].total_cmp(&y[i]) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    // Variance with the correction for tied groups.
    let mut sorted = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j.max(i + 1);
    }
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
pub fn normal_cdf(z: f64) -> f64 {
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

    #[test]
    fn normal_cdf_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.96) - 0.025).abs() < 1e-4);
    }
}
