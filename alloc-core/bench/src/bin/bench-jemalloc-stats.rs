//! Child binary: the workloads under tikv-jemallocator as built in this
//! workspace, where Cargo's feature unification turns on jemalloc `stats`
//! (alloc-core asks for it). Compare with the plain `jemalloc` row to see
//! what the statistics alone cost.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() -> ExitCode {
    alloc_bench::workloads::child_main("jemalloc-stats", |_| ())
}
