//! The sampled-block table: one record per live sampled block, found from
//! the block's tag.
//!
//! A block gets a record when it is sampled (see [`crate::sampling`]). Its
//! tag then holds [`SAMPLED`] and the record's id ([`tag`]) instead of its
//! birth epoch, which the record keeps. The record goes when the block is
//! freed or resized, found by that id: no search, no probe run, and an
//! unsampled free never looks here.
//!
//! **Invariant.** A tag that names a record id exists only while that
//! record holds its block's address: [`insert`] returns the id the tag is
//! made from, and only the block's own free, or a resize of it that
//! succeeded, [`remove`]s it (a failed resize leaves block, tag and record
//! as they were). The exact counters rest on it, since a sampled block's
//! birth epoch is in its record. Removal may come after the inner
//! allocator has the block back: another thread given the address
//! meanwhile, and sampling it, gets a record under another id, and
//! [`remove`] checks the address.
//!
//! The table is [`SHARDS`] slabs of records, each behind its own spin lock
//! (held for a few loads and stores; no allocation, and no call out but one
//! `mmap` when a shard takes its first record). A record's shard is picked
//! by a hash of its block's address, so shards fill evenly whichever thread
//! samples. Within its shard a record takes the slot freed last (a free
//! list threaded through the empty slots, so the next sample writes a line
//! the last free just touched), or else the first slot never used. A shard
//! reserves address space for [`SHARD_SLOTS`] records at its first record
//! and writes only the slots it has used, so the table's memory follows the
//! most live sampled blocks there have been (32 bytes each, [`packed`]),
//! within a bound; past it a sample is dropped (counted in [`DROPPED_FULL`])
//! and its block stays unsampled. The bound:
//!
//! - **At the defaults** (while [`crate::sampler::policy`] decides):
//!   [`DEFAULT_SHARD_SLOTS`] a shard (8,192; 4 MiB of records in all).
//!   The policy's dense capture stops at [`HALF_FULL`] records a shard
//!   (3,584; 57,344 in all) and graded capture thins out from there, its
//!   interval doubled every 256 records a shard (the default interval at
//!   6,656 a shard, 16 MiB at the bound).
//! - **With a mode set** (every allocation, or an interval):
//!   [`SHARD_SLOTS`] a shard, `SHARDS * SHARD_SLOTS * 32` = 8 MiB.
//!   `alloc-bench`'s `server` in every-allocation mode holds about 135,000
//!   live blocks.
//!
//! The bound at the defaults is what naming leaks at the defaults needs: the
//! leak cases of `tests/tests/leak_cases.rs` (two blocks a cycle over 20,000
//! cycles) lose their 10% accuracy with half the dense limit.
//!
//! A free finds its record by the id in the block's tag, with no search:
//! the free of a sampled block touches one record's line.

use crate::counters::SAMPLED;
use crate::lock::lock;
use crate::os_mem;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use packed::Packed;
use spin::mutex::SpinMutex;

mod packed;

/// Number of independently locked shards (a power of two).
pub(crate) const SHARDS: usize = 16;
/// Bits of a slot's index within its shard, in a record id.
const SLOT_BITS: u32 = 14;
/// Records per shard at most (with a mode set).
pub(crate) const SHARD_SLOTS: usize = 1 << SLOT_BITS;
/// Live sampled blocks the table holds at most (with a mode set).
pub(crate) const CAPACITY: usize = SHARDS * SHARD_SLOTS;
/// Bytes a stored record takes ([`packed`]).
pub(crate) const RECORD_BYTES: usize = size_of::<Packed>();

// Ids fit below the tag's SAMPLED bit.
const _: () = assert!((CAPACITY as u64) < SAMPLED as u64);

/// The tag of a block whose record has id `id` (from [`insert`]).
#[inline(always)]
pub(crate) const fn tag(id: u32) -> u32 {
    SAMPLED | id
}

/// The record id in the tag of a sampled block (`tag & SAMPLED != 0`).
#[inline(always)]
pub(crate) const fn id_of(tag: u32) -> u32 {
    tag & !SAMPLED
}

/// An id's shard and slot; ids from tags are below [`CAPACITY`], and any
/// other value is masked into range (then [`remove`] finds a different
/// block's address there, or none, and refuses).
#[inline(always)]
fn split(id: u32) -> (usize, usize) {
    let id = id as usize;
    ((id >> SLOT_BITS) & (SHARDS - 1), id & (SHARD_SLOTS - 1))
}

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
    /// Birth epoch (the block's tag holds the record's id instead).
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
    /// Records held.
    len: usize,
    /// Slots used at least once; those from here up were never written.
    high: usize,
    /// The free list's head: the index + 1 of an empty slot below `high`,
    /// or 0. Each empty slot links to the next ([`Packed::vacant`]).
    free: usize,
    /// [`SHARD_SLOTS`] records, mapped at the shard's first record (null
    /// before).
    slots: *mut Packed,
}

