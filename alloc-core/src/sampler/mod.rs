//! Which blocks are sampled, and what a sample records.
//!
//! Each thread's slot keeps a countdown of bytes. Every allocation takes its
//! size off it on the fast path (a load, a subtraction, a store); the
//! allocation that takes it below zero goes to the slow path and is sampled,
//! and a new countdown is drawn from an exponential distribution with the
//! configured mean. By the memorylessness of that distribution a block of
//! `size` bytes is sampled with probability `p = 1 - exp(-size / mean)`,
//! whatever came before it, so weighting each sample by `1 / p` gives
//! unbiased estimates of live bytes and blocks per site (the scheme of
//! jemalloc's and Go's heap profilers).
//!
//! Two rules make growth visible at the line that grows:
//!
//! - **A realloc is a sampling opportunity for its new size**, like an
//!   allocation of that size: it takes the new size off the countdown, and a
//!   block that was sampled before loses its record (the block moved to
//!   the current epoch; see the crate docs). So a collection's buffer is
//!   attributed to the `push` or `insert` that last grew it.
//! - **A block of at least [`mode::always_sampled_from`] bytes (1/16 of the mean
//!   interval, 64 KiB at the default) is always sampled**, with weight 1,
//!   and does not touch the countdown. Its chance under the countdown would
//!   be at least 6%; a collection that only grows reaches such sizes in a
//!   few doublings, and a sampled series of its buffer would otherwise be
//!   a lottery (a 256 KiB buffer is drawn with probability 22% at 1 MiB).
//!   Such blocks are rare and cost a page fault per 4 KiB when touched, so
//!   a stack capture each adds little.
//!
//! Both keep the estimates unbiased: every block (or incarnation of a block
//! after a realloc) is drawn by exactly one rule, independently, and
//! weighted by the inverse of its chance under that rule.
//!
//! A sample captures the raw call stack ([`crate::stacks`]), interns it, and
//! records the block in [`crate::sampled_table`]; the block's tag becomes the
//! record's id with the [`crate::counters::SAMPLED`] bit, so its free goes straight to the
//! record, and every other free knows it has none.
//!
//! Its parts, each a module of its own:
//!
//! - [`mode`]: the sampling mode and the seed (set by code or read from
//!   `ALLOC_CORE_SAMPLE` and `ALLOC_CORE_SEED`), and which sizes are
//!   always sampled;
//! - [`policy`]: the default capture policy, which steps the mode in force
//!   after each snapshot ([`policy::after_snapshot`]) and as the
//!   sampled-block table fills;
//! - [`draw`]: the per-thread random countdown and the weight of a sample;
//! - [`path`]: what the allocation path's slow path calls: [`path::on_alloc`]
//!   (take a sample) and [`path::on_free`] (drop it).
//!
//! The records live in the sampled-block table ([`crate::sampled_table`]),
//! the stacks in [`crate::stacks`], and the per-thread state in the
//! slot ([`crate::slot`]).

pub(crate) mod draw;
pub(crate) mod mode;
pub(crate) mod path;
pub(crate) mod policy;
