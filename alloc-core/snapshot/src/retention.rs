//! What holds the sampled blocks: the result of a retention scan
//! ([`Retention`], `Snapshot::retention`), taken on request with a snapshot
//! (`alloc_core::snapshot_with_retention`, the admin endpoint's
//! `/snapshot?retention=1`).
//!
//! The scan is conservative: any aligned word whose value falls inside a
//! sampled block (interior pointers included) is taken for a pointer to
//! it. It reads the writable segments of loaded modules (statics), each
//! registered thread's stack and static thread-local storage, and the
//! sampled blocks themselves. It cannot see pointers held in memory it
//! does not read: unsampled blocks, blocks born before capture began,
//! registers, pages that are not resident (swapped out or never touched),
//! thread-local storage of modules opened with `dlopen`, and memory of
//! threads that never allocated; and it may take an integer that looks
//! like an address, or a stale word in a dead stack frame, for a pointer.

use serde::{Deserialize, Serialize};

/// The retention scan of one snapshot: the sampled survivors, the blocks on
/// the paths that hold them, and what holds each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Retention {
    /// What the scan read and what it cost.
    pub scan: RetentionScan,
    /// The threads whose stacks and thread-local storage were read; a
    /// [`Holder::Thread`] names one by index.
    pub threads: Vec<RetentionThread>,
    /// Blocks, sorted by address, none overlapping: every sampled survivor
    /// (born before the snapshot's epoch), every block on the path that
    /// holds one, and every block that points to a survivor held by no
    /// root. A [`Holder::Block`] or a referrer names one by index.
    pub blocks: Vec<RetainedBlock>,
}

/// What a retention scan read and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionScan {
    /// Wall-clock time of the scan, in nanoseconds.
    pub duration_ns: u64,
    /// Sampled blocks live when the scan began.
    pub sampled_blocks: u64,
    /// Bytes read (roots and blocks).
    pub bytes_read: u64,
    /// Bytes skipped because their pages were not resident (never read, so
    /// that the scan makes nothing resident).
    pub bytes_not_resident: u64,
    /// Bytes that could not be read (unmapped or freed meanwhile).
    pub bytes_unreadable: u64,
    /// Pointers found from one sampled block to another.
    pub edges: u64,
    /// The most memory the scan held at once (its tables and buffers).
    pub peak_bytes: u64,
    /// False if a budget (time, bytes read, edges) ended the scan early:
    /// blocks left unread may hold others that then look unreferenced.
    pub complete: bool,
}

/// A thread the scan read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionThread {
    /// Its kernel thread id.
    pub tid: u32,
    /// Its name (`/proc/self/task/<tid>/comm`), empty if unknown.
    pub name: String,
    /// Whether it is the process's main thread.
    pub main: bool,
}

/// One block of [`Retention::blocks`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetainedBlock {
    /// Its address.
    pub addr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its stack id in `Snapshot::stacks`.
    pub stack: u32,
    /// Its birth epoch.
    pub epoch: u32,
    /// What holds it: the first referrer on a shortest path from a root
    /// (statics first, then threads, then heap words near a static's or a
    /// thread-local's pointer), a heap word no root is near (`Heap` with
    /// no `root`: not followed further), or `None`.
    pub held_by: Option<Holder>,
    /// For a block no root reaches (`held_by` `None` or a rootless heap
    /// word): the blocks (indices) that point to it, at most
    /// [`MAX_REFERRERS`]; empty otherwise.
    pub referrers: Vec<u32>,
}

/// How far below a heap word a root's pointer may point for the root to
/// be taken as the holder of that word's (unsampled) block.
pub const HEAP_ROOT_REACH: u64 = 16 << 10;

/// At most this many referrers are kept per block.
pub const MAX_REFERRERS: usize = 16;

