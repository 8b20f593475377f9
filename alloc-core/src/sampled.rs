//! The sampled-block table: one record per live sampled block, by address.
//!
//! A block gets a record when it is sampled (see [`crate::sampling`]) and its
//! tag carries [`crate::counters::SAMPLED`]; the record goes when the block is
//! freed. Only blocks with that tag bit ever look here, so unsampled frees
//! never touch the table.
//!
//! The table is [`SHARDS`] open-addressing hash tables (linear probing,
//! backward-shift deletion, no tombstones), each behind its own spin lock
//! (held for one probe sequence or one resize: no allocation, no call out
//! but `mmap`/`munmap`). A shard starts empty and takes memory from the
//! operating system ([`crate::os_mem`]) as it fills: 64 records, doubling
//! whenever it is half full (short probes: with every allocation recorded a
//! probe is most of a sample's cost), up to a bound, which fills to 7/8.
//! So the table's memory follows the number of live sampled blocks (about
//! 64 bytes each at worst: a record is stored in 32 bytes, [`packed`]),
//! within a bound however many blocks are sampled; past it a sample is
//! dropped (counted in [`DROPPED_FULL`]) and its block stays unsampled. The
//! bound:
//!
//! - **At the defaults** (while [`crate::policy`] decides), in bytes:
//!   [`DEFAULT_TABLE_BYTES`], 6 MiB, so a shard grows to
//!   [`DEFAULT_SHARD_SLOTS`] (8,192 slots of 32-byte records: 4 MiB in
//!   all, the largest power of two within the bound). The policy's
//!   dense capture stops at [`DENSE_LIMIT`] records (3,584 a shard, under
//!   half of that, so no shard doubles during dense capture); the sparse
//!   samples taken after it (one per 256 KiB the program leaks) fill the
//!   shards on towards 7/8 without mapping more. A 1,000,000-cycle soak of
//!   the leaky demo server ends at about 61,300 records (3,830 a shard on
//!   average, near the 4,096 at which a shard used to double to 16,384
//!   slots, on the way to 12 MiB of 48-byte records in a longer soak).
//! - **With a mode set** (every allocation, or an interval):
//!   [`SHARD_SLOTS`] a shard, `SHARDS * SHARD_SLOTS * 32` = 8 MiB. It was
//!   8,192 slots a shard until 2026-12-01: `alloc-bench`'s `server` in
//!   every-allocation mode holds about 135,000 live blocks, beyond the
//!   114,688 records that allowed, so its shards sat at 7/8 full, where
//!   linear probing's runs are long (a remove scanned about 400
//!   instructions of run), and samples were dropped.
//!
//! The bound at the defaults is what naming leaks at the defaults needs: the
//! leak cases of `tests/tests/leak_cases.rs` (two blocks a cycle over 20,000
//! cycles) lose their 10% accuracy with half the dense limit (17.7 B/cycle
//! for 40 at 28,672 records, measured 2026-12-02).

use crate::lock::lock;
use crate::os_mem;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use packed::Packed;
use spin::mutex::SpinMutex;

mod packed;

/// Number of independently locked shards (a power of two).
pub(crate) const SHARDS: usize = 16;
/// Records per shard (a power of two).
pub(crate) const SHARD_SLOTS: usize = 16384;
/// A shard refuses new records beyond this many (with a mode set; 7/8 of
/// [`DEFAULT_SHARD_SLOTS`] at the defaults).
const MAX_FILL: usize = SHARD_SLOTS / 8 * 7;
/// Live sampled blocks the table holds at most (with a mode set).
pub(crate) const CAPACITY: usize = SHARDS * MAX_FILL;

