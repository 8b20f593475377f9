//! The retention scan: what points to each sampled live block (see
//! [`alloc_snapshot::retention`] for what it can and cannot see).
//!
//! Runs on request with a snapshot ([`crate::snapshot_with_retention`]), in
//! the tool's scope, never on the allocation path, while other threads keep
//! allocating and freeing:
//!
//! - **Blocks**: the sampled-block table's live records (the snapshot's own
//!   copy), sorted by address; a word is a pointer to block `i` when it
//!   falls in `[addr, addr + size)` (interior pointers included), found by
//!   a range check and a binary search.
//! - **Roots**: the writable `PT_LOAD` segments of every loaded module
//!   (statics), each registered thread's stack (the bounds recorded when it
//!   registered; the scanning thread's own stack from the caller's frame up)
//!   and its static thread-local storage (each module's `PT_TLS` block at
//!   its offset from the thread's thread pointer: on glibc a pthread's is
//!   inside its stack mapping, the main thread's elsewhere).
//! - **Edges**: the words of every sampled block.
//!
//! **Never faults, never stalls, makes nothing resident.** Memory is read
//! only through `process_vm_readv` on the own pid (`sys::read_own`), which
//! returns a short count where memory was unmapped meanwhile; a page is read
//! only if `mincore` says it is resident (`sys::resident_pages`), so the
//! scan faults in nothing (a page swapped out or never touched is skipped
//! and counted in `bytes_not_resident`). It takes no lock an allocating
//! thread can hold: the records come from the snapshot's copy, the threads
//! from atomics. A block freed during the scan is read as it was (or not at
//! all): the result is a picture of one moment, approximately.
//!
//! **Budget** (checked between blocks): [`TIME_BUDGET_NS`] of wall-clock
//! time, [`READ_BUDGET`] bytes read, [`EDGE_BUDGET`] edges; past any of them
//! the scan stops reading blocks and says so (`complete: false`). Its
//! memory is a 64 KiB read buffer and, per sampled block, a root or parent
//! (24 bytes) and an edge-list offset (4 bytes), plus 8 bytes per edge;
//! `peak_bytes` reports what it held (the snapshot's records, which it
//! sorts in place, not included).
//!
//! **Paths.** A breadth-first search from the roots, statics first and then
//! threads, gives each block it reaches a parent on a shortest path; the
//! output keeps the survivors (blocks born before the snapshot's epoch),
//! the blocks on their paths, and for survivors no root reaches, every
//! block that points to them (transitively), with up to
//! `MAX_REFERRERS` referrers each, so that the analyser can tell a cycle
//! from an unreferenced block.

mod graph;
mod heap_pass;
mod reader;
mod roots;

use crate::modules::ModuleRoots;
use crate::registry::{self, ScanThread};
use crate::sampled_table::Record;
use alloc_snapshot::retention::MAX_REFERRERS;
use alloc_snapshot::{Holder, RetainedBlock, Retention, RetentionThread};
use graph::{Blocks, Edges, Spread};
use heap_pass::HeapHit;
use reader::Reader;
use roots::{root_holder, Root};