// SAFETY: `slots` is owned memory only touched under the shard's lock.
unsafe impl Send for Shard {}

/// Slots a shard may use at the defaults (while the default policy
/// decides).
pub(crate) const DEFAULT_SHARD_SLOTS: usize = 8192;

/// Slots a shard may use now: [`DEFAULT_SHARD_SLOTS`] while the default
/// policy decides, [`SHARD_SLOTS`] once a mode was set ([`lift_limit`]).
static SLOT_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_SHARD_SLOTS);

fn slot_limit() -> usize {
    SLOT_LIMIT.load(Relaxed)
}

/// Lets every shard use all its [`SHARD_SLOTS`]: the default policy no
/// longer decides (a mode was set: [`crate::sampler::policy::disable`]).
pub(crate) fn lift_limit() {
    SLOT_LIMIT.store(SHARD_SLOTS, Relaxed);
}

impl Shard {
    /// The slots used so far.
    fn used(&mut self) -> &mut [Packed] {
        if self.slots.is_null() {
            return &mut [];
        }
        // SAFETY: `slots` maps SHARD_SLOTS records, owned by this shard,
        // which the caller has locked; `high <= SHARD_SLOTS`.
        unsafe { core::slice::from_raw_parts_mut(self.slots, self.high) }
    }

    /// An empty slot for a new record, below `limit` if never used
    /// before: the one freed last, else the first never used. `None` when
    /// the shard is at `limit` or the system refused memory.
    fn take(&mut self, limit: usize) -> Option<usize> {
        if self.free != 0 {
            let i = self.free - 1;
            self.free = self.used()[i].next_vacant();
            return Some(i);
        }
        if self.high >= limit.min(SHARD_SLOTS) {
            return None;
        }
        if self.slots.is_null() {
            // Address space only: pages become resident as slots are used.
            let p = os_mem::map_zeroed(SHARD_SLOTS * RECORD_BYTES);
            if p.is_null() {
                return None;
            }
            self.slots = p.cast();
        }
        let i = self.high;
        self.high += 1;
        Some(i)
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
    /// `shard.slots` (0 before the first record), and the address of the
    /// slot the next record will take (the free list's head, or 0), written
    /// under the lock and read without it by [`prefetch`] and
    /// [`prefetch_next`] only: a prefetch of a stale address is harmless.
    slots_hint: AtomicUsize,
    next_hint: AtomicUsize,
}

/// Empty shards: no memory until the first sample.
static TABLE: [Cell; SHARDS] = [const {
    Cell {
        shard: SpinMutex::new(Shard {
            len: 0,
            high: 0,
            free: 0,
            slots: core::ptr::null_mut(),
        }),
        len: AtomicU64::new(0),
        slots_hint: AtomicUsize::new(0),
        next_hint: AtomicUsize::new(0),
    }
}; SHARDS];

/// Each shard's mapping of records (start, bytes), for
/// [`crate::tool_memory`] to count its resident pages (the slots written
/// so far); shards without a record yet have none.
pub(crate) fn mappings() -> impl Iterator<Item = (*const u8, usize)> {
    TABLE
        .iter()
        .map(|c| c.slots_hint.load(Relaxed))
        .filter(|&start| start != 0)
        .map(|start| {
            let start: *const u8 = core::ptr::without_provenance(start);
            (start, SHARD_SLOTS * RECORD_BYTES)
        })
}

/// Live records, over all shards (a sum of relaxed loads: off by the
/// records being inserted or removed meanwhile).
pub(crate) fn live() -> u64 {
    TABLE.iter().map(|c| c.len.load(Relaxed)).sum()
}

/// A shard with at least this many records counts as half full for the
/// default policy (see [`Inserted`]): 7/16 of [`DEFAULT_SHARD_SLOTS`]
/// (3,584 of 8,192), which leaves the rest of the bound to the graded
/// samples taken after dense capture stops ([`crate::sampler::policy`]).
pub(crate) const HALF_FULL: usize = DEFAULT_SHARD_SLOTS / 16 * 7;

/// What [`insert`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Inserted {
    /// Recorded, with this id.
    Yes(u32),
    /// Recorded, with this id, and its shard now holds this many records,
    /// at least [`HALF_FULL`], as the whole table is about to (addresses
    /// hash evenly over the shards): the default policy's cue to capture
    /// more sparsely ([`crate::sampler::policy::shard_filled`]).
    HalfFull(u32, u32),
    /// Not recorded: the shard is full.
    No,
}

