//! Child binary: the workloads under `alloc-core`'s `EpochAlloc<Jemalloc>`
//! in its default configuration. The plain workloads never advance the
//! epoch (every block is born in the first epoch); the `*-soak` ones advance
//! it and take snapshots as a soak does.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use alloc_bench::workloads::SoakHooks;
use alloc_core::{EpochAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn advance_epoch() {
    alloc_core::advance_epoch();
}

fn snapshot() {
    drop(std::hint::black_box(alloc_core::snapshot()));
}

fn main() -> ExitCode {
    let hooks = SoakHooks {
        advance_epoch,
        snapshot,
    };
    alloc_bench::workloads::child_main("alloc-core", hooks, |_| ())
}