/// The scan stops reading blocks after this much wall-clock time.
pub const TIME_BUDGET_NS: u64 = 2_000_000_000;
/// The scan stops reading blocks after reading this many bytes.
pub const READ_BUDGET: u64 = 1 << 30;
/// The scan stops reading blocks after finding this many edges (8 bytes
/// each: 64 MiB).
pub const EDGE_BUDGET: usize = 8 << 20;
/// Scans the roots and `records` (the snapshot's copy of the sampled-block
/// table, sorted here by address) and keeps what holds the survivors of
/// `epoch`. `here` is an address in the caller's frame: the scanning
/// thread's stack is read from there up.
pub(crate) fn scan(
    records: &mut [Record],
    epoch: u32,
    roots: &ModuleRoots,
    here: usize,
) -> Retention {
    let start = crate::sys::monotonic_ns();
    records.sort_unstable_by_key(|r| r.addr);
    let records: &[Record] = records;
    let n = records.len();
    let mut rd = Reader::new(crate::sys::page_size().map_or(4096, |p| p as usize));
    rd.stats.sampled_blocks = n as u64;
    let mut threads: Vec<ScanThread> = Vec::new();
    registry::scan_threads(&mut threads);
    // Anonymous writable mappings: where unsampled heap blocks are.
    let heap = heap_pass::anonymous_mappings();
    let blocks = Blocks::new(records);

    let mut found = roots::read(&mut rd, &blocks, &heap, roots, &threads, here);
    let edges = Edges::read(&mut rd, &blocks, start);
    let mut complete = edges.complete;
    let mut paths = Paths::new(n);
    paths.spread_from_roots(&edges, &found.root);
    let heap_hit = if complete {
        let (hit, done) = heap_pass::hits(
            &mut rd,
            &blocks,
            &paths.reached,
            &heap,
            &mut found.ptrs,
            &threads,
            start,
        );
        complete = done;
        hit
    } else {
        vec![None; n]
    };
    paths.spread_from_heap(&edges, &heap_hit);
    drop(heap_hit);
    let rev = edges.reverse_of_unreached(&paths.reached);
    let peak = rd.buf.capacity()
        + found.root.capacity() * size_of::<Option<Root>>()
        + edges.bytes()
        + paths.bytes()
        + rev.capacity() * 8
        + threads.capacity() * size_of::<ScanThread>();
    drop(edges);
    drop(found);
    let blocks_out = paths.kept(records, epoch, &rev);
    // The read buffer held copies of the program's words: cleared before
    // it is freed (see `Retention`'s `Drop`).
    rd.buf.fill(0);
    core::hint::black_box(&rd.buf);
    let mut stats = rd.stats;
    stats.peak_bytes = peak as u64;
    stats.complete = complete;
    stats.duration_ns = crate::sys::monotonic_ns().saturating_sub(start);
    Retention {
        scan: stats,
        threads: named(&threads),
        blocks: blocks_out,
    }
}

/// Each block's holder on a shortest path from the roots.
struct Paths {
    parent: Vec<Option<Holder>>,
    reached: Vec<bool>,
    queue: Vec<u32>,
}

impl Paths {
    fn new(n: usize) -> Self {
        Paths {
            parent: vec![None; n],
            reached: vec![false; n],
            queue: Vec::new(),
        }
    }

    fn spread<'a>(&'a mut self, edges: &'a Edges) -> Spread<'a> {
        Spread {
            first: &edges.first,
            targets: &edges.targets,
            reached: &mut self.reached,
            parent: &mut self.parent,
            queue: &mut self.queue,
        }
    }

    /// Shortest paths from the roots: statics first, then threads.
    fn spread_from_roots(&mut self, edges: &Edges, root: &[Option<Root>]) {
        let seeds = |statics: bool| {
            root.iter().enumerate().filter_map(move |(i, r)| match r {
                Some(r @ Root::Static { .. }) if statics => Some((i, root_holder(*r))),
                Some(r @ Root::Thread { .. }) if !statics => Some((i, root_holder(*r))),
                _ => None,
            })
        };
        self.spread(edges).spread(seeds(true));
        self.spread(edges).spread(seeds(false));
    }

    /// Blocks still unreached that a heap word holds: from a static's
    /// nearby pointer, then a thread's, spread like roots; a heap word
    /// with no root near it holds its block only in the analyser's eyes
    /// (an unsampled block's word is as often a stale copy in freed
    /// memory): set as its holder, not spread.
    fn spread_from_heap(&mut self, edges: &Edges, hit: &[Option<HeapHit>]) {
        let holder = |want: fn(&Option<(usize, Root)>) -> bool| {
            hit.iter().enumerate().filter_map(move |(i, h)| {
                let (at, near) = (*h)?;
                want(&near).then(|| {
                    (
                        i,
                        Holder::Heap {
                            addr: at as u64,
                            root: near.map(|(_, r)| Box::new(root_holder(r))),
                            offset: near.map_or(0, |(v, _)| (at - v) as u64),
                        },
                    )
                })
            })
        };
        self.spread(edges).spread(holder(|near| {
            matches!(near, Some((_, Root::Static { .. })))
        }));
        self.spread(edges).spread(holder(|near| {
            matches!(near, Some((_, Root::Thread { .. })))
        }));
        for (i, h) in holder(Option::is_none) {
            if !self.reached[i] {
                self.parent[i] = Some(h);
            }
        }
    }

