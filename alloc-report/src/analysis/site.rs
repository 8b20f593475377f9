//! The analyser's site table: each site of a series gets an index (in the
//! order first met) and its label, and a snapshot's entries are gathered
//! per site. Which stacks are one site is not decided here but by
//! [`alloc_snapshot::site`] ([`SiteKey`]), the one definition that the
//! collector's leak assertions use too.

use std::borrow::{Borrow, Cow};
use std::collections::hash_map::Entry;
use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use alloc_snapshot::{SiteKey, SiteLive, Snapshot, Stack};

use super::survivors::Estimate;
use super::HashMap;

/// The name of the one site that stands for the whole heap.
pub const ALL_SITES: &str = "(all)";

/// A `Hasher` that passes a `u64` through: for the table keyed by a hash
/// already computed ([`key_hash`]).
#[derive(Clone, Copy, Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = rustc_hash::FxHasher::default();
        h.write_u64(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hash of a site key.
fn key_hash(key: &SiteKey<'_>) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// What the table checks before taking a stack id met before for the same
/// stack: its site frame's address, line and the lengths of its function
/// and file names, and the stack's number of frames and user frame. In one
/// process an id always names the same stack; a stack of another process
/// (another build, another load address) with the same id differs in
/// these. Reading them costs no string comparison and no short path, which
/// matters at 10,000 stacks in each of 1,000 snapshots.
#[derive(Clone, Copy, PartialEq, Eq)]
struct StackPrint {
    ip: Option<u64>,
    line: Option<u32>,
    function_len: Option<usize>,
    file_len: Option<usize>,
    frames: usize,
    user_frame: Option<u32>,
}

impl StackPrint {
    fn of(stack: &Stack) -> Self {
        let f = stack.site();
        StackPrint {
            ip: f.map(|f| f.ip),
            line: f.and_then(|f| f.line),
            function_len: f.and_then(|f| f.function.as_ref().map(String::len)),
            file_len: f.and_then(|f| f.file.as_ref().map(String::len)),
            frames: stack.frames.len(),
            user_frame: stack.user_frame,
        }
    }
}

/// Stack ids below this are looked up in a vector, others in a map.
const ID_CACHE: u32 = 1 << 20;

/// The sites of a series: an index per [`SiteKey`], in the order first
/// met, each with its label and one of its stacks. `S` is what the table
/// keeps of a stack: `&Stack` when the snapshots outlive the table (a
/// diff, a matrix), `Stack` when they do not ([`super::Analyzer`]).
pub(crate) struct SiteTable<S> {
    /// Site by the hash of its key: 16 bytes a slot rather than the 48 of
    /// the key itself and the site, so the table stays small and
    /// cache-warm. On a hit, the key is compared with the site's stack's.
    keys: StdHashMap<u64, usize, BuildHasherDefault<KeyHashHasher>>,
    /// Sites whose key's hash was already taken by another key.
    collided: Vec<usize>,
    /// For each site, the stack it was first met in.
    stacks: Vec<S>,
    /// For each site, its label ([`SiteKey::label`]), made when the site
    /// is first met (while its strings are in the cache).
    labels: Vec<String>,
    /// Every stack id met (below [`ID_CACHE`]), with its site and
    /// [`StackPrint`]: a later snapshot of the same process names the same
    /// stacks by the same ids, and finds their sites here without building
    /// keys.
    by_id: Vec<Option<(usize, StackPrint)>>,
    /// The same for ids from [`ID_CACHE`] on.
    by_big_id: HashMap<u32, (usize, StackPrint)>,
}

/// A run of a snapshot's site entries of one stack: its site, and where
/// the run starts and ends in [`Snapshot::sites`].
#[derive(Clone, Copy)]
struct Run {
    site: usize,
    start: usize,
    end: usize,
}

impl<S: Borrow<Stack>> SiteTable<S> {
    pub(crate) fn new() -> Self {
        SiteTable {
            keys: StdHashMap::default(),
            collided: Vec::new(),
            stacks: Vec::new(),
            labels: Vec::new(),
            by_id: Vec::new(),
            by_big_id: HashMap::default(),
        }
    }

    /// Room for `n` more sites and stack ids.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
    }

    /// How many sites.
    pub(crate) fn len(&self) -> usize {
        self.stacks.len()
    }

    /// The stack `site` was first met in.
    pub(crate) fn stack(&self, site: usize) -> &Stack {
        self.stacks[site].borrow()
    }

    /// The sites' labels, by index.
    pub(crate) fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The sites' labels, by index, taken out of the table.
    pub(crate) fn take_labels(&mut self) -> Vec<String> {
        std::mem::take(&mut self.labels)
    }

    /// The site of `stack`, added if new (`keep` makes what the table
    /// keeps of its first stack), and whether the stack's id was new or
    /// named another stack before.
    pub(crate) fn site_of<'s>(
        &mut self,
        stack: &'s Stack,
        keep: impl Fn(&'s Stack) -> S,
    ) -> (usize, bool) {
        let print = StackPrint::of(stack);
        let seen = if stack.id < ID_CACHE {
            self.by_id.get(stack.id as usize).copied().flatten()
        } else {
            self.by_big_id.get(&stack.id).copied()
        };
        if let Some((site, p)) = seen {
            if p == print {
                return (site, false);
            }
        }
        let site = self.site_by_key(stack, &keep);
        if stack.id < ID_CACHE {
            let i = stack.id as usize;
            if self.by_id.len() <= i {
                self.by_id.resize(i + 1, None);
            }
            self.by_id[i] = Some((site, print));
        } else {
            self.by_big_id.insert(stack.id, (site, print));
        }
        (site, true)
    }

    /// [`SiteTable::site_of`] through the stack's key.
    fn site_by_key<'s>(&mut self, stack: &'s Stack, keep: &impl Fn(&'s Stack) -> S) -> usize {
        let key = stack.site_key();
        let n = self.stacks.len();
        let site = match self.keys.entry(key_hash(&key)) {
            Entry::Vacant(v) => {
                v.insert(n);
                n
            }
            Entry::Occupied(o) => {
                let site = *o.get();
                if self.stacks[site].borrow().site_key() == key {
                    site
                } else {
                    let stacks = &self.stacks;
                    match self
                        .collided
                        .iter()
                        .copied()
                        .find(|&s| stacks[s].borrow().site_key() == key)
                    {
                        Some(s) => s,
                        None => {
                            self.collided.push(n);
                            n
                        }
                    }
                }
            }
        };
        if site == n {
            self.stacks.push(keep(stack));
            self.labels.push(key.label());
        }
        site
    }
}

impl<'a> SiteTable<&'a Stack> {
    /// The runs of `s`'s site entries (consecutive entries of one stack),
    /// in the order of [`Snapshot::sites`], with their sites; entries whose
    /// stack is missing are left out.
    fn runs(&mut self, s: &'a Snapshot) -> Vec<Run> {
        // At most one run per entry; pages of the room not used are never
        // touched.
        let mut out: Vec<Run> = Vec::with_capacity(s.sites.len());
        let mut walk = StackWalk::new(s);
        let mut i = 0;
        while i < s.sites.len() {
            let id = s.sites[i].stack;
            let start = i;
            while i < s.sites.len() && s.sites[i].stack == id {
                i += 1;
            }
            let Some(stack) = walk.find(id, s) else {
                continue;
            };
            out.push(Run {
                site: self.site_of(stack, |st| st).0,
                start,
                end: i,
            });
        }
        out
    }

    /// Per-site (site index, epoch, estimate) of `s`, summed over stacks
    /// that share a site, sorted by site then epoch.
    pub(crate) fn entries(&mut self, s: &'a Snapshot) -> Vec<(usize, u32, Estimate)> {
        let mut out: Vec<(usize, u32, Estimate)> = Vec::with_capacity(s.sites.len());
        for r in self.runs(s) {
            out.extend(s.sites[r.start..r.end].iter().map(|e| {
                (
                    r.site,
                    e.epoch,
                    Estimate {
                        bytes: e.bytes,
                        blocks: e.blocks,
                    },
                )
            }));
        }
        sort_and_sum(&mut out);
        out
    }

    /// `s`'s site entries as for [`SiteTable::entries`](Self::entries), but as a list of
    /// entries and, per site index, the range of its entries there. The
    /// list is [`Snapshot::sites`] itself when every site is one run with
    /// epochs ascending (the usual case: no copy), in any order of sites.
    pub(crate) fn by_site(
        &mut self,
        s: &'a Snapshot,
    ) -> (Cow<'a, [SiteLive]>, Vec<(usize, usize)>) {
        let runs = self.runs(s);
        let mut ranges = vec![(0, 0); self.len()];
        let mut clean = true;
        for r in &runs {
            let range = &mut ranges[r.site];
            if range.1 != 0
                || !s.sites[r.start..r.end]
                    .windows(2)
                    .all(|w| w[0].epoch < w[1].epoch)
            {
                clean = false;
                break;
            }
            *range = (r.start, r.end);
        }
        if clean {
            return (Cow::Borrowed(&s.sites), ranges);
        }
        ranges.fill((0, 0));
        let mut entries: Vec<(usize, u32, Estimate)> = Vec::with_capacity(s.sites.len());
        for r in &runs {
            entries.extend(s.sites[r.start..r.end].iter().map(|e| {
                (
                    r.site,
                    e.epoch,
                    Estimate {
                        bytes: e.bytes,
                        blocks: e.blocks,
                    },
                )
            }));
        }
        sort_and_sum(&mut entries);
        let mut list = Vec::with_capacity(entries.len());
        for (k, &(site, epoch, est)) in entries.iter().enumerate() {
            if ranges[site].1 == 0 {
                ranges[site].0 = k;
            }
            ranges[site].1 = k + 1;
            list.push(SiteLive {
                stack: 0,
                epoch,
                bytes: est.bytes,
                blocks: est.blocks,
                samples: 0,
            });
        }
        (Cow::Owned(list), ranges)
    }
}

/// Sorts `(site, epoch, estimate)` entries by site then epoch and adds up
/// those with the same site and epoch.
fn sort_and_sum(out: &mut Vec<(usize, u32, Estimate)>) {
    // Usually already in order (sites numbered in stack order).
    if !out.is_sorted_by_key(|&(site, epoch, _)| (site, epoch)) {
        out.sort_unstable_by_key(|&(site, epoch, _)| (site, epoch));
    }
    out.dedup_by(|b, a| {
        if (a.0, a.1) == (b.0, b.1) {
            a.2.add(b.2.bytes, b.2.blocks);
            true
        } else {
            false
        }
    });
}

/// Finds the stacks named by a snapshot's sites, which are sorted by stack
/// id, walking the stacks (sorted by id in every valid file) alongside
/// instead of searching for each; falls back to a search when unsorted.
pub(crate) struct StackWalk<'a> {
    stacks: &'a [Stack],
    at: usize,
}