/// What is remembered about one sampled block.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct Record {
    /// The block's address; 0 marks an empty slot.
    pub(crate) addr: usize,
    /// The size the program asked for (updated by realloc).
    pub(crate) size: usize,
    /// [`crate::clock::ticks`] at allocation; 0 for a block recorded in a
    /// leak scope (`owner != 0`), whose stored record keeps `seq` there
    /// ([`packed`]).
    pub(crate) birth_ticks: u64,
    /// The leak-scope sequence number (meaningful when `owner != 0`).
    pub(crate) seq: u64,
    /// Birth epoch (without the sampled bit).
    pub(crate) epoch: u32,
    /// Stack id in [`crate::stacks`] (0: the overflow stack).
    pub(crate) stack: u32,
    /// Sampling weight: the number of blocks like this one the sample
    /// stands for (1 when every allocation is recorded).
    pub(crate) weight: f32,
    /// Slot index + 1 of the thread whose leak scope recorded the block, or
    /// 0 when it was sampled outside any scope.
    pub(crate) owner: u32,
}

pub(crate) struct Shard {
    len: usize,
    /// Slots mapped at `slots` (0, or a power of two up to SHARD_SLOTS).
    cap: usize,
    slots: *mut Packed,
}

// SAFETY: `slots` is owned memory only touched under the shard's lock.
unsafe impl Send for Shard {}

/// Slots of a shard's first mapping.
const MIN_SLOTS: usize = 64;

/// The sampled-block table's bound at the defaults, in bytes of records.
pub(crate) const DEFAULT_TABLE_BYTES: usize = 6 << 20;
/// Slots a shard grows to at the defaults: the largest power of two whose
/// records, over all shards, fit in [`DEFAULT_TABLE_BYTES`].
pub(crate) const DEFAULT_SHARD_SLOTS: usize = {
    let fit = DEFAULT_TABLE_BYTES / SHARDS / size_of::<Packed>();
    let pow2 = 1 << (usize::BITS - 1 - fit.leading_zeros());
    if pow2 < SHARD_SLOTS {
        pow2
    } else {
        SHARD_SLOTS
    }
};

/// Slots a shard may grow to now: [`DEFAULT_SHARD_SLOTS`] while the default
/// policy decides, [`SHARD_SLOTS`] once a mode was set.
fn slot_limit() -> usize {
    if crate::policy::auto() {
        DEFAULT_SHARD_SLOTS
    } else {
        SHARD_SLOTS
    }
}

impl Shard {
    fn slots(&mut self) -> &mut [Packed] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: `slots` maps `cap` records, owned by this shard, which the
        // caller has locked.
        unsafe { core::slice::from_raw_parts_mut(self.slots, self.cap) }
    }

    /// Doubles the capacity (or maps the first slots). False when at the
    /// maximum or the system refused memory.
    fn grow(&mut self) -> bool {
        let new_cap = if self.cap == 0 {
            MIN_SLOTS
        } else {
            self.cap * 2
        };
        if new_cap > SHARD_SLOTS {
            return false;
        }
        let p = os_mem::map_zeroed(new_cap * size_of::<Packed>()).cast::<Packed>();
        if p.is_null() {
            return false;
        }
        // SAFETY: freshly mapped, zeroed (all-zero is the empty record),
        // `new_cap` records, not shared yet.
        let new = unsafe { core::slice::from_raw_parts_mut(p, new_cap) };
        for r in self.slots().iter().filter(|r| r.addr != 0) {
            let mut i = home(r.addr).1 & (new_cap - 1);
            while new[i].addr != 0 {
                i = (i + 1) & (new_cap - 1);
            }
            new[i] = *r;
        }
        if self.cap != 0 {
            // SAFETY: the old slots came from `map_zeroed` with this size;
            // nothing refers to them any more.
            unsafe { os_mem::unmap(self.slots.cast(), self.cap * size_of::<Packed>()) };
        }
        self.slots = p;
        self.cap = new_cap;
        true
    }
}

/// A shard and its number of records, alone on a cache line: threads
/// recording into different shards do not share lines.
#[repr(align(64))]
struct Cell {
    shard: SpinMutex<Shard>,
    /// `shard.len`, readable without the lock (written under it, with a
    /// plain store: no read-modify-write on the sampling path).
    len: AtomicU64,
    /// `shard.slots` and `shard.cap - 1` (0 before the first mapping),
    /// written under the lock when the shard grows and read without it
    /// by [`prefetch`] only, which may see one without the other: a
    /// prefetch of a wrong address is harmless.
    slots_hint: AtomicUsize,
    mask_hint: AtomicUsize,
}

