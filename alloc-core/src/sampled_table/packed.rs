//! A record as the sampled-block table stores it: 32 bytes, two to a
//! cache line and never across two.
//!
//! The [`Record`] the rest of the crate reads is 48 bytes; stored as such,
//! one slot in two straddled two cache lines, and with `alloc-bench`'s
//! `server` in every-allocation mode (135,000 live records, beyond the
//! caches) a removal missed on both. Packed, the table is a third smaller
//! (8 MiB at most instead of 12) and a record is one line.
//!
//! What packing gives up: a block of 2^48 bytes (256 TiB) or more is not
//! recorded (no such block can be allocated on the 64-bit targets, whose
//! address spaces are smaller), and a block recorded in a leak scope keeps
//! its scope sequence number where other records keep their birth time, so
//! its free counts its lifetime in epochs but not in nanoseconds.

use super::Record;

/// Bits of the size field: blocks from `1 << SIZE_BITS` bytes up are not
/// recorded.
const SIZE_BITS: u32 = 48;
const SIZE_MASK: u64 = (1 << SIZE_BITS) - 1;
/// The stack id's bits, above the size's.
const STACK_BITS: u32 = 14;
const STACK_MASK: u64 = (1 << STACK_BITS) - 1;
/// The top bit: recorded in a leak scope.
const SCOPED: u64 = 1 << 63;

const _: () = assert!(SIZE_BITS + STACK_BITS < 64);
const _: () = assert!((crate::stacks::MAX_STACKS as u64) <= STACK_MASK);
const _: () = assert!(size_of::<Packed>() == 32);

/// One slot of the table; all zero is the empty slot.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(super) struct Packed {
    /// The block's address; 0 marks an empty slot.
    pub(super) addr: usize,
    /// In an empty slot, the free list's link ([`Packed::vacant`]).
    /// Otherwise the birth time ([`Record::birth_ticks`]) of a block recorded outside
    /// leak scopes; the scope's sequence number ([`Record::seq`]) of one
    /// recorded in a scope.
    ticks_or_seq: u64,
    /// The size (the low [`SIZE_BITS`]), the stack id (the next
    /// [`STACK_BITS`]) and [`SCOPED`].
    size_stack: u64,
    /// Birth epoch.
    epoch: u32,
    /// The weight's bits (an `f32`), or for a block recorded in a leak
    /// scope (whose weight is 1) the scope's owner ([`Record::owner`]).
    weight_or_owner: u32,
}

impl Packed {
    /// The empty slot.
    pub(super) const EMPTY: Packed = Packed {
        addr: 0,
        ticks_or_seq: 0,
        size_stack: 0,
        epoch: 0,
        weight_or_owner: 0,
    };

    /// An empty slot on the free list, before the slot whose index + 1 is
    /// `next` (0: the end of the list).
    pub(super) fn vacant(next: usize) -> Packed {
        Packed {
            ticks_or_seq: next as u64,
            ..Packed::EMPTY
        }
    }

    /// The link of an empty slot ([`Packed::vacant`]).
    pub(super) fn next_vacant(&self) -> usize {
        self.ticks_or_seq as usize
    }

    /// `r` as stored, or `None` if its size does not fit.
    pub(super) fn of(r: &Record) -> Option<Packed> {
        let size = r.size as u64;
        if size > SIZE_MASK {
            return None;
        }
        // Ids above the mask do not exist (asserted above); masked anyway,
        // so that no id can set the scope bit.
        let size_stack = size | (u64::from(r.stack) & STACK_MASK) << SIZE_BITS;
        Some(if r.owner != 0 {
            // Blocks recorded in a scope weigh 1 (`sampler::path::on_alloc`;
            // a resize inside the scope keeps the record as it is), so the
            // weight is not kept. (No assertion: the allocation path never
            // panics.)
            Packed {
                addr: r.addr,
                ticks_or_seq: r.seq,
                size_stack: size_stack | SCOPED,
                epoch: r.epoch,
                weight_or_owner: r.owner,
            }
        } else {
            Packed {
                addr: r.addr,
                ticks_or_seq: r.birth_ticks,
                size_stack,
                epoch: r.epoch,
                weight_or_owner: r.weight.to_bits(),
            }
        })
    }

    /// What a free needs of the record stored.
    pub(super) fn freed(&self) -> super::Freed {
        super::Freed {
            epoch: self.epoch,
            birth_ticks: (self.size_stack & SCOPED == 0).then_some(self.ticks_or_seq),
        }
    }

    /// The record stored. A leak scope's record has no birth time
    /// (`birth_ticks` 0; see [`Record::birth_ticks`]).
    pub(super) fn record(&self) -> Record {
        let size = (self.size_stack & SIZE_MASK) as usize;
        let stack = ((self.size_stack >> SIZE_BITS) & STACK_MASK) as u32;
        let scoped = self.size_stack & SCOPED != 0;
        Record {
            addr: self.addr,
            size,
            birth_ticks: if scoped { 0 } else { self.ticks_or_seq },
            seq: if scoped { self.ticks_or_seq } else { 0 },
            epoch: self.epoch,
            stack,
            weight: if scoped {
                1.0
            } else {
                f32::from_bits(self.weight_or_owner)
            },
            owner: if scoped { self.weight_or_owner } else { 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(owner: u32) -> Record {
        Record {
            addr: 0x7f00_1234_5670,
            size: (1 << SIZE_BITS) - 1,
            birth_ticks: if owner == 0 { u64::MAX - 7 } else { 0 },
            seq: if owner == 0 { 0 } else { u64::MAX - 9 },
            epoch: 0x7fff_fffe,
            stack: crate::stacks::MAX_STACKS as u32,
            weight: if owner == 0 { 1234.5 } else { 1.0 },
            owner,
        }
    }

    #[test]
    fn records_round_trip_in_and_out_of_leak_scopes() {
        for owner in [0, 1, 1024] {
            let r = record(owner);
            assert_eq!(Packed::of(&r).unwrap().record(), r, "owner {owner}");
        }
        let small = Record {
            size: 24,
            stack: 0,
            ..record(0)
        };
        assert_eq!(Packed::of(&small).unwrap().record(), small);
    }

    #[test]
    fn a_free_reads_the_epoch_and_the_birth_time_outside_scopes_only() {
        let p = Packed::of(&record(0)).unwrap();
        let f = p.freed();
        assert_eq!((f.epoch, f.birth_ticks), (0x7fff_fffe, Some(u64::MAX - 7)));
        let f = Packed::of(&record(3)).unwrap().freed();
        assert_eq!((f.epoch, f.birth_ticks), (0x7fff_fffe, None));
    }

    #[test]
    fn a_size_beyond_the_field_is_refused() {
        let r = Record {
            size: 1 << SIZE_BITS,
            ..record(0)
        };
        assert_eq!(Packed::of(&r), None);
    }
}
