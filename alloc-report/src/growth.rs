//! Growth of blocks that already exist: the leak of a collection that only
//! grows (a `Vec` pushed to, a `HashMap` inserted into, a `String` appended
//! to), which the survivor rule of [`crate::analysis::classify`] does not
//! see.
//!
//! alloc-core counts a `realloc` as the block leaving its epoch and joining
//! the current one, and a hash table grows by allocating a bigger table and
//! freeing the old one. So a collection that only grows shows as *held*
//! memory (live, born in any closed epoch, including before the series
//! started) that rises in steps while the number of held blocks does not:
//! each doubling of its capacity replaces one block by a bigger one. It
//! has one birth epoch at any time (that of its last growth), so the
//! survivor rule, which wants survivors born in several epochs of the
//! window, calls it a plateau.
//!
//! # The rule
//!
//! Over the whole run the held bytes `y` and blocks `n` at each snapshot,
//! and the same trend window as the survivor rule (the later part of the
//! run). Growth of existing blocks is a leak when all of these hold:
//!
//! - **it keeps growing in the later part of the run**: the held bytes at
//!   the end of the window exceed those at its start by at least
//!   [`MIN_RISE`] bytes, and the window gives back at most an eighth of
//!   what it gained (falls between snapshots sum to at most 1/8 of the
//!   rises): a buffer released after a burst (`shrink_to_fit`) gives it
//!   all back;
//! - **it grew before, at a rate it keeps**: at least two steps of at least
//!   1/8 of that rise over the run, so one buffer allocated once, late, is
//!   not growth (a collection that doubles makes steps of half its size
//!   each time); and the last step's size over the cycles since the step
//!   before is at least a quarter of that of the step before (a collection
//!   that doubles at a steady rate waits twice as long for each step twice
//!   as large: the same rate; a capped hash table that doubles once more,
//!   long after it filled, when deletions have left tombstones, does not);
//! - **no new blocks carry it**: the held blocks at the end of the window
//!   are at most those at its start plus one (plus 1% for exact counts of
//!   a whole program), so this is existing blocks that grow; new blocks
//!   that survive are the survivor rule's business.
//!
//! A cache or buffer that reached its size before the window (a `Vec`
//! cleared and reused, a map capped at N entries) makes no rise in it. A
//! collection that doubled only before the window and not inside it cannot
//! be told from one that stopped; a soak long enough to double it again
//! shows it.
//!
//! The reported bytes per cycle is the rise over the window divided by its
//! cycles: for a collection that doubles, the growth of its capacity,
//! between one and two times (over the load factor, for a hash table) the
//! bytes the program adds per cycle. The verdict names the kind of growth
//! ([`GrowthKind`]).
//!
//! Sites: the same rule on a site's estimates. Blocks of 64 KiB and more are
//! always sampled (weight 1) and a realloc is sampled at the line that
//! resized the block, so a collection past that size is seen, exactly, at
//! the `push` or `insert` that grows it. A small block sampled with a large
//! weight adds many estimated blocks at once and is never taken for growth.

use serde::Serialize;

use crate::analysis::{Live, Verdict, VerdictKind};
use alloc_snapshot::Snapshot;

/// The smallest rise over the window that counts as growth: one page.
pub const MIN_RISE: f64 = 4096.0;

/// Which kind of growth a leak is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrowthKind {
    /// New blocks, born in many epochs, that survive (the survivor rule).
    NewBlocks,
    /// Blocks that already exist grow (or are replaced by bigger ones):
    /// a collection that only grows.
    ExistingBlocks,
}

impl GrowthKind {
    /// A few words for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GrowthKind::NewBlocks => "new blocks that survive",
            GrowthKind::ExistingBlocks => "existing blocks that grow",
        }
    }
}

/// The growth behind a leak verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Growth {
    /// New surviving blocks, or existing blocks that grow.
    pub kind: GrowthKind,
    /// Bytes per cycle of that growth.
    pub bytes_per_cycle: f64,
}

/// The kind of growth of a leak verdict and its bytes per cycle, between
/// `before` and `after`, for text reports ("" when `v` is not a leak).
pub fn note(v: &Verdict, before: &str, after: &str) -> String {
    v.growth.map_or(String::new(), |g| {
        format!(
            "{before}{}, {:.1} bytes/cycle{after}",
            g.kind.as_str(),
            g.bytes_per_cycle
        )
    })
}

/// Held memory of `s`: live bytes and blocks born in every closed epoch
/// (`< s.epoch`), including those before the series started.
pub(crate) fn held(s: &Snapshot) -> Live {
    crate::analysis::survivors(s, 0)
}

/// What [`existing_blocks`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Found {
    pub(crate) bytes_per_cycle: f64,
    pub(crate) blocks_per_cycle: f64,
    pub(crate) rise: f64,
    pub(crate) steps: usize,
}

/// The rule of the [module docs](self) on held bytes `y` and blocks `n` at
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
