//! Which blocks are sampled, and what a sample records.
//!
//! Each thread's slot keeps a countdown of bytes. Every allocation takes its
//! size off it on the fast path (a load, a subtraction, a store); the
//! allocation that takes it below zero goes to the slow path and is sampled,
//! and a new countdown is drawn from an exponential distribution with the
//! configured mean. By the memorylessness of that distribution a block of
//! `size` bytes is sampled with probability `p = 1 - exp(-size / mean)`,
//! whatever came before it, so weighting each sample by `1 / p` gives
//! unbiased estimates of live bytes and blocks per site (the scheme of
//! jemalloc's and Go's heap profilers).
//!
//! Two rules make growth visible at the line that grows:
//!
//! - **A realloc is a sampling opportunity for its new size**, like an
//!   allocation of that size: it takes the new size off the countdown, and a
//!   block that was sampled before loses its record (the block moved to
//!   the current epoch; see the crate docs). So a collection's buffer is
//!   attributed to the `push` or `insert` that last grew it.
//! - **A block of at least [`always_sampled_from`] bytes (1/16 of the mean
//!   interval, 64 KiB at the default) is always sampled**, with weight 1,
//!   and does not touch the countdown. Its chance under the countdown would
//!   be at least 6%; a collection that only grows reaches such sizes in a
//!   few doublings, and a sampled series of its buffer would otherwise be
//!   a lottery (a 256 KiB buffer is drawn with probability 22% at 1 MiB).
//!   Such blocks are rare and cost a page fault per 4 KiB when touched, so
//!   a stack capture each adds little.
//!
//! Both keep the estimates unbiased: every block (or incarnation of a block
//! after a realloc) is drawn by exactly one rule, independently, and
//! weighted by the inverse of its chance under that rule.
//!
//! A sample captures the raw call stack ([`crate::stacks`]), interns it, and
//! records the block in [`crate::sampled`]; the block's tag becomes the
//! record's id with the [`SAMPLED`] bit, so its free goes straight to the
//! record, and every other free knows it has none.

use crate::counters::Slot;
#[cfg(doc)]
use crate::counters::SAMPLED;
use crate::sampled::{self, Inserted, Record};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering::*};

/// The default mean sampling interval in bytes: 256 KiB, the sparse half
/// of the default capture policy.
///
/// At the defaults a program samples about one block per 256 KiB
/// allocated until its snapshots show survivors, and then records every
/// allocation (the policy in `ARCHITECTURE.md`, "The default capture
/// policy"). The interval is what a program pays when nothing leaks, so
/// it is set by cost: with frame-pointer capture a sample (walk, intern,
/// record, and its free) costs about 0.15-0.3 µs (`alloc-core-all` in
/// `alloc-bench`), against 3 µs with the system unwinder. On
/// `alloc-bench`'s `single` (260 B per allocation on average) 256 KiB is
/// one sample per 1,000 allocations: 0.15-0.3 ns per alloc/free pair of
/// 20 ns, 1-1.5%. Without frame pointers
/// (a build without `-C force-frame-pointers=yes`) each sample costs the
/// unwinder's 3 µs, 3 ns per pair on `single` (15%).
///
/// What the sparse phase finds: a site allocating `b` bytes per cycle
/// gets a sample every `256 KiB / b` cycles (every 230 cycles for a
/// 1,136-byte leak): enough to name big leaks in a long soak, not a 16-byte
/// one. The dense phase names those: every allocation of a leaky soak is
/// recorded, exactly, from the third snapshot on.
pub const DEFAULT_INTERVAL: u64 = 256 * 1024;

/// Blocks from this size up may be always sampled (the fast paths check
/// this constant; the exact threshold is [`always_sampled_from`]).
pub(crate) const ALWAYS_SAMPLED_MIN: usize = 64 * 1024;