/// What holds a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// A static: a word in a writable segment of `Snapshot::modules[module]`
    /// at `offset` from its load bias (the symbol table's address).
    Static {
        /// Index into `Snapshot::modules`.
        module: u32,
        /// The word's address minus the module's load bias.
        offset: u64,
        /// The static's name (from the module's symbol table), once
        /// symbolised; `None` in a raw snapshot.
        symbol: Option<String>,
    },
    /// A thread's stack, or its thread-local storage (`tls`).
    Thread {
        /// Index into [`Retention::threads`].
        thread: u32,
        /// Whether the word is in its static thread-local storage.
        tls: bool,
    },
    /// A word of heap memory outside every sampled block (an unsampled
    /// block, or one born before capture began, whose bounds the scan does
    /// not know), found only for blocks no root or sampled path reaches.
    Heap {
        /// The word's address.
        addr: u64,
        /// The root (a static or a thread) with the nearest pointer at or
        /// below `addr`, at most [`HEAP_ROOT_REACH`] below it: probably
        /// the unsampled block's start, so the root that holds it. A
        /// heuristic: `None` when no root points that close.
        root: Option<Box<Holder>>,
        /// `addr` minus the value of that root's pointer (0 without one).
        offset: u64,
    },
    /// Another block of [`Retention::blocks`], at `offset` into it.
    Block {
        /// Its index.
        block: u32,
        /// Where in it the pointer is.
        offset: u64,
    },
}

/// The blocks' addresses are cleared before their memory is freed, so
/// that a later retention scan of the same process (whose heap pass reads
/// freed memory too) does not take this copy for pointers to them.
impl Drop for Retention {
    fn drop(&mut self) {
        for b in &mut self.blocks {
            b.addr = 0;
        }
        core::hint::black_box(&self.blocks);
    }
}

impl Retention {
    /// The blocks' structure: sorted, disjoint, every index in range.
    pub(crate) fn check(&self, modules: usize, stacks: &[u32]) -> Result<(), String> {
        let n = self.blocks.len();
        let mut end = 0u64;
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 && b.addr < end {
                return Err(format!(
                    "retention.blocks[{i}] at {:#x} overlaps or precedes the block before it",
                    b.addr
                ));
            }
            end = b.addr.saturating_add(b.size.max(1));
            if stacks.binary_search(&b.stack).is_err() {
                return Err(format!(
                    "retention.blocks[{i}] names stack {}, which is not in the snapshot",
                    b.stack
                ));
            }
            // The root a holder names: itself, or a heap word's root.
            let root = match &b.held_by {
                Some(Holder::Heap { root: Some(r), .. }) => {
                    if !matches!(**r, Holder::Static { .. } | Holder::Thread { .. }) {
                        return Err(format!(
                            "retention.blocks[{i}] is held by heap memory whose root is not a \
                             static or a thread"
                        ));
                    }
                    Some(&**r)
                }
                h => h.as_ref(),
            };
            match root {
                Some(&Holder::Static { module, .. }) if module as usize >= modules => {
                    return Err(format!(
                        "retention.blocks[{i}] is held by module {module} of {modules}"
                    ))
                }
                Some(&Holder::Thread { thread, .. }) if thread as usize >= self.threads.len() => {
                    return Err(format!(
                        "retention.blocks[{i}] is held by thread {thread} of {}",
                        self.threads.len()
                    ))
                }
                Some(&Holder::Block { block, .. })
                    if block as usize >= n || block as usize == i =>
                {
                    return Err(format!(
                        "retention.blocks[{i}] is held by block {block} of {n}"
                    ))
                }
                _ => {}
            }
            if b.referrers.len() > MAX_REFERRERS {
                return Err(format!(
                    "retention.blocks[{i}] has {} referrers (at most {MAX_REFERRERS})",
                    b.referrers.len()
                ));
            }
            let reached = !matches!(b.held_by, None | Some(Holder::Heap { root: None, .. }));
            if reached && !b.referrers.is_empty() {
                return Err(format!(
                    "retention.blocks[{i}] is held by a root and lists referrers"
                ));
            }
            if let Some(&r) = b.referrers.iter().find(|&&r| r as usize >= n) {
                return Err(format!("retention.blocks[{i}] names referrer {r} of {n}"));
            }
        }
        Ok(())
    }
}