/// Empty shards: no memory until the first sample.
static TABLE: [Cell; SHARDS] = [const {
    Cell {
        shard: SpinMutex::new(Shard {
            len: 0,
            cap: 0,
            slots: core::ptr::null_mut(),
        }),
        len: AtomicU64::new(0),
        slots_hint: AtomicUsize::new(0),
        mask_hint: AtomicUsize::new(0),
    }
}; SHARDS];

/// Bytes of records mapped now, over all shards (for `ToolUsage`).
pub(crate) static MAPPED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Live records, over all shards (a sum of relaxed loads: off by the
/// records being inserted or removed meanwhile).
pub(crate) fn live() -> u64 {
    TABLE.iter().map(|c| c.len.load(Relaxed)).sum()
}

/// A shard with at least this many records counts as half full for the
/// default policy (see [`Inserted`]): half of 7/8 of
/// [`DEFAULT_SHARD_SLOTS`] (3,584 of 8,192), so that a shard stops dense
/// capture before it would double.
const HALF_FULL: usize = DEFAULT_SHARD_SLOTS / 16 * 7;
/// Live records at which the default policy stops dense capture
/// ([`crate::policy`]): every shard [`HALF_FULL`].
pub(crate) const DENSE_LIMIT: usize = SHARDS * HALF_FULL;

/// What [`insert`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Inserted {
    /// Recorded.
    Yes,
    /// Recorded, and its shard now holds at least [`HALF_FULL`] records,
    /// as the whole table is about to (addresses hash evenly over the
    /// shards): the default policy's cue to stop dense capture.
    HalfFull,
    /// Not recorded: the shard is full.
    No,
}
/// Samples refused because their shard was full (or, which no real block
/// can be, too large to record: [`packed`]).
pub(crate) static DROPPED_FULL: AtomicU64 = AtomicU64::new(0);

/// The shard of an address and its hash within the shard (masked by the
/// shard's capacity to give its home slot).
#[inline]
fn home(addr: usize) -> (usize, usize) {
    let h = ((addr as u64) >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 60) as usize & (SHARDS - 1), (h >> 32) as usize)
}

/// Starts fetching the cache line where the record of the block at `addr`
/// is looked for first, so that the miss (the table is larger than the
/// caches when many blocks are recorded) overlaps with the work done
/// before [`insert`] or [`remove`]: the stack capture, the counting of a
/// free. Reads no record and takes no lock.
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    let (shard, h) = home(addr);
    let cell = &TABLE[shard];
    let mask = cell.mask_hint.load(Relaxed);
    if mask != 0 {
        let at = cell.slots_hint.load(Relaxed) + (h & mask) * size_of::<Packed>();
        // The record (which may straddle two lines) and the next record's
        // key, which a removal reads: at most two lines, holding the first
        // and the last of those bytes.
        prefetch_line(at);
        prefetch_line(at + size_of::<Packed>() + size_of::<usize>() - 1);
    }
}

