//! Child binary: the workloads under tikv-jemallocator with jemalloc's
//! statistics compiled in. The driver builds this binary alone with the
//! `jemalloc-stats` feature; compare with the plain `jemalloc` row to see
//! what the statistics alone cost (alloc-core's opt-in `jemalloc-stats`
//! feature turns them on for the whole build).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() -> ExitCode {
    alloc_bench::workloads::child_main(
        "jemalloc-stats",
        alloc_bench::workloads::SoakHooks::NONE,
        |_| (),
    )
}
