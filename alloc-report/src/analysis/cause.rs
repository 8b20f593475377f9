//! Why a leak site's survivors are still alive: a [`Cause`] per site,
//! computed from a snapshot's retention scan
//! ([`alloc_snapshot::Retention`]: what holds each sampled survivor).
//!
//! Each sampled survivor of a site (born in a closed epoch) gets one kind:
//!
//! - **static**: a static reaches it (the path from the static, root first);
//! - **thread**: only a thread's stack or thread-local storage reaches it;
//! - **cycle**: no root reaches it, but blocks that point to each other
//!   (a strongly connected set of two or more) do, or it is one of them;
//! - **unreferenced**: no root reaches it and no cycle holds it: nothing
//!   points to it, or only blocks that nothing points to (forgotten,
//!   leaked on purpose, or held by a pointer the scan cannot see);
//! - **heap**: held by memory the scan read but could not attribute to a
//!   sampled block: an unsampled block (born before capture began, or not
//!   sampled) whose own holder is unknown, or known only to be the
//!   allocator's or the loader's metadata.
//!
//! The site's cause is the kind most of its scanned survivors have, with
//! that kind's share of them and the commonest path among them; a site
//! none of whose survivors were scanned gets `unknown`.

use super::HashMap;
use alloc_snapshot::{Holder, RetainedBlock, Retention, Snapshot};
use rustc_hash::FxHashSet as HashSet;
use serde::Serialize;
use std::cell::RefCell;

/// What keeps a leak site's blocks alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// Reachable from a static.
    Static,
    /// Held only from a thread's stack or thread-local storage.
    Thread,
    /// Reachable only from blocks that point to each other.
    Cycle,
    /// Nothing the scan read points to them.
    Unreferenced,
    /// Held by a block the scan cannot attribute.
    Heap,
    /// No sampled survivor of the site was scanned.
    Unknown,
}

impl CauseKind {
    /// The kind's name, as in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CauseKind::Static => "static",
            CauseKind::Thread => "thread",
            CauseKind::Cycle => "cycle",
            CauseKind::Unreferenced => "unreferenced",
            CauseKind::Heap => "heap",
            CauseKind::Unknown => "unknown",
        }
    }

    /// A short fix hint, in the words of the original write-up.
    #[must_use]
    pub fn hint(self) -> &'static str {
        match self {
            CauseKind::Static => {
                "a module-level container keeps it: remove the entry on close (a guard whose Drop \
                 removes it), or bound the container"
            }
            CauseKind::Thread => {
                "a thread keeps it (its stack or a thread_local!): clear the thread's copy when \
                 done, or end the thread or task that holds it"
            }
            CauseKind::Cycle => {
                "a reference cycle: make the back edge a Weak (Rc::downgrade / Arc::downgrade) so \
                 the pair is freed"
            }
            CauseKind::Unreferenced => {
                "nothing points to it: stop forgetting it (Box::leak, mem::forget, a channel or \
                 task dropped without being drained), or own it so that it drops"
            }
            CauseKind::Heap => {
                "held by memory the tool did not sample (made before capture began): follow the \
                 path from the block that holds it"
            }
            CauseKind::Unknown => {
                "no sampled survivor of this site was scanned: take the last snapshot with a \
                 retention scan"
            }
        }
    }
}

/// The cause of one site, in every format.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cause {
    /// The kind most of the site's scanned survivors have.
    pub kind: CauseKind,
    /// What holds them, root first (the commonest path among those blocks),
    /// ending with `this block`.
    pub path: Vec<String>,
    /// The share of the site's scanned survivors that `kind` explains.
    pub share: f64,
    /// The site's sampled survivors the scan looked at.
    pub blocks: u64,
    /// Every kind found among them, with its share, largest first.
    pub shares: Vec<(CauseKind, f64)>,
    /// What to do about it.
    pub hint: String,
}

impl Cause {
    /// The cause of a site none of whose survivors were scanned.
    #[must_use]
    pub fn unknown() -> Self {
        Cause {
            kind: CauseKind::Unknown,
            path: Vec::new(),
            share: 0.0,
            blocks: 0,
            shares: Vec::new(),
            hint: CauseKind::Unknown.hint().to_string(),
        }
    }

