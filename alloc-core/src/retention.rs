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

use crate::modules::ModuleRoots;
use crate::registry::{self, ScanThread};
use crate::sampled::Record;
use alloc_snapshot::retention::MAX_REFERRERS;
use alloc_snapshot::{Holder, RetainedBlock, Retention, RetentionScan, RetentionThread};

/// The scan stops reading blocks after this much wall-clock time.
pub const TIME_BUDGET_NS: u64 = 2_000_000_000;
/// The scan stops reading blocks after reading this many bytes.
pub const READ_BUDGET: u64 = 1 << 30;
/// The scan stops reading blocks after finding this many edges (8 bytes
/// each: 64 MiB).
pub const EDGE_BUDGET: usize = 8 << 20;
/// Bytes read per `process_vm_readv` at most.
const RUN: usize = 64 << 10;
/// Pages asked about per `mincore`.
const RES_PAGES: usize = 256;

/// Reads words of the process's own memory: resident pages only, through
/// `process_vm_readv`, with the last run read and the last `mincore`
/// window cached (the blocks come in address order).
struct Reader {
    page: usize,
    buf: Vec<u8>,
    cache_at: usize,
    cache_len: usize,
    res: [u8; RES_PAGES],
    res_at: usize,
    res_n: usize,
    stats: RetentionScan,
}

impl Reader {
    fn new(page: usize) -> Self {
        Reader {
            page,
            buf: vec![0; RUN],
            cache_at: 0,
            cache_len: 0,
            res: [0; RES_PAGES],
            res_at: 0,
            res_n: 0,
            stats: RetentionScan::default(),
        }
    }

    /// Whether the page at `p` (page-aligned) is resident; `None` if it is
    /// not mapped.
    fn resident(&mut self, p: usize) -> Option<bool> {
        let in_window = p >= self.res_at && (p - self.res_at) / self.page < self.res_n;
        if !in_window {
            self.res_n = 0;
            if crate::sys::resident_pages(p, RES_PAGES, self.page, &mut self.res) {
                (self.res_at, self.res_n) = (p, RES_PAGES);
            } else if crate::sys::resident_pages(p, 1, self.page, &mut self.res) {
                // The window ran past the mapping's end: this page alone.
                (self.res_at, self.res_n) = (p, 1);
            } else {
                return None;
            }
        }
        Some(self.res[(p - self.res_at) / self.page] & 1 != 0)
    }

    /// Calls `f(address, word)` for every 8-aligned word of `[a, b)` on a
    /// resident page that could be read.
    fn words(&mut self, a: usize, b: usize, mut f: impl FnMut(usize, usize)) {
        let page = self.page;
        let mut at = a.next_multiple_of(8);
        while at.saturating_add(8) <= b {
            let p = at & !(page - 1);
            let cached = self.cache_at <= at && at + 8 <= self.cache_at + self.cache_len;
            if !cached {
                match self.resident(p) {
                    Some(true) => {}
                    other => {
                        let next = (p + page).min(b);
                        if other.is_none() {
                            self.stats.bytes_unreadable += (next - at) as u64;
                        } else {
                            self.stats.bytes_not_resident += (next - at) as u64;
                        }
                        at = next.next_multiple_of(8);
                        continue;
                    }
                }
                // A run of resident pages from `p`, up to `RUN` bytes and no
                // further than the page holding `b`'s last byte plus a few
                // (the next blocks in address order are likely there).
                let want_end = b.next_multiple_of(page).max(p + 4 * page).min(p + RUN);
                let mut end = p + page;
                while end < want_end && self.resident(end) == Some(true) {
                    end += page;
                }
                let n = crate::sys::read_own(p, &mut self.buf[..end - p]);
                (self.cache_at, self.cache_len) = (p, n & !7);
                if at + 8 > p + self.cache_len {
                    // Unmapped or freed meanwhile: skip this page.
                    let next = (p + page).min(b);
                    self.stats.bytes_unreadable += (next - at) as u64;
                    at = next.next_multiple_of(8);
                    continue;
                }
            }
            let end = b.min(self.cache_at + self.cache_len);
            let base = self.cache_at;
            let mut w = at;
            while w + 8 <= end {
                let o = w - base;
                let bytes: [u8; 8] = self.buf[o..o + 8].try_into().unwrap_or([0; 8]);
                f(w, usize::from_ne_bytes(bytes));
                w += 8;
            }
            self.stats.bytes_read += (w - at) as u64;
            at = w;
        }
    }
}