/// The size from which every block is sampled (weight 1) under the mode in
/// force: the larger of 64 KiB and 1/16 of the mean interval; `None` when
/// sampling is off (under `All` every block is sampled anyway).
pub fn always_sampled_from() -> Option<u64> {
    match interval() {
        0 => None,
        1 => Some(1),
        mean => Some((mean / 16).max(ALWAYS_SAMPLED_MIN as u64)),
    }
}

/// Whether a block of `size` bytes is sampled whatever the countdown says.
#[inline]
pub(crate) fn always_sampled(size: usize) -> bool {
    size >= ALWAYS_SAMPLED_MIN && always_sampled_from().is_some_and(|t| size as u64 >= t)
}

/// How a block came to be sampled, which sets its weight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Chance {
    /// The countdown ran out at it: weight `1 / (1 - exp(-size / mean))`,
    /// and a new countdown is drawn.
    Countdown,
    /// It is large enough to be always sampled ([`always_sampled`]): weight
    /// 1, and the countdown is left as it was.
    Always,
}

/// The environment variable that sets the sampling mode, read once, at the
/// first allocation: `off`, `all`, or a mean interval in bytes (`524288`,
/// `512KiB`, `4k`, `1M`).
pub const SAMPLE_ENV: &str = "ALLOC_CORE_SAMPLE";

/// The one sampling-mode enum lives in `alloc-snapshot`, which records it.
pub use alloc_snapshot::SampleMode;

/// Encoded mode: 0 off, 1 all, `n >= 2` the mean interval; `UNSET` until
/// the environment has been read.
static INTERVAL: AtomicU64 = AtomicU64::new(UNSET);
const UNSET: u64 = u64::MAX;
/// While sampling is off a thread looks at the mode again after this many
/// bytes, so it picks up a mode switched on by another thread even if it
/// missed the reset of its countdown.
const OFF_RECHECK: i64 = 64 << 20;

/// The environment variable that fixes the sampler's seed, read once, when
/// the first thread draws its first countdown: a decimal number or
/// `0x`-prefixed hexadecimal. Unset, each thread's generator is seeded from
/// the clock and the slot's address, and no two runs sample alike.
pub const SEED_ENV: &str = "ALLOC_CORE_SEED";

/// Where the seed comes from: [`SEED_UNREAD`] until the environment has been
/// read, then [`SEED_CLOCK`] or [`SEED_FIXED`] (the value in `SEED`).
static SEED_STATE: AtomicU8 = AtomicU8::new(SEED_UNREAD);
static SEED: AtomicU64 = AtomicU64::new(0);
/// Generators seeded so far under the current seed: the `n`-th thread to
/// draw gets stream `n`, so a run with a fixed seed whose threads first
/// allocate in the same order samples the same blocks.
static STREAMS: AtomicU64 = AtomicU64::new(0);
const SEED_UNREAD: u8 = 0;
const SEED_CLOCK: u8 = 1;
const SEED_FIXED: u8 = 2;

fn encode(mode: SampleMode) -> u64 {
    match mode {
        SampleMode::Off => 0,
        SampleMode::All => 1,
        SampleMode::Interval(n) => n.clamp(2, UNSET - 1),
    }
}

fn decode(v: u64) -> SampleMode {
    match v {
        0 => SampleMode::Off,
        1 => SampleMode::All,
        n => SampleMode::Interval(n),
    }
}

/// Sets the sampling mode for every thread. The calling thread uses it from
/// its next allocation; other threads from their next allocation too,
/// except one racing with this call, which may take until its current
/// countdown runs out (at most 64 MiB of its allocations when sampling was
/// off). Blocks already sampled keep their records and weights. Setting a
/// mode (here or with [`SAMPLE_ENV`]) turns the default policy's automatic
/// dense capture off for the rest of the process.
pub fn set_sampling(mode: SampleMode) {
    crate::policy::disable();
    INTERVAL.store(encode(mode), Relaxed);
    crate::registry::reset_countdowns();
}