    /// One line: `static (100%): static X -> a.rs:3 -> this block`.
    #[must_use]
    pub fn line(&self) -> String {
        let mut s = format!("{} ({:.0}%)", self.kind.as_str(), self.share * 100.0);
        if !self.path.is_empty() {
            s.push_str(": ");
            s.push_str(&self.path.join(" -> "));
        }
        s
    }
}

/// One block's kind and path.
struct Found {
    kind: CauseKind,
    path: Vec<String>,
}

/// The blocks of a retention scan with their kinds worked out lazily.
struct Graph<'a> {
    s: &'a Snapshot,
    r: &'a Retention,
    /// For blocks no root reaches: the cycle (strongly connected set of two
    /// or more) that holds it, by the index of its first member.
    cycle_of: Vec<Option<usize>>,
    /// The members of each cycle, by that index.
    members: HashMap<usize, Vec<usize>>,
    /// The cycles a heap word (an unsampled block) points into.
    entered: HashSet<usize>,
    /// Labels made so far, by stack id (a label is made once per stack,
    /// not once per block).
    labels: RefCell<HashMap<u32, String>>,
    /// Each cycle's path step (`cycle of A <-> B`), made once per cycle:
    /// a cycle of n blocks would otherwise label n blocks n times.
    cycle_steps: RefCell<HashMap<usize, String>>,
}

const THIS: &str = "this block";
/// A path's step through heap memory the scan has no record of.
const UNSAMPLED: &str = "an unsampled block (born before capture began, or not sampled)";

impl<'a> Graph<'a> {
    fn new(s: &'a Snapshot, r: &'a Retention) -> Self {
        let n = r.blocks.len();
        // Edges u -> v of the blocks no root reaches, from their referrers.
        let mut fwd: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (v, b) in r.blocks.iter().enumerate() {
            for &u in &b.referrers {
                fwd[u as usize].push(v);
            }
        }
        let comp = strongly_connected(&fwd);
        let mut size: HashMap<usize, usize> = HashMap::default();
        for &c in &comp {
            *size.entry(c).or_default() += 1;
        }
        let mut cycle_of: Vec<Option<usize>> = vec![None; n];
        let mut members: HashMap<usize, Vec<usize>> = HashMap::default();
        let mut queue = Vec::new();
        for v in 0..n {
            if size[&comp[v]] >= 2 {
                members.entry(comp[v]).or_default().push(v);
                cycle_of[v] = Some(comp[v]);
                queue.push(v);
            }
        }
        // A cycle that a heap word points into is held by that unsampled
        // block, not only by itself.
        let entered: HashSet<usize> = members
            .iter()
            .filter(|(_, m)| {
                m.iter()
                    .any(|&v| matches!(r.blocks[v].held_by, Some(Holder::Heap { .. })))
            })
            .map(|(&c, _)| c)
            .collect();
        // Blocks held by a cycle (reachable from one) count as held by it.
        while let Some(u) = queue.pop() {
            let c = cycle_of[u];
            for &v in &fwd[u] {
                if cycle_of[v].is_none() {
                    cycle_of[v] = c;
                    queue.push(v);
                }
            }
        }
        Graph {
            s,
            r,
            cycle_of,
            members,
            entered,
            labels: RefCell::default(),
            cycle_steps: RefCell::default(),
        }
    }

    fn label(&self, b: &RetainedBlock) -> String {
        self.labels
            .borrow_mut()
            .entry(b.stack)
            .or_insert_with(|| {
                self.s
                    .stack(b.stack)
                    .map_or_else(|| format!("stack {}", b.stack), |st| st.label())
            })
            .clone()
    }

    /// The path step naming the sites of cycle `c`.
    fn cycle_step(&self, c: usize, blocks: &[RetainedBlock]) -> String {
        if let Some(step) = self.cycle_steps.borrow().get(&c) {
            return step.clone();
        }
        let mut sites: Vec<String> = self.members[&c]
            .iter()
            .map(|&m| self.label(&blocks[m]))
            .collect();
        sites.sort();
        sites.dedup();
        let step = format!("cycle of {}", sites.join(" <-> "));
        self.cycle_steps.borrow_mut().insert(c, step.clone());
        step
    }