impl Inserted {
    /// The new record's id, if there is one.
    pub(crate) fn id(self) -> Option<u32> {
        match self {
            Inserted::Yes(id) | Inserted::HalfFull(id, _) => Some(id),
            Inserted::No => None,
        }
    }
}

/// Samples refused because their shard was full (or, which no real block
/// can be, too large to record: [`packed`]).
pub(crate) static DROPPED_FULL: AtomicU64 = AtomicU64::new(0);

/// The shard of a block's record, by a hash of its address.
#[inline]
fn shard_of(addr: usize) -> usize {
    let h = ((addr as u64) >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 60) as usize & (SHARDS - 1)
}

/// Starts fetching the line of the slot that the record of a block at
/// `addr` will take ([`insert`]), so that a miss overlaps with the stack
/// capture. Reads no record and takes no lock.
#[inline(always)]
pub(crate) fn prefetch_next(addr: usize) {
    let at = TABLE[shard_of(addr)].next_hint.load(Relaxed);
    if at != 0 {
        prefetch_line(at);
    }
}

/// Starts fetching the line of record `id` (from a sampled block's tag),
/// which its free or resize is about to take out.
#[inline(always)]
pub(crate) fn prefetch(id: u32) {
    let (shard, i) = split(id);
    let base = TABLE[shard].slots_hint.load(Relaxed);
    if base != 0 {
        prefetch_line(base + i * RECORD_BYTES);
    }
}

/// Asks the CPU to bring the cache line at `addr` in, for writing: no
/// effect the program can see, and no fault whatever the address.
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
        core::arch::asm!("prfm pstl1keep, [{}]", in(reg) addr, options(nostack, readonly, preserves_flags));
    }
    #[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let _ = addr;
}

/// The address of the slot `shard`'s next record takes, for
/// [`prefetch_next`]: the free list's head, or 0 (the next never-used slot
/// was never written and is not worth fetching).
fn next_slot(s: &Shard) -> usize {
    match s.free {
        0 => 0,
        head => s.slots.addr() + (head - 1) * RECORD_BYTES,
    }
}

/// Records `r` (whose `addr` must not be 0) and says under which id; see
/// [`Inserted`].
pub(crate) fn insert(r: Record) -> Inserted {
    let Some(r) = Packed::of(&r) else {
        DROPPED_FULL.fetch_add(1, Relaxed);
        return Inserted::No;
    };
    let shard = shard_of(r.addr);
    let cell = &TABLE[shard];
    let limit = slot_limit();
    let mut s = lock(&cell.shard);
    let fresh = s.slots.is_null();
    let Some(i) = s.take(limit) else {
        drop(s);
        DROPPED_FULL.fetch_add(1, Relaxed);
        return Inserted::No;
    };
    s.used()[i] = r;
    s.len += 1;
    let len = s.len;
    cell.len.store(len as u64, Relaxed);
    cell.next_hint.store(next_slot(&s), Relaxed);
    if fresh {
        cell.slots_hint.store(s.slots.addr(), Relaxed);
    }
    drop(s);
    let id = (shard << SLOT_BITS | i) as u32;
    if len >= HALF_FULL {
        Inserted::HalfFull(id, len as u32)
    } else {
        Inserted::Yes(id)
    }
}

/// Takes record `id`, which must be the record of the block at `addr`, out
/// of the table. `None` (and nothing taken) if it is not: the invariant
/// above says that cannot happen.
pub(crate) fn remove(id: u32, addr: usize) -> Option<Record> {
    remove_with(id, addr, Packed::record)
}

/// What the free of a sampled block needs of its record.
pub(crate) struct Freed {
    /// Birth epoch.
    pub(crate) epoch: u32,
    /// Birth time, `None` for a block recorded in a leak scope ([`packed`]).
    pub(crate) birth_ticks: Option<u64>,
}

/// [`remove`] for a free: only the fields it needs are read out.
#[inline]
pub(crate) fn remove_freed(id: u32, addr: usize) -> Option<Freed> {
    remove_with(id, addr, Packed::freed)
}