/// Fixes the seed of every thread's sampling generator (`Some(seed)`), or
/// goes back to seeding from the clock (`None`), overriding [`SEED_ENV`].
///
/// Every thread reseeds at its next allocation and draws a fresh countdown,
/// so with a fixed seed a single-threaded program (or one whose threads
/// first allocate in a fixed order) samples exactly the same blocks on every
/// run: a statistical test that fails can be replayed. The `n`-th thread to
/// draw after this call gets the `n`-th stream of the seed. As with
/// [`set_sampling`], a thread racing with this call may keep its old stream
/// until its current countdown runs out.
pub fn set_sampling_seed(seed: Option<u64>) {
    // Streams restart before the new seed is published, so no thread that
    // reseeds in between shares a stream with another.
    STREAMS.store(0, Relaxed);
    match seed {
        Some(s) => {
            SEED.store(s, Relaxed);
            SEED_STATE.store(SEED_FIXED, Release);
        }
        None => SEED_STATE.store(SEED_CLOCK, Release),
    }
    crate::registry::reset_generators();
}

/// The fixed seed in force ([`set_sampling_seed`] or [`SEED_ENV`]), `None`
/// when generators are seeded from the clock.
pub fn sampling_seed() -> Option<u64> {
    match SEED_STATE.load(Acquire) {
        SEED_UNREAD => {
            seed_from_env();
            sampling_seed()
        }
        SEED_FIXED => Some(SEED.load(Relaxed)),
        _ => None,
    }
}

/// The sampling mode configured: what [`set_sampling`] set last, else what
/// [`SAMPLE_ENV`] said at start-up, else `Interval(DEFAULT_INTERVAL)` (the
/// defaults, under which every allocation is recorded while snapshots show
/// survivors; see the crate docs).
pub fn sampling() -> SampleMode {
    decode(configured())
}

/// The encoded mode set by code, the environment or the default.
#[inline]
fn configured() -> u64 {
    match INTERVAL.load(Relaxed) {
        UNSET => init_from_env(),
        v => v,
    }
}

/// The encoded mode in force now: the configured one, or the default
/// policy's capture while it has one ([`crate::policy`]: 1, every
/// allocation, or a graded interval past the dense limit).
#[inline]
fn interval() -> u64 {
    match configured() {
        v if v >= 2 => match crate::policy::capture() {
            0 => v,
            c => c,
        },
        v => v,
    }
}