    fn root_name(&self, h: &Holder) -> String {
        match h {
            Holder::Static {
                module,
                offset,
                symbol,
            } => match symbol {
                Some(name) => format!("static {name}"),
                None => {
                    let m = self.s.modules.get(*module as usize);
                    let file = m.map_or("?", |m| {
                        m.path.rsplit('/').next().unwrap_or(m.path.as_str())
                    });
                    format!("static in {file}+{offset:#x}")
                }
            },
            Holder::Thread { thread, tls } => {
                let t = self.r.threads.get(*thread as usize);
                let who = match t {
                    Some(t) if t.main => format!("main thread (tid {})", t.tid),
                    Some(t) if !t.name.is_empty() => {
                        format!("thread '{}' (tid {})", t.name, t.tid)
                    }
                    Some(t) => format!("thread {}", t.tid),
                    None => "a thread".to_string(),
                };
                if *tls {
                    format!("{who} thread-local storage")
                } else {
                    format!("{who} stack")
                }
            }
            Holder::Heap { .. } => UNSAMPLED.to_string(),
            Holder::Block { .. } => String::new(),
        }
    }

    /// The kind and path of block `i`, which a root (or a heap word near a
    /// root's pointer) holds: up the parent chain to it (bounded: a
    /// malformed chain that loops ends after every block once).
    fn rooted(&self, i: usize) -> Found {
        let blocks = &self.r.blocks;
        let mut chain = vec![THIS.to_string()];
        let mut at = i;
        for _ in 0..=blocks.len() {
            match &blocks[at].held_by {
                Some(Holder::Block { block, .. }) => {
                    at = *block as usize;
                    chain.push(self.label(&blocks[at]));
                }
                Some(h) => {
                    let kind = match h {
                        Holder::Static { .. } => CauseKind::Static,
                        Holder::Heap { root: Some(r), .. } if runtime_internal(r) => {
                            CauseKind::Heap
                        }
                        Holder::Heap { root: Some(r), .. } => match **r {
                            Holder::Static { .. } => CauseKind::Static,
                            _ => CauseKind::Thread,
                        },
                        Holder::Heap { root: None, .. } => CauseKind::Heap,
                        _ => CauseKind::Thread,
                    };
                    if let Holder::Heap { root: Some(r), .. } = h {
                        chain.push(UNSAMPLED.to_string());
                        if !runtime_internal(r) {
                            chain.push(self.root_name(r));
                        }
                    } else {
                        chain.push(self.root_name(h));
                    }
                    chain.reverse();
                    return Found { kind, path: chain };
                }
                None => break,
            }
        }
        Found {
            kind: CauseKind::Unknown,
            path: Vec::new(),
        }
    }

    /// The kind and path of block `i`.
    fn found(&self, i: usize) -> Found {
        let blocks = &self.r.blocks;
        if !matches!(
            blocks[i].held_by,
            None | Some(Holder::Heap { root: None, .. })
        ) {
            return self.rooted(i);
        }
        if let Some(c) = self.cycle_of[i] {
            let mut path = vec![self.cycle_step(c, blocks), THIS.to_string()];
            let kind = if self.entered.contains(&c) {
                path.insert(0, UNSAMPLED.to_string());
                CauseKind::Heap
            } else {
                CauseKind::Cycle
            };
            return Found { kind, path };
        }
        // Up the chain of first referrers to its top: held by a heap word
        // (an unsampled block) somewhere on it, or by nothing.
        let mut chain = vec![THIS.to_string()];
        let mut at = i;
        let mut heap = false;
        for _ in 0..=blocks.len() {
            if matches!(blocks[at].held_by, Some(Holder::Heap { .. })) {
                heap = true;
                break;
            }
            match blocks[at].referrers.first() {
                Some(&u) => {
                    at = u as usize;
                    chain.push(self.label(&blocks[at]));
                }
                None => break,
            }
        }
        let (kind, top) = if heap {
            (CauseKind::Heap, UNSAMPLED)
        } else {
            (CauseKind::Unreferenced, "nothing")
        };
        chain.push(top.to_string());
        chain.reverse();
        Found { kind, path: chain }
    }
}

/// Whether a heap word's nearest root is a static of the allocator, of
/// libc, of the dynamic loader or of this tool: their pointers lead to the
/// allocator's metadata (arenas, thread caches that keep copies of block
/// addresses) or the tool's own memory, which hold no block of the
/// program's; the word's block counts as held by unsampled memory. A
/// program's Rust statics are named by path (`crate::module::NAME`); a
/// name without `::` is a C library's (jemalloc's file-level `a0`, `b0`
/// and `_rjem_je_arenas`, `_rtld_global`, `main_arena`), and the tool's
/// own are `alloc_core::…` and `alloc_admin::…`.
fn runtime_internal(root: &Holder) -> bool {
    const TOOL: [&str; 2] = ["alloc_core::", "alloc_admin::"];
    matches!(root, Holder::Static { symbol: Some(s), .. }
        if !s.contains("::") || TOOL.iter().any(|p| s.starts_with(p)))
}

