//! Child binary: the workloads under plain tikv-jemallocator, built outside
//! the workspace so jemalloc has no `stats` (see this package's Cargo.toml).
//! This is the baseline of every ratio in the overhead report.

use std::process::ExitCode;

use tikv_jemallocator::Jemalloc;

#[allow(dead_code)]
#[path = "../../src/workloads.rs"]
mod workloads;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() -> ExitCode {
    workloads::child_main("jemalloc", workloads::SoakHooks::NONE, |_| ())
}