/// Takes record `id` of the block at `addr` out of the table, if it is
/// that block's, and returns what `read` makes of it.
#[inline(always)]
fn remove_with<T>(id: u32, addr: usize, read: impl FnOnce(&Packed) -> T) -> Option<T> {
    let (shard, i) = split(id);
    let cell = &TABLE[shard];
    let mut s = lock(&cell.shard);
    let head = s.free;
    let slot = s.used().get_mut(i)?;
    if addr == 0 || slot.addr != addr {
        return None;
    }
    let found = read(slot);
    *slot = Packed::vacant(head);
    s.free = i + 1;
    s.len -= 1;
    cell.len.store(s.len as u64, Relaxed);
    cell.next_hint.store(next_slot(&s), Relaxed);
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
                s.used()
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
            core::mem::forget(crate::lock::spin(&cell.shard));
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
            epoch: (addr % 77) as u32,
            stack: 0,
            weight: 0.0,
            owner: 0,
        }
    }

    /// `n` addresses from `base` up whose records all land in shard
    /// `want` (the table is process-wide; these addresses are never real
    /// blocks).
    fn in_shard(want: usize, base: usize, n: usize) -> Vec<usize> {
        (0..)
            .map(|k: usize| base + k * 16)
            .filter(|&a| shard_of(a) == want)
            .take(n)
            .collect()
    }

    fn high(shard: usize) -> usize {
        lock(&TABLE[shard].shard).high
    }

    #[test]
    fn records_come_back_by_id_and_freed_slots_are_taken_first() {
        let shard = shard_of(0x7000_0000_0000);
        let addrs = in_shard(shard, 0x7000_0000_0000, 3000);
        let ids: Vec<u32> = addrs
            .iter()
            .map(|&a| insert(rec(a)).id().expect("room in the shard"))
            .collect();
        assert!(ids.iter().all(|&id| split(id).0 == shard));
        assert_eq!(id_of(tag(ids[7])), ids[7]);
        assert_ne!(tag(ids[7]) & SAMPLED, 0);
        // A wrong address takes nothing out.
        assert_eq!(remove(ids[0], addrs[1]), None);
        // Every other one out, and not twice.
        for (&a, &id) in addrs.iter().zip(&ids).step_by(2) {
            let f = remove_freed(id, a).expect("its record");
            assert_eq!((f.epoch, f.birth_ticks), ((a % 77) as u32, Some(0)));
        }
        for (&a, &id) in addrs.iter().zip(&ids).step_by(2) {
            assert_eq!(remove(id, a), None);
        }
        // New records take the slots just freed, last freed first, and the
        // shard uses no new slot for them.
        let before = high(shard);
        let again = in_shard(shard, 0x7000_4000_0000, 1500);
        let new_ids: Vec<u32> = again
            .iter()
            .map(|&a| insert(rec(a)).id().unwrap())
            .collect();
        assert_eq!(new_ids[0], ids[2998]);
        assert!(high(shard) <= before + 16, "other tests may add a few");
        let mut seen: Vec<u32> = new_ids.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), new_ids.len(), "an id given twice");
        // The others are untouched.
        for (&a, &id) in addrs.iter().zip(&ids).skip(1).step_by(2) {
            assert_eq!(remove(id, a), Some(rec(a)));
        }
        for (&a, &id) in again.iter().zip(&new_ids) {
            assert_eq!(remove(id, a), Some(rec(a)));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "eight thousand inserts take minutes under Miri")]
    fn a_full_shard_refuses_and_counts_the_drop() {
        // A different shard from the test above, which runs in parallel.
        let base = (0x7100_0000_0000..)
            .step_by(16)
            .find(|&a| shard_of(a) != shard_of(0x7000_0000_0000))
            .unwrap();
        // The defaults' bound (no test here sets a mode).
        assert_eq!(slot_limit(), DEFAULT_SHARD_SLOTS);
        let addrs = in_shard(shard_of(base), base, DEFAULT_SHARD_SLOTS + 10);
        let dropped = DROPPED_FULL.load(Relaxed);
        let ids: Vec<(usize, u32)> = addrs
            .iter()
            .filter_map(|&a| Some((a, insert(rec(a)).id()?)))
            .collect();
        // Other tests may hold a few records in this shard.
        assert!(ids.len() <= DEFAULT_SHARD_SLOTS && ids.len() + 10 + 64 >= DEFAULT_SHARD_SLOTS);
        assert_eq!(
            high(shard_of(base)),
            DEFAULT_SHARD_SLOTS,
            "a full shard at the defaults uses no more than its bound"
        );
        assert!(DROPPED_FULL.load(Relaxed) >= dropped + 10);
        // Its written slots are resident, as the tool's memory counts them
        // (more only where the system backs the mapping with huge pages).
        #[cfg(not(miri))]
        {
            let base_of_shard = TABLE[shard_of(base)].slots_hint.load(Relaxed);
            let (start, len) = mappings()
                .find(|&(start, _)| start.addr() == base_of_shard)
                .expect("the shard's mapping");
            let resident = crate::sys::resident_in(start, len).expect("mincore");
            assert!(resident >= DEFAULT_SHARD_SLOTS * RECORD_BYTES, "{resident}");
        }
        for (a, id) in ids {
            assert!(remove(id, a).is_some());
        }
    }
}