/// Strongly connected components of `fwd` (iterative Tarjan): each node's
/// component id.
fn strongly_connected(fwd: &[Vec<usize>]) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let n = fwd.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0; n];
    let mut on = vec![false; n];
    let mut comp = vec![NONE; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        call.push((root, 0));
        while let Some(&mut (v, ref mut k)) = call.last_mut() {
            if *k == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = fwd[v].get(*k) {
                *k += 1;
                if index[w] == NONE {
                    call.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(u, _)) = call.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    comp[w] = v;
                    if w == v {
                        break;
                    }
                }
            }
        }
    }
    comp
}

/// `path` with runs of one label (a linked list, a tree's levels) written
/// once, with their length: `a.rs:3 f (x4)`.
fn collapse(path: Vec<String>) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::with_capacity(path.len());
    for p in path {
        match out.last_mut() {
            Some((last, n)) if *last == p => *n += 1,
            _ => out.push((p, 1)),
        }
    }
    out.into_iter()
        .map(|(p, n)| if n == 1 { p } else { format!("{p} (x{n})") })
        .collect()
}

/// How many blocks had each path.
type Paths = HashMap<Vec<String>, u64>;

/// The cause of every site that has sampled survivors in `r` (born in
/// `[start, s.epoch)`), by the site index `site_of` gives a stack id;
/// `nsites` entries.
pub(crate) fn site_causes(
    s: &Snapshot,
    r: &Retention,
    start: u32,
    site_of: &HashMap<u32, usize>,
    nsites: usize,
) -> Vec<Option<Cause>> {
    let graph = Graph::new(s, r);
    let mut tally: Vec<HashMap<CauseKind, (u64, Paths)>> = vec![HashMap::default(); nsites];
    for (i, b) in r.blocks.iter().enumerate() {
        if b.epoch < start || b.epoch >= s.epoch {
            continue;
        }
        let Some(&site) = site_of.get(&b.stack) else {
            continue;
        };
        let Some(t) = tally.get_mut(site) else {
            continue;
        };
        let f = graph.found(i);
        let e = t.entry(f.kind).or_default();
        e.0 += 1;
        *e.1.entry(collapse(f.path)).or_default() += 1;
    }
    tally
        .into_iter()
        .map(|t| {
            let total: u64 = t.values().map(|e| e.0).sum();
            if total == 0 {
                return None;
            }
            let mut shares: Vec<(CauseKind, f64, &Paths)> = t
                .iter()
                .map(|(k, e)| (*k, e.0 as f64 / total as f64, &e.1))
                .collect();
            shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let (kind, share, paths) = shares[0];
            let path = paths
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(p, _)| p.clone())
                .unwrap_or_default();
            Some(Cause {
                kind,
                path,
                share,
                blocks: total,
                shares: shares.iter().map(|&(k, f, _)| (k, f)).collect(),
                hint: kind.hint().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_one_component_and_a_chain_is_not() {
        // 0 <-> 1, 1 -> 2, 3 alone.
        let fwd = vec![vec![1], vec![0, 2], vec![], vec![]];
        let c = strongly_connected(&fwd);
        assert_eq!(c[0], c[1]);
        assert_ne!(c[1], c[2]);
        assert_ne!(c[2], c[3]);
    }

    #[test]
    fn c_statics_and_the_tools_are_runtime_internal_and_a_programs_are_not() {
        let named = |s: &str| Holder::Static {
            module: 0,
            offset: 0,
            symbol: Some(s.to_string()),
        };
        for internal in ["a0", "b0", "_rjem_je_arenas", "_rtld_global", "main_arena"] {
            assert!(runtime_internal(&named(internal)), "{internal}");
        }
        assert!(runtime_internal(&named("alloc_core::sampler::STATE")));
        assert!(!runtime_internal(&named(
            "demo_server::patterns::global_list::CONNECTIONS"
        )));
        assert!(!runtime_internal(&Holder::Static {
            module: 0,
            offset: 0,
            symbol: None
        }));
    }
}
