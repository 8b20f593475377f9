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
use crate::sampled_table::Record;
use alloc_snapshot::retention::{HEAP_ROOT_REACH, MAX_REFERRERS};
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

/// A heap word that points into an unreached block: its address, and the
/// static pointer (value, root) nearest below it, if one is close enough.
type HeapHit = (usize, Option<(usize, Root)>);

/// The holder a root names.
fn root_holder(r: Root) -> Holder {
    match r {
        Root::Static { module, offset } => Holder::Static {
            module,
            offset,
            symbol: None,
        },
        Root::Thread { thread, tls } => Holder::Thread { thread, tls },
    }
}

/// The breadth-first search over the edges that gives each block it
/// reaches a parent on a shortest path from the seeds.
struct Spread<'a> {
    first: &'a [u32],
    targets: &'a [(u32, u32)],
    reached: &'a mut [bool],
    parent: &'a mut [Option<Holder>],
    queue: &'a mut Vec<u32>,
}

impl Spread<'_> {
    /// Reaches `seeds` (block, holder) not reached yet, then everything
    /// they point to, transitively.
    fn spread(&mut self, seeds: impl Iterator<Item = (usize, Holder)>) {
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

/// Where root words go: a pointer into a sampled block marks it held (a
/// static beats a thread); a static's pointer into other heap memory is
/// kept for the heap pass (at most [`MAX_ROOT_PTRS`]). Threads' pointers
/// are not: a stack holds pointers into every part of the heap (live and
/// dead frames), and thread-local storage (the allocator's own among it)
/// points into busy parts of it, so that one near a word says little about
/// what holds that word's block (with them, 1 block in 6 of the demo's
/// connection/handler cycle is attributed to the main thread's
/// thread-local storage).
struct Roots<'r, 'b> {
    root: &'r mut [Option<Root>],
    ptrs: &'r mut Vec<(usize, Root)>,
    blocks: &'r Blocks<'b>,
    heap: &'r [(usize, usize)],
}

/// At most this many root pointers into unsampled heap memory are kept
/// (16 bytes each).
const MAX_ROOT_PTRS: usize = 1 << 20;

impl Roots<'_, '_> {
    fn hit(&mut self, w: usize, r: Root, beats_thread: bool) {
        if let Some(i) = self.blocks.find(w) {
            let slot = &mut self.root[i];
            if slot.is_none() || (beats_thread && matches!(slot, Some(Root::Thread { .. }))) {
                *slot = Some(r);
            }
        } else if self.ptrs.len() < MAX_ROOT_PTRS
            && matches!(r, Root::Static { .. })
            && in_ranges(self.heap, w)
        {
            self.ptrs.push((w, r));
        }
    }
}

/// Whether `w` lies in one of `ranges` (sorted, disjoint).
fn in_ranges(ranges: &[(usize, usize)], w: usize) -> bool {
    let i = ranges.partition_point(|&(a, _)| a <= w);
    i > 0 && w < ranges[i - 1].1
}

/// The process's private anonymous writable mappings (`/proc/self/maps`:
/// `rw-p`, no file), where the allocator's blocks are; sorted.
fn anonymous_mappings() -> Vec<(usize, usize)> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(_), Some(_), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.next().unwrap_or("");
        if perms != "rw-p" || inode != "0" || !(path.is_empty() || path == "[heap]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
            out.push((a, b));
        }
    }
    out.sort_unstable();
    out
}

