//! Child binary: the workloads under the system allocator (glibc malloc).

#![forbid(unsafe_code)]

use std::alloc::System;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: System = System;

fn main() -> ExitCode {
    alloc_bench::workloads::child_main("system", alloc_bench::workloads::SoakHooks::NONE, |_| ())
}