/// Parses `ALLOC_CORE_SAMPLE` without allocating: `off` or `0`, `all` or
/// `1`, or a byte count with an optional `k`, `KiB`, `m`, `MiB`, `g`, `GiB`
/// suffix (binary multiples). `None` for anything else.
pub(crate) fn parse(s: &[u8]) -> Option<SampleMode> {
    let s = s.trim_ascii();
    if s.eq_ignore_ascii_case(b"off") || s == b"0" {
        return Some(SampleMode::Off);
    }
    if s.eq_ignore_ascii_case(b"all") || s == b"1" {
        return Some(SampleMode::All);
    }
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in &s[..digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    let unit = s[digits..].trim_ascii();
    let shift = match unit {
        b"" | b"b" | b"B" => 0,
        b"k" | b"K" | b"KiB" | b"kib" => 10,
        b"m" | b"M" | b"MiB" | b"mib" => 20,
        b"g" | b"G" | b"GiB" | b"gib" => 30,
        _ => return None,
    };
    let n = n.checked_mul(1 << shift)?;
    Some(match n {
        0 => SampleMode::Off,
        1 => SampleMode::All,
        n => SampleMode::Interval(n),
    })
}

/// Parses `ALLOC_CORE_SEED` without allocating: decimal, or hexadecimal
/// after `0x`. `None` for anything else.
pub(crate) fn parse_seed(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    let (digits, radix) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (s, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)?;
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

#[cold]
fn seed_from_env() {
    let (state, value) = match env_seed() {
        Some(v) => (SEED_FIXED, v),
        None => (SEED_CLOCK, 0),
    };
    SEED.store(value, Relaxed);
    // Only the first reader (or `set_sampling_seed`) decides.
    let _ = SEED_STATE.compare_exchange(SEED_UNREAD, state, Release, Relaxed);
}

#[cold]
fn init_from_env() -> u64 {
    // Both variables are read at the first allocation, once: the seed's
    // too, so `getenv` never runs later, when another thread may be
    // changing the environment.
    if SEED_STATE.load(Acquire) == SEED_UNREAD {
        seed_from_env();
    }
    let mode = match from_env() {
        Some(mode) => {
            crate::policy::disable();
            mode
        }
        None => SampleMode::Interval(DEFAULT_INTERVAL),
    };
    let v = encode(mode);
    match INTERVAL.compare_exchange(UNSET, v, Relaxed, Relaxed) {
        Ok(_) => v,
        Err(now) => now,
    }
}

#[cfg(not(miri))]
fn from_env() -> Option<SampleMode> {
    let mode = crate::sys::env_var(c"ALLOC_CORE_SAMPLE", parse_env)??;
    if mode.is_none() {
        let msg: &[u8] = b"alloc-core: ignoring ALLOC_CORE_SAMPLE: expected off, all or a byte count such as 512KiB; using the default policy\n";
        crate::sys::write_stderr(msg);
    }
    mode
}

#[cfg(miri)]
fn from_env() -> Option<SampleMode> {
    None
}

/// `ALLOC_CORE_SAMPLE`'s value: `None` when it is empty or blank (set but
/// empty, `ALLOC_CORE_SAMPLE= cmd`, means the defaults, quietly), else what
/// [`parse`] makes of it (`Some(None)`: not a mode, warned about).
#[cfg_attr(miri, allow(dead_code))]
fn parse_env(v: &[u8]) -> Option<Option<SampleMode>> {
    (!v.trim_ascii().is_empty()).then(|| parse(v))
}

#[cfg(not(miri))]
fn env_seed() -> Option<u64> {
    let seed = crate::sys::env_var(c"ALLOC_CORE_SEED", parse_seed)?;
    if seed.is_none() {
        let msg: &[u8] = b"alloc-core: ignoring ALLOC_CORE_SEED: expected a number such as 42 or 0x2a; seeding from the clock\n";
        crate::sys::write_stderr(msg);
    }
    seed
}

#[cfg(miri)]
fn env_seed() -> Option<u64> {
    None
}

/// The next random 64-bit number of the slot's generator (xorshift64*).
///
/// The allocation path's own generator, not the workspace's `fastrand`
/// (which tests and benchmarks use): its state is a field of the thread's
/// slot (no thread-local of its own), seeded per stream from
/// `ALLOC_CORE_SEED` so that a fixed seed samples the same blocks, and it
/// never allocates or panics: code on the allocation path stays
/// alloc-core's own, where those rules are checked.
fn next_random(slot: &Slot) -> u64 {
    let mut x = slot.rng.load(Relaxed);
    if x == 0 {
        x = seed(slot);
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    slot.rng.store(x, Relaxed);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn seed(slot: &Slot) -> u64 {
    let mut z = match sampling_seed() {
        // The stream number, spread by the golden ratio, picks one of the
        // seed's streams.
        Some(s) => {
            s ^ STREAMS
                .fetch_add(1, Relaxed)
                .wrapping_add(1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }
        None => (slot as *const Slot as u64) ^ now_ns().rotate_left(32),
    };
    // splitmix64 finaliser: spreads the few bits that differ.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// `CLOCK_MONOTONIC` in nanoseconds (a vDSO call: no allocation, no lock).
pub(crate) fn now_ns() -> u64 {
    crate::sys::monotonic_ns()
}

/// The countdown that means "test the next allocation against a fresh
/// countdown drawn under the mode in force then". A reset (a mode, seed or
/// policy switch), every-allocation capture and a leak scope leave it, so
/// that no allocation is sampled with a probability other than the one its
/// weight assumes (a plain 0 would sample the next allocation for certain
/// and weigh it `1 / p`). It is far below any size, so the fast path always
/// takes the slow path on it and `REDRAW - size` is still recognised
/// ([`is_redraw`]).
pub(crate) const REDRAW: i64 = i64::MIN / 2;

/// Whether a countdown (after the fast path took a size off it) is the
/// [`REDRAW`] marker.
fn is_redraw(countdown: i64) -> bool {
    countdown <= REDRAW / 2
}

/// A fresh countdown for `slot` under the mode in force.
fn draw(slot: &Slot) -> i64 {
    draw_under(slot, interval())
}

/// A fresh countdown for `slot` under the encoded mode `mode` (0 off, 1
/// all, else the mean interval): [`REDRAW`] in a leak scope or with every
/// allocation sampled (each allocation then takes the slow path and looks
/// at the mode again), [`OFF_RECHECK`] when off, else exponential with
/// mean `mode`.
fn draw_under(slot: &Slot, mode: u64) -> i64 {
    if slot.scope_depth.load(Relaxed) > 0 {
        return REDRAW;
    }
    match mode {
        0 => OFF_RECHECK,
        1 => REDRAW,
        mean => exponential(slot, mean),
    }
}

/// An exponential draw with mean `mean` bytes from `slot`'s generator.
fn exponential(slot: &Slot, mean: u64) -> i64 {
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
fn weight_of(size: usize, mean: u64) -> f64 {
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
    slot.countdown.store(draw(slot), Relaxed);
}

/// Called on the slow path when `slot`'s countdown ran out at a block of
/// `size` bytes at `addr` (or the block is always sampled: `chance`),
/// already counted for `epoch`. Samples it if the mode (or a leak scope)
/// says so and returns the block's tag: `epoch`, with [`SAMPLED`] when a
/// record was made. `owner` is the slot's index + 1.
pub(crate) fn on_alloc(
    slot: &Slot,
    owner: u32,
    (addr, epoch, size): (usize, u32, usize),
    chance: Chance,
) -> u32 {
    let scoped = slot.scope_depth.load(Relaxed) > 0;
    let mean = interval();
    if !scoped && mean == 0 {
        slot.countdown.store(OFF_RECHECK, Relaxed);
        return epoch;
    }
    let mut kept = slot.countdown.load(Relaxed);
    if is_redraw(kept) && !scoped && mean >= 2 {
        // After a reset or every-allocation capture: this allocation was
        // not drawn under the mode in force. Test it against a fresh
        // countdown, so that it is sampled with the probability its weight
        // assumes.
        let fresh = exponential(slot, mean);
        if chance == Chance::Always {
            kept = fresh;
        } else if fresh >= size as i64 {
            slot.countdown.store(fresh - size as i64, Relaxed);
            return epoch;
        }
    }
    // The record's slot is fetched while the stack is walked.
    sampled::prefetch_next(addr);
    // Allocations made while capturing (there should be none) must not be
    // sampled in turn.
    slot.countdown.store(i64::MAX, Relaxed);
    let weight = if scoped || mean == 1 || chance == Chance::Always {
        1.0
    } else {
        weight_of(size, mean)
    };
    let stack = slot.last_stack.capture();
    let seq = if scoped {
        let s = slot.scope_seq.load(Relaxed);
        slot.scope_seq.store(s + 1, Relaxed);
        s
    } else {
        0
    };
    let inserted = sampled::insert(Record {
        addr,
        size,
        birth_ticks: crate::clock::ticks(),
        seq,
        epoch,
        stack,
        weight: weight as f32,
        owner: if scoped { owner } else { 0 },
    });
    if !scoped {
        crate::policy::startup_sampled();
    }
    if let Inserted::HalfFull(_, len) = inserted {
        if !scoped && crate::policy::capture() != 0 {
            // The policy's capture fills the table between snapshots: step
            // to a sparser capture here rather than at the next snapshot,
            // so that later samples are not dropped.
            crate::policy::shard_filled(len as usize);
        }
    }
    crate::counters::bump_u64(&slot.sampled, 1);
    // `weight >= 1`: rounded without a call to libm's `round`.
    slot.hists
        .alloc_size
        .record_owned(size as u64, (weight + 0.5) as u64);
    let next = match chance {
        Chance::Always if !scoped => kept,
        // Every allocation recorded: the next one takes the slow path and
        // looks at the mode again (`draw_under` would say the same).
        _ if mean == 1 => REDRAW,
        _ => draw(slot),
    };
    slot.countdown.store(next, Relaxed);
    match inserted.id() {
        Some(id) => sampled::tag(id),
        None => epoch,
    }
}

/// Called when the block at `addr`, whose tag `tag` has [`SAMPLED`], is
/// freed: drops its record, counts its lifetime into `own` (the freeing
/// thread's slot) or, for a thread without a slot of its own, into the
/// shared histograms, and returns its birth epoch (`None` if the tag names
/// no record of this block, which the table's invariant rules out).
pub(crate) fn on_free(tag: u32, addr: usize, own: Option<&Slot>) -> Option<u32> {
    let r = sampled::remove_freed(sampled::id_of(tag), addr)?;
    let epochs = u64::from(crate::epoch::epoch().saturating_sub(r.epoch));
    // A leak scope's record keeps no birth time (`sampled::Record`).
    let ns = r
        .birth_ticks
        .map(|birth| crate::clock::elapsed_ns(birth, crate::clock::ticks()));
    match own {
        Some(s) => {
            s.hists.lifetime_epochs.record_owned(epochs, 1);
            if let Some(ns) = ns {
                s.hists.lifetime_ns.record_owned(ns, 1);
            }
        }
        None => {
            let h = &crate::histogram::SHARED;
            h.lifetime_epochs.record(epochs, 1);
            if let Some(ns) = ns {
                h.lifetime_ns.record(ns, 1);
            }
        }
    }
    Some(r.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_variable_parses_modes_and_sizes() {
        assert_eq!(parse(b"off"), Some(SampleMode::Off));
        assert_eq!(parse(b"OFF"), Some(SampleMode::Off));
        assert_eq!(parse(b"0"), Some(SampleMode::Off));
        assert_eq!(parse(b"all"), Some(SampleMode::All));
        assert_eq!(parse(b"1"), Some(SampleMode::All));
        assert_eq!(parse(b"4096"), Some(SampleMode::Interval(4096)));
        assert_eq!(parse(b" 512KiB "), Some(SampleMode::Interval(512 << 10)));
        assert_eq!(parse(b"512k"), Some(SampleMode::Interval(512 << 10)));
        assert_eq!(parse(b"2M"), Some(SampleMode::Interval(2 << 20)));
        assert_eq!(parse(b"1GiB"), Some(SampleMode::Interval(1 << 30)));
        for bad in [
            &b""[..],
            b"fast",
            b"12 parsecs",
            b"-5",
            b"99999999999999999999",
            b"1.5M",
        ] {
            assert_eq!(parse(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }

    #[test]
    fn an_empty_variable_means_the_defaults_and_a_bad_one_is_reported() {
        assert_eq!(parse_env(b""), None);
        assert_eq!(parse_env(b"  "), None);
        assert_eq!(parse_env(b"fast"), Some(None));
        assert_eq!(parse_env(b"all"), Some(Some(SampleMode::All)));
    }

    #[test]
    fn seeds_parse_as_decimal_or_hex() {
        assert_eq!(parse_seed(b"42"), Some(42));
        assert_eq!(parse_seed(b" 0x2a "), Some(42));
        assert_eq!(parse_seed(b"0XFF"), Some(255));
        assert_eq!(parse_seed(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"0x",
            b"-1",
            b"4.2",
            b"seven",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_seed(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }

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
        slot.scope_depth.store(1, Relaxed);
        assert_eq!(draw_under(&slot, 1000), REDRAW, "a leak scope records all");
        assert!(is_redraw(REDRAW - (1 << 40)) && !is_redraw(-(1 << 40)));
        slot.scope_depth.store(0, Relaxed);

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
