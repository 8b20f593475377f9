//! What a leak scope found: its live records, symbolised ([`Survivors`]).

use crate::sampled_table::{self, Record};
use crate::stacks;
use crate::symbolize::symbolize_stack;
use alloc_snapshot::trim::is_own_frame;
use alloc_snapshot::Stack;
use core::fmt;
use core::sync::atomic::Ordering::Relaxed;
use std::collections::HashMap;

/// The live records that `keep` selects, symbolised, as [`Survivors`];
/// `dropped_at_start` is [`sampled_table::DROPPED_FULL`] when recording began.
pub(super) fn survivors_of(dropped_at_start: u64, keep: impl Fn(&Record) -> bool) -> Survivors {
    crate::untracked(|| {
        let mut records: Vec<Record> = Vec::new();
        sampled_table::collect(&mut records, |r| r.owner != 0 && keep(r));
        records.sort_by_key(|r| (r.owner, r.seq));
        let missed = sampled_table::DROPPED_FULL
            .load(Relaxed)
            .saturating_sub(dropped_at_start);
        let mut cache = HashMap::new();
        let mut stacks_by_id: HashMap<u32, Stack> = HashMap::new();
        let blocks = records
            .iter()
            .map(|r| {
                let stack = stacks_by_id
                    .entry(r.stack)
                    .or_insert_with(|| {
                        let mut s = stacks::unsymbolised(r.stack);
                        symbolize_stack(&mut s, &mut cache);
                        s
                    })
                    .clone();
                SurvivingBlock {
                    size: r.size,
                    epoch: r.epoch,
                    stack,
                }
            })
            .collect();
        Survivors {
            blocks,
            missed,
            unavailable: false,
        }
    })
}

/// A block allocated inside a leak scope and still live at its end.
#[derive(Clone, Debug)]
pub struct SurvivingBlock {
    /// Its size in bytes (as requested; the latest size if resized).
    pub size: usize,
    /// Its birth epoch.
    pub epoch: u32,
    /// Where it was allocated, symbolised; [`Stack::label`] names the line.
    pub stack: Stack,
}

/// What a leak scope found.
#[derive(Clone, Debug)]
pub struct Survivors {
    /// The surviving blocks, in allocation order (per thread, for a
    /// [`track_future`](crate::track_future)).
    pub blocks: Vec<SurvivingBlock>,
    /// Allocations that could not be recorded because the sampled-block
    /// table was full (counted process-wide while the scope was open). When
    /// non-zero, survivors may be missing from [`Survivors::blocks`].
    pub missed: u64,
    /// The scope could not record anything: the global allocator is not
    /// `EpochAlloc`, or this thread has no counter slot.
    pub unavailable: bool,
}

impl Survivors {
    /// Whether nothing survived (and the scope could look).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.missed == 0 && !self.unavailable
    }

    /// Bytes in surviving blocks.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.size).sum()
    }

    /// Survivors grouped by call site (`alloc_snapshot::site`: the user
    /// frame's [`SiteKey`](alloc_snapshot::SiteKey), named by its label):
    /// `(site, bytes, blocks)`, most bytes first.
    #[must_use]
    pub fn by_site(&self) -> Vec<(String, usize, usize)> {
        let mut keys: Vec<alloc_snapshot::SiteKey<'_>> = Vec::new();
        let mut sites: Vec<(String, usize, usize)> = Vec::new();
        for b in &self.blocks {
            let key = b.stack.site_key();
            match keys.iter().position(|k| *k == key) {
                Some(i) => {
                    sites[i].1 += b.size;
                    sites[i].2 += 1;
                }
                None => {
                    keys.push(key);
                    sites.push((key.label(), b.size, 1));
                }
            }
        }
        sites.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        sites
    }
}

impl fmt::Display for Survivors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unavailable {
            return write!(
                f,
                "alloc-core could not watch this scope: the global allocator is not \
                 alloc_core::EpochAlloc, or this thread has no counter slot"
            );
        }
        writeln!(
            f,
            "{} block(s), {} bytes, allocated in the scope are still live:",
            self.blocks.len(),
            self.bytes()
        )?;
        for (site, bytes, blocks) in self.by_site() {
            writeln!(f, "  {bytes} bytes in {blocks} block(s) at {site}")?;
            if let Some(b) = self.blocks.iter().find(|b| b.stack.label() == site) {
                let start = b.stack.user_frame.unwrap_or(0) as usize;
                let callers = b
                    .stack
                    .frames
                    .iter()
                    .skip(start + 1)
                    .filter(|fr| is_own_frame(fr));
                for fr in callers.take(4) {
                    writeln!(f, "      called from {}", fr.label())?;
                }
            }
        }
        if self.missed > 0 {
            writeln!(
                f,
                "  and {} allocation(s) not recorded: the sampled-block table was full",
                self.missed
            )?;
        }
        Ok(())
    }
}