/// Asks the CPU to bring the cache line at `addr` in: no effect the
/// program can see, and no fault whatever the address.
#[inline(always)]
fn prefetch_line(addr: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetchw` is a hint that reads nothing the program sees and
    // never faults, whatever the address (on CPUs without it, the opcode is
    // a no-op).
    unsafe {
        core::arch::asm!("prefetchw [{}]", in(reg) addr, options(nostack, readonly, preserves_flags));
    }
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    // SAFETY: as above: `prfm` is a hint that never faults.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{}]", in(reg) addr, options(nostack, readonly, preserves_flags));
    }
    #[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let _ = addr;
}

/// Adds `r` (keyed by `r.addr`, which must not be 0); see [`Inserted`]. A
/// stale record at the same address (which cannot outlive its block, but
/// costs nothing to tolerate) is replaced.
pub(crate) fn insert(r: Record) -> Inserted {
    let Some(r) = Packed::of(&r) else {
        DROPPED_FULL.fetch_add(1, Relaxed);
        return Inserted::No;
    };
    let (shard, h) = home(r.addr);
    let cell = &TABLE[shard];
    let limit = slot_limit();
    let mut s = lock(&cell.shard);
    if s.len + 1 > s.cap / 2 && (s.cap < limit || s.len + 1 > s.cap / 8 * 7) {
        let before = s.cap;
        if s.cap < limit && s.grow() {
            let added = (s.cap - before) * size_of::<Packed>();
            MAPPED_BYTES.fetch_add(added as u64, Relaxed);
            cell.slots_hint.store(s.slots.addr(), Relaxed);
            cell.mask_hint.store(s.cap - 1, Relaxed);
        } else if s.len >= s.cap / 8 * 7 {
            drop(s);
            DROPPED_FULL.fetch_add(1, Relaxed);
            return Inserted::No;
        }
    }
    let mask = s.cap - 1;
    let mut i = h & mask;
    let slots = s.slots();
    loop {
        if slots[i].addr == r.addr {
            slots[i] = r;
            return Inserted::Yes;
        }
        if slots[i].addr == 0 {
            break;
        }
        i = (i + 1) & mask;
    }
    slots[i] = r;
    s.len += 1;
    let len = s.len;
    cell.len.store(len as u64, Relaxed);
    drop(s);
    if len >= HALF_FULL {
        Inserted::HalfFull
    } else {
        Inserted::Yes
    }
}

/// Takes the record of the block at `addr` out of the table, if it has one.
pub(crate) fn remove(addr: usize) -> Option<Record> {
    remove_with(addr, Packed::record)
}

/// What the free of a sampled block needs of its record.
pub(crate) struct Freed {
    /// Birth epoch.
    pub(crate) epoch: u32,
    /// Birth time, `None` for a block recorded in a leak scope ([`packed`]).
    pub(crate) birth_ticks: Option<u64>,
}

/// [`remove`] for a free: only the fields it needs are read out.
pub(crate) fn remove_freed(addr: usize) -> Option<Freed> {
    remove_with(addr, Packed::freed)
}

/// Takes the record of the block at `addr` out of the table, if it has one,
/// and returns what `read` makes of it.
#[inline(always)]
fn remove_with<T>(addr: usize, read: impl FnOnce(&Packed) -> T) -> Option<T> {
    let (shard, h) = home(addr);
    let cell = &TABLE[shard];
    let mut s = lock(&cell.shard);
    if s.cap == 0 {
        return None;
    }
    let mask = s.cap - 1;
    let slots = s.slots();
    let mut i = h & mask;
    loop {
        let a = slots[i].addr;
        if a == addr {
            break;
        }
        if a == 0 {
            return None;
        }
        i = (i + 1) & mask;
    }
    let found = read(&slots[i]);
    // Backward-shift deletion: pull later records of the probe run into the
    // hole when their home is at or before it, so lookups never need
    // tombstones.
    let mut hole = i;
    let mut j = i;
    loop {
        j = (j + 1) & mask;
        let a = slots[j].addr;
        if a == 0 {
            break;
        }
        let home_j = home(a).1 & mask;
        // Distance from home to j, and from the hole to j, around the ring.
        let from_home = j.wrapping_sub(home_j) & mask;
        let from_hole = j.wrapping_sub(hole) & mask;
        if from_home >= from_hole {
            slots[hole] = slots[j];
            hole = j;
        }
    }
    slots[hole] = Packed::EMPTY;
    s.len -= 1;
    cell.len.store(s.len as u64, Relaxed);
    drop(s);
    Some(found)
}

/// Appends every record for which `keep` holds to `out`, shard by shard.
/// `out` is grown before each shard's lock is taken, so nothing is allocated
/// while a lock is held: by the shard's published count (plus a margin for
/// records inserted meanwhile), and again if the shard holds more once
/// locked. Call inside the tool's scope.
///
/// Growing by the records there are, not by a shard's capacity, matters:
/// reserving a whole shard's slots each time had `out` reallocated (and
/// copied, and its fresh pages faulted in) about 25 times per snapshot.
pub(crate) fn collect(out: &mut Vec<Record>, keep: impl Fn(&Record) -> bool) {
    const MARGIN: usize = 64;
    for cell in &TABLE {
        let mut room = cell.len.load(Relaxed) as usize + MARGIN;
        loop {
            out.reserve(room);
            let mut s = lock(&cell.shard);
            if s.len > out.capacity() - out.len() {
                // More records arrived than `out` has room for.
                room = s.len + MARGIN;
                continue;
            }
            // At most `s.len` records pass the filters: `extend` stays
            // within the capacity reserved above.
            out.extend(
                s.slots()
                    .iter()
                    .filter(|p| p.addr != 0)
                    .map(Packed::record)
                    .filter(|r| keep(r)),
            );
            break;
        }
    }
}

/// Fork support: every shard lock, taken before `fork()` and released in
/// both processes after it.
pub(crate) mod fork {
    use super::*;

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn lock_all() {
        for cell in &TABLE {
            core::mem::forget(lock(&cell.shard));
        }
    }

    #[cfg_attr(miri, allow(dead_code))]
    pub(crate) fn unlock_all() {
        for cell in &TABLE {
            // SAFETY: `lock_all` took every shard lock in this thread (the
            // forking thread, which is the only thread of a fork child) and
            // leaked the guards.
            unsafe { cell.shard.force_unlock() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(addr: usize) -> Record {
        Record {
            addr,
            size: addr % 1000 + 1,
            birth_ticks: 0,
            seq: 0,
            epoch: 0,
            stack: 0,
            weight: 0.0,
            owner: 0,
        }
    }

    /// Addresses whose records all land in one shard, to make long probe
    /// runs and wrap-arounds (the table is process-wide; these addresses are
    /// never real blocks).
    fn same_shard(base: usize, n: usize) -> Vec<usize> {
        let want = home(base).0;
        (0..)
            .map(|k: usize| base + k * 16)
            .filter(|&a| home(a).0 == want)
            .take(n)
            .collect()
    }

    #[test]
    fn insert_remove_round_trip_through_collisions() {
        let addrs = same_shard(0x7000_0000_0000, 3000);
        for &a in &addrs {
            assert_ne!(insert(rec(a)), Inserted::No);
        }
        // Remove every other one, then check the rest are all still found.
        for &a in addrs.iter().step_by(2) {
            assert_eq!(remove(a).map(|r| r.size), Some(a % 1000 + 1));
        }
        for &a in addrs.iter().step_by(2) {
            assert_eq!(remove(a), None);
        }
        for &a in addrs.iter().skip(1).step_by(2) {
            assert_eq!(remove(a).map(|r| r.addr), Some(a));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "seven thousand inserts take minutes under Miri")]
    fn a_full_shard_refuses_and_counts_the_drop() {
        // A different shard from the test above, which runs in parallel.
        let base = (0x7100_0000_0000..)
            .step_by(16)
            .find(|&a| home(a).0 != home(0x7000_0000_0000).0)
            .unwrap();
        // The defaults' bound (no test here sets a mode).
        let fill = DEFAULT_SHARD_SLOTS / 8 * 7;
        assert_eq!(slot_limit(), DEFAULT_SHARD_SLOTS);
        let addrs = same_shard(base, fill + 10);
        let dropped = DROPPED_FULL.load(Relaxed);
        let accepted = addrs
            .iter()
            .filter(|&&a| insert(rec(a)) != Inserted::No)
            .count();
        // Other tests may hold a few records in this shard.
        assert!(accepted <= fill && accepted + 10 + 64 >= fill);
        assert_eq!(
            lock(&TABLE[home(base).0].shard).cap,
            DEFAULT_SHARD_SLOTS,
            "a full shard at the defaults maps no more than its bound"
        );
        assert!(DROPPED_FULL.load(Relaxed) >= dropped + 10);
        for &a in &addrs {
            remove(a);
        }
    }
}