/// `ranges` without the parts covered by `holes` (both sorted by start;
/// holes may overlap).
fn subtract(ranges: &[(usize, usize)], holes: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        let mut at = a;
        for &(h0, h1) in holes {
            if h1 <= at || h0 >= b {
                continue;
            }
            if h0 > at {
                out.push((at, h0));
            }
            at = at.max(h1);
        }
        if at < b {
            out.push((at, b));
        }
    }
    out
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
    // Anonymous writable mappings: where unsampled heap blocks are.
    let heap = anonymous_mappings();
    let mut root: Vec<Option<Root>> = vec![None; n];
    // Root words that point into heap memory outside the sampled blocks
    // (value, root), for the heap pass.
    let mut root_ptrs: Vec<(usize, Root)> = Vec::new();
    let mut roots_of = Roots {
        root: &mut root,
        ptrs: &mut root_ptrs,
        blocks: &blocks,
        heap: &heap,
    };
    for &(module, base, a, b) in &roots.data {
        rd.words(a, b, |at, w| {
            let r = Root::Static {
                module,
                offset: (at as u64).wrapping_sub(base),
            };
            roots_of.hit(w, r, true);
        });
    }
    for (ti, t) in threads.iter().enumerate() {
        let thread = ti as u32;
        let (mut lo, hi) = t.stack;
        if t.tid == me && lo <= here && here < hi {
            lo = here; // below is the scan's own frames
        }
        if lo < hi {
            let r = Root::Thread { thread, tls: false };
            rd.words(lo, hi, |_, w| roots_of.hit(w, r, false));
        }
        if t.tp != 0 {
            for &(off, len) in &roots.tls {
                let a = (t.tp as isize).wrapping_add(off) as usize;
                let r = Root::Thread { thread, tls: true };
                rd.words(a, a.saturating_add(len), |_, w| roots_of.hit(w, r, false));
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
    let mut g = Spread {
        first: &first,
        targets: &targets,
        reached: &mut reached,
        parent: &mut parent,
        queue: &mut queue,
    };
    g.spread((0..n).filter_map(|i| match root[i] {
        Some(Root::Static { .. }) => Some((i, root_holder(root[i]?))),
        _ => None,
    }));
    g.spread((0..n).filter_map(|i| match root[i] {
        Some(Root::Thread { .. }) => Some((i, root_holder(root[i]?))),
        _ => None,
    }));

    // The heap pass: for blocks still unreached, pointers from heap memory
    // outside the sampled blocks (unsampled blocks, or blocks born before
    // capture), each with the root that points nearest below it, if any.
    let unreached: Vec<usize> = (0..n).filter(|&i| !g.reached[i]).collect();
    let mut heap_hit: Vec<Option<HeapHit>> = vec![None; n];
    if !unreached.is_empty() && complete {
        root_ptrs.sort_unstable_by_key(|p| p.0);
        let ulo = records[unreached[0]].addr;
        let uhi = unreached
            .iter()
            .map(|&i| end(&records[i]))
            .max()
            .unwrap_or(0);
        let find_un = |w: usize| -> Option<usize> {
            if w < ulo || w >= uhi {
                return None;
            }
            let k = unreached
                .partition_point(|&i| records[i].addr <= w)
                .checked_sub(1)?;
            let i = unreached[k];
            (w < end(&records[i])).then_some(i)
        };
        // Never read the scan's own copies of block addresses, nor the
        // sampled-block table, nor the stacks (read as roots already).
        let span = |p: *const u8, len: usize| (p as usize, p as usize + len);
        let mut holes = vec![
            span(records.as_ptr().cast(), size_of_val(records)),
            span(unreached.as_ptr().cast(), size_of_val(unreached.as_slice())),
            span(rd.buf.as_ptr(), rd.buf.len()),
            span(root_ptrs.as_ptr().cast(), size_of_val(root_ptrs.as_slice())),
        ];
        holes.extend(crate::sampled_table::mappings().map(|(p, len)| span(p, len)));
        holes.extend(threads.iter().map(|t| t.stack).filter(|s| s.0 < s.1));
        holes.sort_unstable();
        let segs = subtract(&heap, &holes);
        'segments: for (a, b) in segs {
            let mut at = a;
            while at < b {
                if crate::sys::monotonic_ns().saturating_sub(start) > TIME_BUDGET_NS {
                    complete = false;
                    break 'segments;
                }
                let to = b.min(at.saturating_add(1 << 20));
                rd.words(at, to, |word_at, w| {
                    // A page-aligned value is what the allocator's own
                    // metadata holds (an extent's or slab's start): skipped.
                    if w % page == 0 {
                        return;
                    }
                    let Some(j) = find_un(w) else { return };
                    if blocks.find(word_at).is_some() {
                        return; // a sampled block's word: an edge already
                    }
                    let k = root_ptrs.partition_point(|p| p.0 <= word_at);
                    let near = k
                        .checked_sub(1)
                        .map(|k| root_ptrs[k])
                        .filter(|p| (word_at - p.0) as u64 <= HEAP_ROOT_REACH);
                    let better = match heap_hit[j] {
                        None => true,
                        Some((_, None)) => near.is_some(),
                        Some(_) => false,
                    };
                    if better {
                        heap_hit[j] = Some((word_at, near));
                    }
                });
                at = to;
            }
        }
    }
    let heap_holder = |i: usize, want: fn(&Option<(usize, Root)>) -> bool| {
        let (at, near) = heap_hit[i]?;
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
    };
    g.spread(
        (0..n)
            .filter_map(|i| heap_holder(i, |near| matches!(near, Some((_, Root::Static { .. }))))),
    );
    g.spread(
        (0..n)
            .filter_map(|i| heap_holder(i, |near| matches!(near, Some((_, Root::Thread { .. }))))),
    );
    // A heap word with no root near it holds its block only in the
    // analyser's eyes (after cycles: an unsampled block's word is as often
    // a stale copy in freed memory): marked, not spread.
    let mut heap_only = vec![false; n];
    for (i, h) in (0..n).filter_map(|i| heap_holder(i, Option::is_none)) {
        if !g.reached[i] {
            g.parent[i] = Some(h);
            heap_only[i] = true;
        }
    }
    drop(queue);
    drop(heap_hit);

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
    // The read buffer held copies of the program's words: cleared before
    // it is freed (see `Retention`'s `Drop`).
    rd.buf.fill(0);
    core::hint::black_box(&rd.buf);
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