impl<'a> StackWalk<'a> {
    pub(crate) fn new(s: &'a Snapshot) -> Self {
        StackWalk {
            stacks: &s.stacks,
            at: 0,
        }
    }

    pub(crate) fn find(&mut self, id: u32, s: &'a Snapshot) -> Option<&'a Stack> {
        while let Some(st) = self.stacks.get(self.at) {
            match st.id.cmp(&id) {
                std::cmp::Ordering::Less => self.at += 1,
                std::cmp::Ordering::Equal => return Some(st),
                std::cmp::Ordering::Greater => break,
            }
        }
        s.stack(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc_snapshot::Frame;

    #[test]
    fn site_table_tells_keys_with_one_hash_apart() {
        let stack = |id: u32, function: &str| Stack {
            id,
            frames: vec![Frame {
                ip: 0x1234,
                function: Some(function.into()),
                file: Some("a.rs".into()),
                line: Some(3),
            }],
            user_frame: None,
        };
        let (x, y, x2) = (stack(1, "x"), stack(2, "y"), stack(3, "x"));
        let mut table = SiteTable::new();
        let mut site_of = |st| table.site_of(st, |s| s).0;
        assert_eq!(site_of(&x), 0);
        // Make `y`'s hash collide with `x`'s site.
        table.keys.insert(key_hash(&y.site_key()), 0);
        let mut site_of = |st| table.site_of(st, |s| s).0;
        assert_eq!(site_of(&y), 1);
        assert_eq!(site_of(&y), 1);
        table.by_id.clear();
        let mut site_of = |st| table.site_of(st, |s| s).0;
        assert_eq!(site_of(&y), 1);
        assert_eq!(site_of(&x2), 0);
        assert_eq!(table.labels, ["a.rs:3 x", "a.rs:3 y"]);
    }

    #[test]
    fn a_stack_id_reused_for_another_stack_is_looked_up_again() {
        let stack = |id: u32, function: &str, ip: u64, frames: usize| Stack {
            id,
            frames: vec![
                Frame {
                    ip,
                    function: Some(function.into()),
                    file: Some("a.rs".into()),
                    line: Some(3),
                };
                frames
            ],
            user_frame: Some(0),
        };
        let mut table: SiteTable<Stack> = SiteTable::new();
        let big = ID_CACHE + 5;
        for id in [4, big] {
            let (a, b) = (stack(id, "f", 0x10, 1), stack(id, "gg", 0x20, 1));
            let (a2, a3) = (stack(id, "f", 0x30, 1), stack(id, "f", 0x30, 2));
            // The same two sites under both ids.
            let first = 0;
            assert_eq!(table.site_of(&a, Stack::clone), (first, true));
            assert_eq!(table.site_of(&a, Stack::clone), (first, false));
            // Another stack under the same id (another process): its key
            // decides.
            assert_eq!(table.site_of(&b, Stack::clone), (first + 1, true));
            assert_eq!(table.site_of(&a2, Stack::clone), (first, true));
            assert_eq!(table.site_of(&a3, Stack::clone), (first, true));
            assert_eq!(table.site_of(&a3, Stack::clone), (first, false));
        }
        assert_eq!(table.stack(0).frames[0].ip, 0x10);
        assert_eq!(table.labels(), ["a.rs:3 f", "a.rs:3 gg"]);
    }
}