/// The sampled blocks sorted by address, and which one a word points into.
struct Blocks<'a> {
    r: &'a [Record],
    lo: usize,
    hi: usize,
}

impl<'a> Blocks<'a> {
    fn new(r: &'a [Record]) -> Self {
        let lo = r.first().map_or(0, |b| b.addr);
        let hi = r.iter().map(end).max().unwrap_or(0);
        Blocks { r, lo, hi }
    }

    #[inline]
    fn find(&self, w: usize) -> Option<usize> {
        if w < self.lo || w >= self.hi {
            return None;
        }
        let i = self.r.partition_point(|b| b.addr <= w).checked_sub(1)?;
        (w < end(&self.r[i])).then_some(i)
    }
}

fn end(r: &Record) -> usize {
    r.addr.saturating_add(r.size.max(1))
}

/// Where a root was found, before the blocks are renumbered.
#[derive(Clone, Copy)]
enum Root {
    Static { module: u32, offset: u64 },
    Thread { thread: u32, tls: bool },
}

/// The root of a word found in a thread's memory: the block it points
/// into is held by that thread unless a static holds it.
fn thread_hit<'b>(
    root: &'b mut [Option<Root>],
    blocks: &'b Blocks<'_>,
    thread: u32,
    tls: bool,
) -> impl FnMut(usize, usize) + 'b {
    move |_at, w| {
        if let Some(i) = blocks.find(w) {
            if root[i].is_none() {
                root[i] = Some(Root::Thread { thread, tls });
            }
        }
    }
}

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
    let blocks = Blocks::new(records);
    let n = records.len();
    let page = crate::sys::page_size().map_or(4096, |p| p as usize);
    let mut rd = Reader::new(page);
    rd.stats.sampled_blocks = n as u64;

    // Threads.
    let mut threads: Vec<ScanThread> = Vec::new();
    registry::scan_threads(&mut threads);
    #[cfg(all(target_os = "linux", not(miri)))]
    let (me, pid) = (crate::sys::thread_id(), std::process::id());
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let (me, pid) = (0u32, 0u32);

    // Roots: a static beats a thread.
    let mut root: Vec<Option<Root>> = vec![None; n];
    for &(module, base, a, b) in &roots.data {
        rd.words(a, b, |at, w| {
            if let Some(i) = blocks.find(w) {
                if !matches!(root[i], Some(Root::Static { .. })) {
                    root[i] = Some(Root::Static {
                        module,
                        offset: (at as u64).wrapping_sub(base),
                    });
                }
            }
        });
    }
    for (ti, t) in threads.iter().enumerate() {
        let thread = ti as u32;
        let (mut lo, hi) = t.stack;
        if t.tid == me && lo <= here && here < hi {
            lo = here; // below is the scan's own frames
        }
        if lo < hi {
            rd.words(lo, hi, thread_hit(&mut root, &blocks, thread, false));
        }
        if t.tp != 0 {
            for &(off, len) in &roots.tls {
                let a = (t.tp as isize).wrapping_add(off) as usize;
                rd.words(
                    a,
                    a.saturating_add(len),
                    thread_hit(&mut root, &blocks, thread, true),
                );
            }
        }
    }

    // Edges: every block's words, while the budget lasts.
    let mut first: Vec<u32> = Vec::with_capacity(n + 1);
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

    // Shortest paths from the roots: statics first, then threads.
    let mut parent: Vec<Option<Holder>> = vec![None; n];
    let mut reached = vec![false; n];
    let mut queue: Vec<u32> = Vec::new();
    for pass_static in [true, false] {
        queue.clear();
        for i in 0..n {
            let h = match root[i] {
                Some(Root::Static { module, offset }) if pass_static => Holder::Static {
                    module,
                    offset,
                    symbol: None,
                },
                Some(Root::Thread { thread, tls }) if !pass_static => {
                    Holder::Thread { thread, tls }
                }
                _ => continue,
            };
            if !reached[i] {
                reached[i] = true;
                parent[i] = Some(h);
                queue.push(i as u32);
            }
        }
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head] as usize;
            head += 1;
            for &(v, off) in &targets[first[u] as usize..first[u + 1] as usize] {
                let v = v as usize;
                if !reached[v] {
                    reached[v] = true;
                    parent[v] = Some(Holder::Block {
                        block: u as u32,
                        offset: u64::from(off),
                    });
                    queue.push(v as u32);
                }
            }
        }
    }
    drop(queue);

    // Referrers of blocks no root reaches (all unreached themselves).
    let mut rev: Vec<(u32, u32)> = Vec::new();
    for u in 0..n {
        if reached[u] {
            continue;
        }
        for &(v, _) in &targets[first[u] as usize..first[u + 1] as usize] {
            rev.push((v, u as u32));
        }
    }
    rev.sort_unstable();
    rev.dedup();
    let peak = (rd.buf.capacity()
        + root.capacity() * size_of::<Option<Root>>()
        + first.capacity() * 4
        + targets.capacity() * 8
        + parent.capacity() * size_of::<Option<Holder>>()
        + reached.capacity()
        + rev.capacity() * 8
        + threads.capacity() * size_of::<ScanThread>()) as u64;
    drop(targets);
    drop(first);
    drop(root);
    let referrers = |v: usize| {
        let from = rev.partition_point(|&(t, _)| (t as usize) < v);
        rev[from..]
            .iter()
            .take_while(move |&&(t, _)| t as usize == v)
            .map(|&(_, u)| u as usize)
    };

    // Keep the survivors, their paths, and the referrers of unreached ones.
    let mut keep = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.epoch >= epoch || keep[i] {
            continue;
        }
        keep[i] = true;
        if reached[i] {
            let mut at = i;
            while let Some(Holder::Block { block, .. }) = parent[at] {
                at = block as usize;
                if keep[at] {
                    break;
                }
                keep[at] = true;
            }
        } else {
            stack.push(i);
            while let Some(v) = stack.pop() {
                for u in referrers(v) {
                    if !keep[u] {
                        keep[u] = true;
                        stack.push(u);
                    }
                }
            }
        }
    }
    let mut index = vec![u32::MAX; n];
    let mut out = Vec::new();
    for i in 0..n {
        if keep[i] {
            index[i] = out.len() as u32;
            out.push(i);
        }
    }
    let blocks_out = out
        .iter()
        .map(|&i| {
            let r = &records[i];
            let held_by = parent[i].clone().map(|h| match h {
                Holder::Block { block, offset } => Holder::Block {
                    block: index[block as usize],
                    offset,
                },
                h => h,
            });
            let mut refs: Vec<u32> = if reached[i] {
                Vec::new()
            } else {
                referrers(i).map(|u| index[u]).collect()
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
        .collect();

    let threads = threads
        .iter()
        .map(|t| RetentionThread {
            tid: t.tid,
            name: std::fs::read_to_string(format!("/proc/self/task/{}/comm", t.tid))
                .map(|s| s.trim_end().to_string())
                .unwrap_or_default(),
            main: t.tid == pid,
        })
        .collect();
    let mut stats = rd.stats;
    stats.peak_bytes = peak;
    stats.complete = complete;
    stats.duration_ns = crate::sys::monotonic_ns().saturating_sub(start);
    Retention {
        scan: stats,
        threads,
        blocks: blocks_out,
    }
}
