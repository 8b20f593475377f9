//! Checking sampled estimates against bounds derived from the samples they
//! rest on, with a seed that makes every failure replayable.
//!
//! alloc-core samples a block of `s` bytes with probability
//! `p = 1 - exp(-s / I)` (mean interval `I`) and weights it by `1 / p`, so an
//! estimate of `B` true bytes is a Horvitz-Thompson sum with variance
//! `sum of s^2 (1 - p) / p` over the blocks. Since `(1 - p) / p =
//! 1 / (exp(s / I) - 1) <= I / s`, that variance is at most `I * B` for any
//! mix of sizes: the standard error of a byte estimate is at most
//! `sqrt(I * B)`, relative `1 / sqrt(B / I)`, one over the root of the
//! number of samples the estimate expects to rest on. Blocks alike give the
//! exact figure, [`sd_blocks_of`]. A check passes when the error is within
//! [`Z`] standard errors; every check prints one `stat:` line (the figures,
//! the bound, their ratio and the seed) that `tests/repeat-statistical`
//! collects over many seeds. Also here: the site look-up and the
//! snapshot step that the in-process soaks share ([`site_live`],
//! [`symbolised`], [`push_snapshot`]).

use alloc_core::Snapshot;
use alloc_snapshot::SnapshotFile;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Standard errors a sampled estimate may be off before a check fails:
/// about one failure in 1.7 million checks for a normal error.
pub const Z: f64 = 5.0;

/// The seed tests use when `ALLOC_CORE_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x5eed;

static SEED: AtomicU64 = AtomicU64::new(DEFAULT_SEED);

/// Fixes this process's sampling seed: `ALLOC_CORE_SEED` if set (alloc-core
/// read it at the first allocation), else [`DEFAULT_SEED`]. Returns it;
/// pass it to child processes with [`seed_env`].
pub fn fix_seed() -> u64 {
    let seed = match alloc_core::sampling_seed() {
        Some(s) => s,
        None => {
            alloc_core::set_sampling_seed(Some(DEFAULT_SEED));
            DEFAULT_SEED
        }
    };
    SEED.store(seed, Relaxed);
    seed
}

/// The seed [`fix_seed`] fixed, as `ALLOC_CORE_SEED`'s value.
pub fn seed_env() -> String {
    SEED.load(Relaxed).to_string()
}

/// Upper bound on the standard error of an estimate of `bytes` true bytes
/// sampled at a mean interval of `interval` bytes, whatever the block sizes.
pub fn sd_bytes(interval: u64, bytes: f64) -> f64 {
    (interval as f64 * bytes).sqrt()
}

/// The standard errors of the estimated (bytes, blocks) of `n` blocks of
/// `size` bytes each, sampled at a mean interval of `interval` bytes.
pub fn sd_blocks_of(interval: u64, n: u64, size: u64) -> (f64, f64) {
    let p = -(-(size as f64) / interval as f64).exp_m1();
    let blocks = (n as f64 * (1.0 - p) / p).sqrt();
    (blocks * size as f64, blocks)
}

/// Checks that `estimate` is within [`Z`] standard errors `sd` of `truth`;
/// prints a `stat:` line either way and panics (naming the seed to replay
/// with) when it is not.
pub fn check(name: &str, estimate: f64, truth: f64, sd: f64) {
    let error = (estimate - truth).abs();
    let bound = Z * sd;
    let seed = SEED.load(Relaxed);
    crate::say!(
        "stat: {name} estimate={estimate:.1} truth={truth:.1} error={error:.1} \
         bound={bound:.1} ratio={:.3} seed={seed}",
        error / bound
    );
    assert!(
        error <= bound,
        "{name}: estimated {estimate:.1}, true {truth:.1}: off by {error:.1}, more than \
         {Z} standard errors ({bound:.1}); replay with ALLOC_CORE_SEED={seed}"
    );
}

/// Estimated (bytes, blocks, samples) of the sites born in `epoch` whose
/// label contains `needle` (for example `"this_file.rs:42 "`).
pub fn site_live(s: &Snapshot, epoch: u32, needle: &str) -> (f64, f64, u64) {
    s.sites
        .iter()
        .filter(|l| l.epoch == epoch)
        .filter(|l| {
            s.stack(l.stack)
                .is_some_and(|st| st.label().contains(needle))
        })
        .fold((0.0, 0.0, 0), |a, l| {
            (a.0 + l.bytes, a.1 + l.blocks, a.2 + l.samples)
        })
}

/// A snapshot, symbolised in-process (both in the tool's scope).
pub fn symbolised() -> Snapshot {
    let mut s = alloc_core::snapshot();
    alloc_core::symbolize(&mut s);
    s
}

/// Closes the epoch, takes a symbolised snapshot and appends it to
/// `series` (grown in the tool's scope) with `cycles` done: one step of an
/// in-process soak.
pub fn push_snapshot(series: &mut Vec<SnapshotFile>, cycles: u64) {
    alloc_core::advance_epoch();
    let s = symbolised();
    alloc_core::untracked(|| {
        series.push(SnapshotFile {
            cycles: Some(cycles),
            snapshot: s,
        })
    });
}
