//! Child binary: the workloads under plain tikv-jemallocator, built outside
//! the workspace so jemalloc has no `stats` (see this package's Cargo.toml).
//! This is the baseline of every ratio in the overhead report.

use std::process::ExitCode;

use plain_jemalloc::workloads;
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn main() -> ExitCode {
    workloads::child_main("jemalloc", workloads::SoakHooks::NONE, |_| ())
}