    /// The bytes its tables hold.
    fn bytes(&self) -> usize {
        self.parent.capacity() * size_of::<Option<Holder>>()
            + self.reached.capacity()
            + self.queue.capacity() * 4
    }

    /// Which blocks the file keeps: the survivors (born before `epoch`),
    /// the blocks on their paths, and for survivors no root reaches every
    /// block that points to them, transitively (`rev`: sorted (target,
    /// referrer) pairs).
    fn keep(&self, records: &[Record], epoch: u32, rev: &[(u32, u32)]) -> Vec<bool> {
        let n = records.len();
        let mut keep = vec![false; n];
        let mut stack: Vec<usize> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if r.epoch >= epoch || keep[i] {
                continue;
            }
            keep[i] = true;
            if self.reached[i] {
                let mut at = i;
                while let Some(Holder::Block { block, .. }) = self.parent[at] {
                    at = block as usize;
                    if keep[at] {
                        break;
                    }
                    keep[at] = true;
                }
            } else {
                stack.push(i);
                while let Some(v) = stack.pop() {
                    for u in referrers(rev, v) {
                        if !keep[u] {
                            keep[u] = true;
                            stack.push(u);
                        }
                    }
                }
            }
        }
        keep
    }

    /// The kept blocks, renumbered in address order, with their holders and
    /// (for blocks no root reaches) up to [`MAX_REFERRERS`] referrers.
    fn kept(&self, records: &[Record], epoch: u32, rev: &[(u32, u32)]) -> Vec<RetainedBlock> {
        let keep = self.keep(records, epoch, rev);
        let mut index = vec![u32::MAX; records.len()];
        let out: Vec<usize> = (0..records.len()).filter(|&i| keep[i]).collect();
        for (k, &i) in out.iter().enumerate() {
            index[i] = k as u32;
        }
        out.iter()
            .map(|&i| {
                let r = &records[i];
                let held_by = self.parent[i].clone().map(|h| match h {
                    Holder::Block { block, offset } => Holder::Block {
                        block: index[block as usize],
                        offset,
                    },
                    h => h,
                });
                let mut refs: Vec<u32> = if self.reached[i] {
                    Vec::new()
                } else {
                    referrers(rev, i).map(|u| index[u]).collect()
                };
                refs.truncate(MAX_REFERRERS);
                RetainedBlock {
                    addr: r.addr as u64,
                    size: r.size as u64,
                    stack: r.stack,
                    epoch: r.epoch,
                    held_by,
                    referrers: refs,
                }
            })
            .collect()
    }
}

/// The blocks that point to block `v` (`rev`: sorted (target, referrer)
/// pairs).
fn referrers(rev: &[(u32, u32)], v: usize) -> impl Iterator<Item = usize> + '_ {
    let from = rev.partition_point(|&(t, _)| (t as usize) < v);
    rev[from..]
        .iter()
        .take_while(move |&&(t, _)| t as usize == v)
        .map(|&(_, u)| u as usize)
}

/// The scanned threads as the file names them (`/proc/self/task/N/comm`).
fn named(threads: &[ScanThread]) -> Vec<RetentionThread> {
    let pid = std::process::id();
    threads
        .iter()
        .map(|t| RetentionThread {
            tid: t.tid,
            name: std::fs::read_to_string(format!("/proc/self/task/{}/comm", t.tid))
                .map(|s| s.trim_end().to_string())
                .unwrap_or_default(),
            main: t.tid == pid,
        })
        .collect()
}
