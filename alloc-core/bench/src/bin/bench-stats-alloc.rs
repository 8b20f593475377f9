//! Child binary: the workloads under `stats_alloc::StatsAlloc` over
//! tikv-jemallocator (the workspace's jemalloc, built with `stats`).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use stats_alloc::StatsAlloc;
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: StatsAlloc<Jemalloc> = StatsAlloc::new(Jemalloc);

fn main() -> ExitCode {
    alloc_bench::workloads::child_main(
        "stats_alloc",
        alloc_bench::workloads::SoakHooks::NONE,
        |_| (),
    )
}
