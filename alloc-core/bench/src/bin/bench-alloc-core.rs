//! Child binary: the workloads under `alloc-core`'s `EpochAlloc<Jemalloc>`
//! in its default configuration (the epoch is never advanced, so every block
//! is born in the first epoch).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use alloc_core::{EpochAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn main() -> ExitCode {
    alloc_bench::workloads::child_main("alloc-core", |_| ())
}
