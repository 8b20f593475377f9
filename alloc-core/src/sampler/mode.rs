//! The sampling mode: off, every allocation, or a mean interval in
//! bytes ([`set_sampling`], `ALLOC_CORE_SAMPLE`), the seed of the
//! per-thread generators ([`set_sampling_seed`], `ALLOC_CORE_SEED`), the
//! mode in force ([`interval`]: the configured one or the capture
//! policy's), and the sizes that are always sampled. Both variables are
//! parsed without allocating, once, at the first allocation.

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

/// The number of the next generator stream under the fixed seed (from 0).
pub(super) fn next_stream() -> u64 {
    STREAMS.fetch_add(1, Relaxed)
}

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
    crate::sampler::policy::disable();
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
/// policy's capture while it has one ([`super::policy`]: 1, every
/// allocation, or a graded interval past the dense limit).
#[inline]
pub(crate) fn interval() -> u64 {
    match configured() {
        v if v >= 2 => match crate::sampler::policy::capture() {
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
            crate::sampler::policy::disable();
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

fn from_env() -> Option<SampleMode> {
    read_env(
        c"ALLOC_CORE_SAMPLE",
        parse_env,
        b"alloc-core: ignoring ALLOC_CORE_SAMPLE: expected off, all or a byte count such as 512KiB; using the default policy\n",
    )
}

/// `ALLOC_CORE_SAMPLE`'s value: `None` when it is empty or blank (set but
/// empty, `ALLOC_CORE_SAMPLE= cmd`, means the defaults, quietly), else what
/// [`parse`] makes of it (`Some(None)`: not a mode, warned about).
fn parse_env(v: &[u8]) -> Option<Option<SampleMode>> {
    (!v.trim_ascii().is_empty()).then(|| parse(v))
}

fn env_seed() -> Option<u64> {
    read_env(
        c"ALLOC_CORE_SEED",
        |v| Some(parse_seed(v)),
        b"alloc-core: ignoring ALLOC_CORE_SEED: expected a number such as 42 or 0x2a; seeding from the clock\n",
    )
}

/// The environment variable `name` through `parse`: `None` when it is
/// unset or `parse` says to ignore it (`None`); a value `parse` refuses
/// (`Some(None)`) is reported on stderr with `warning`. Neither allocates.
/// Under Miri (isolated from the environment) always `None`.
fn read_env<T>(
    name: &core::ffi::CStr,
    parse: impl FnOnce(&[u8]) -> Option<Option<T>>,
    warning: &[u8],
) -> Option<T> {
    #[cfg(miri)]
    {
        let _ = (name, parse, warning);
        None
    }
    #[cfg(not(miri))]
    {
        let value = crate::sys::env_var(name, parse)??;
        if value.is_none() {
            crate::sys::write_stderr(warning);
        }
        value
    }
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
}
