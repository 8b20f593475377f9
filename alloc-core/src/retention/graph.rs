//! The scan's graph: the sampled blocks by address (which block a word
//! points into), the edges between them (every block's words, within the
//! budget), and shortest paths from the roots over those edges.

use super::reader::Reader;
use super::{EDGE_BUDGET, READ_BUDGET, TIME_BUDGET_NS};
use crate::sampled_table::Record;
use alloc_snapshot::Holder;

/// The sampled blocks sorted by address, and which one a word points into.
pub(super) struct Blocks<'a> {
    pub(super) r: &'a [Record],
    lo: usize,
    hi: usize,
}

impl<'a> Blocks<'a> {
    pub(super) fn new(r: &'a [Record]) -> Self {
        let lo = r.first().map_or(0, |b| b.addr);
        let hi = r.iter().map(end).max().unwrap_or(0);
        Blocks { r, lo, hi }
    }

    /// Whether a sampled block starts in `(a, b]`.
    pub(super) fn any_in(&self, a: usize, b: usize) -> bool {
        let i = self.r.partition_point(|r| r.addr <= a);
        self.r.get(i).is_some_and(|r| r.addr <= b)
    }

    #[inline]
    pub(super) fn find(&self, w: usize) -> Option<usize> {
        if w < self.lo || w >= self.hi {
            return None;
        }
        let i = self.r.partition_point(|b| b.addr <= w).checked_sub(1)?;
        (w < end(&self.r[i])).then_some(i)
    }
}

pub(super) fn end(r: &Record) -> usize {
    r.addr.saturating_add(r.size.max(1))
}

/// The edges between sampled blocks: block `i`'s targets (block, offset of
/// the word in `i`) are `targets[first[i]..first[i + 1]]`.
pub(super) struct Edges {
    pub(super) first: Vec<u32>,
    pub(super) targets: Vec<(u32, u32)>,
    /// False when a budget stopped the reading of blocks.
    pub(super) complete: bool,
}

impl Edges {
    /// Reads every block's words, while the budgets last (checked every 256
    /// blocks); the scan started at `start` (`monotonic_ns`).
    pub(super) fn read(rd: &mut Reader, blocks: &Blocks<'_>, start: u64) -> Edges {
        let records = blocks.r;
        let mut first: Vec<u32> = Vec::with_capacity(records.len() + 1);
        let mut targets: Vec<(u32, u32)> = Vec::new();
        let mut complete = true;
        for (i, r) in records.iter().enumerate() {
            first.push(targets.len() as u32);
            if !complete {
                continue;
            }
            if i % 256 == 0
                && (crate::sys::monotonic_ns().saturating_sub(start) > TIME_BUDGET_NS
                    || rd.stats.bytes_read > READ_BUDGET)
            {
                complete = false;
                continue;
            }
            rd.words(r.addr, end(r), |at, w| {
                if let Some(j) = blocks.find(w) {
                    if j != i && targets.last().is_none_or(|&(t, _)| t as usize != j) {
                        targets.push((j as u32, (at - r.addr) as u32));
                    }
                }
            });
            if targets.len() > EDGE_BUDGET {
                complete = false;
            }
        }
        first.push(targets.len() as u32);
        rd.stats.edges = targets.len() as u64;
        Edges {
            first,
            targets,
            complete,
        }
    }

    /// The referrers of the blocks no root reaches (all unreached
    /// themselves), as sorted (target, referrer) pairs.
    pub(super) fn reverse_of_unreached(&self, reached: &[bool]) -> Vec<(u32, u32)> {
        let mut rev: Vec<(u32, u32)> = Vec::new();
        for (u, _) in reached.iter().enumerate().filter(|(_, r)| !**r) {
            for &(v, _) in &self.targets[self.first[u] as usize..self.first[u + 1] as usize] {
                rev.push((v, u as u32));
            }
        }
        rev.sort_unstable();
        rev.dedup();
        rev
    }

    /// The bytes its tables hold.
    pub(super) fn bytes(&self) -> usize {
        self.first.capacity() * 4 + self.targets.capacity() * 8
    }
}

/// The breadth-first search over the edges that gives each block it
/// reaches a parent on a shortest path from the seeds.
pub(super) struct Spread<'a> {
    pub(super) first: &'a [u32],
    pub(super) targets: &'a [(u32, u32)],
    pub(super) reached: &'a mut [bool],
    pub(super) parent: &'a mut [Option<Holder>],
    pub(super) queue: &'a mut Vec<u32>,
}

impl Spread<'_> {
    /// Reaches `seeds` (block, holder) not reached yet, then everything
    /// they point to, transitively.
    pub(super) fn spread(&mut self, seeds: impl Iterator<Item = (usize, Holder)>) {
        self.queue.clear();
        for (i, h) in seeds {
            if !self.reached[i] {
                self.reached[i] = true;
                self.parent[i] = Some(h);
                self.queue.push(i as u32);
            }
        }
        let mut head = 0;
        while head < self.queue.len() {
            let u = self.queue[head] as usize;
            head += 1;
            for &(v, off) in &self.targets[self.first[u] as usize..self.first[u + 1] as usize] {
                let v = v as usize;
                if !self.reached[v] {
                    self.reached[v] = true;
                    self.parent[v] = Some(Holder::Block {
                        block: u as u32,
                        offset: u64::from(off),
                    });
                    self.queue.push(v as u32);
                }
            }
        }
    }
}
