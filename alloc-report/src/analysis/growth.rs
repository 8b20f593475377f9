//! Growth of existing blocks: held memory (every closed epoch, before the
//! series too) that rises in steps while no new blocks carry it, a leak of
//! a collection that only grows. The rule is in the [module
//! docs](super#growth-of-existing-blocks) of `analysis`.

use alloc_snapshot::Snapshot;

use super::survivors::{survivors, Live};
use super::verdict::{Growth, GrowthKind, Verdict, VerdictKind};

/// The smallest rise over the window that counts as growth: one page.
pub(crate) const MIN_RISE: f64 = 4096.0;

/// Held memory of `s`: live bytes and blocks born in every closed epoch
/// (`< s.epoch`), including those before the series started.
pub(crate) fn held(s: &Snapshot) -> Live {
    survivors(s, 0)
}

/// What [`existing_blocks`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Found {
    pub(crate) bytes_per_cycle: f64,
    pub(crate) blocks_per_cycle: f64,
    pub(crate) rise: f64,
    pub(crate) steps: usize,
}

/// The rule of the [module docs](super#growth-of-existing-blocks) on held bytes `y` and blocks `n` at
/// cycles `x` (the whole run), with a trend window of the last `w` points.
/// `estimated`: sampled figures of a site (the blocks may rise by one, when
/// a block born before the series first grows inside it).
pub(crate) fn existing_blocks(
    y: &[f64],
    n: &[f64],
    x: &[f64],
    w: usize,
    estimated: bool,
) -> Option<Found> {
    let len = y.len().min(n.len()).min(x.len());
    if w < 2 || w > len {
        return None;
    }
    let ws = len - w;
    let (y, n, x) = (&y[..len], &n[..len], &x[..len]);
    let rise = y[len - 1] - y[ws];
    let span = x[len - 1] - x[ws];
    if !(rise >= MIN_RISE && span > 0.0) {
        return None;
    }
    let (mut ups, mut downs) = (0.0, 0.0);
    for d in y[ws..].windows(2).map(|p| p[1] - p[0]) {
        if d > 0.0 {
            ups += d;
        } else {
            downs -= d;
        }
    }
    if downs > ups / 8.0 {
        return None;
    }
    // Steps of at least 1/8 of the rise: (index after the step, size).
    let steps: Vec<(usize, f64)> = (1..len)
        .map(|k| (k, y[k] - y[k - 1]))
        .filter(|&(_, d)| d >= rise / 8.0)
        .collect();
    let [.., (before, d_prev), (last, d_last)] = steps[..] else {
        return None;
    };
    let since = steps.len().checked_sub(3).map_or(x[0], |i| x[steps[i].0]);
    let (gap_prev, gap_last) = (x[before] - since, x[last] - x[before]);
    if gap_prev > 0.0 && gap_last > 0.0 && d_last / gap_last < d_prev / gap_prev / 4.0 {
        // The last step came far later than the rate before it predicts:
        // growth that is slowing down to a stop (a capped table doubling
        // once more when deletions have left tombstones).
        return None;
    }
    let steps = steps.len();
    let extra = if estimated { 1.0 } else { 1.0 + n[ws] / 100.0 };
    if n[len - 1] > n[ws] + extra {
        return None;
    }
    Some(Found {
        bytes_per_cycle: rise / span,
        blocks_per_cycle: (n[len - 1] - n[ws]) / span,
        rise,
        steps,
    })
}

/// `v` (a verdict that is not a leak) turned into a leak of existing blocks
/// that grow, when the figures say so; `v` unchanged otherwise.
pub(crate) fn apply(v: Verdict, y: &[f64], n: &[f64], x: &[f64], w: usize) -> Verdict {
    if v.kind == VerdictKind::Leak {
        return v;
    }
    let Some(f) = existing_blocks(y, n, x, w, v.estimated) else {
        return v;
    };
    let kind = GrowthKind::ExistingBlocks;
    Verdict {
        kind: VerdictKind::Leak,
        bytes_per_cycle: f.bytes_per_cycle,
        blocks_per_cycle: f.blocks_per_cycle,
        reason: format!(
            "held bytes (born before the series too) rose {:.0} over the last {w} snapshots, \
             in steps ({} over the run), gave back less than 1/8 and no new blocks carry it: \
             a collection that only grows",
            f.rise, f.steps
        ),
        growth: Some(Growth {
            kind,
            bytes_per_cycle: f.bytes_per_cycle,
        }),
        ..v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Vec` of `elem`-byte items, one pushed per cycle, created empty
    /// before the series: its capacity in bytes after `len` pushes.
    fn vec_bytes(len: u64, elem: u64) -> f64 {
        if len == 0 {
            0.0
        } else {
            (len.next_power_of_two().max(4) * elem) as f64
        }
    }

    fn run(
        points: u64,
        every: u64,
        f: impl Fn(u64) -> (f64, f64),
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..=points).map(|k| (k * every) as f64).collect();
        let (y, n) = (0..=points).map(|k| f(k * every)).unzip();
        (y, n, x)
    }

    #[test]
    fn a_vec_pushed_every_cycle_grows_at_about_its_element_size() {
        let (y, n, x) = run(40, 500, |c| (vec_bytes(c, 8), 1.0));
        let f = existing_blocks(&y, &n, &x, 21, false).expect("growth");
        assert!(
            f.bytes_per_cycle >= 8.0 && f.bytes_per_cycle <= 16.0,
            "{f:?}"
        );
        assert_eq!(f.blocks_per_cycle, 0.0);
    }

    #[test]
    fn a_buffer_that_stopped_growing_is_not_growth() {
        // Grows to 4096 items by cycle 4096, then cleared and reused.
        let (y, n, x) = run(40, 500, |c| (vec_bytes(c.min(4096), 8), 1.0));
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None);
    }

    #[test]
    fn a_burst_released_again_is_not_growth() {
        let (y, n, x) = run(40, 500, |c| {
            let burst = (12_000..16_000).contains(&c);
            (
                if burst {
                    vec_bytes(c - 11_999, 8)
                } else {
                    64.0
                },
                1.0,
            )
        });
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None);
    }

    #[test]
    fn one_late_block_is_not_growth() {
        let (y, n, x) = run(
            40,
            500,
            |c| if c >= 15_000 { (1e6, 2.0) } else { (0.0, 1.0) },
        );
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None);
        let (y, n, x) = run(
            40,
            500,
            |c| if c >= 15_000 { (1e6, 1.0) } else { (0.0, 1.0) },
        );
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None, "one step");
    }

    #[test]
    fn a_table_that_doubles_once_more_long_after_it_filled_is_not_growth() {
        // Fills to 2048 buckets by cycle 1000, doubles once more at 12,000.
        let (y, n, x) = run(40, 500, |c| {
            let b = match c {
                0 => 0.0,
                1..=500 => 1024.0,
                501..=11_999 => 2048.0,
                _ => 4096.0,
            };
            (b * 17.0, 1.0)
        });
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None);
    }

    #[test]
    fn growth_carried_by_new_blocks_is_left_to_the_survivor_rule() {
        let (y, n, x) = run(40, 500, |c| (c as f64 * 64.0, c as f64));
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None);
    }

    #[test]
    fn noise_that_gives_back_is_not_growth() {
        let (y, n, x) = run(40, 500, |c| {
            (10_000.0 + ((c / 500) % 2) as f64 * 8192.0, 10.0)
        });
        assert_eq!(existing_blocks(&y, &n, &x, 21, false), None);
    }
}
