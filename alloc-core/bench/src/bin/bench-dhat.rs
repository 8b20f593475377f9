//! Child binary: the workloads under `dhat::Alloc` with a live heap profiler
//! (default settings: a backtrace per allocation). The driver runs it scaled
//! down; the profile goes to `--out-dir` (the driver passes
//! `target/alloc-bench/`), never to the current directory.

#![forbid(unsafe_code)]

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    alloc_bench::workloads::child_main("dhat", alloc_bench::workloads::SoakHooks::NONE, |args| {
        let dir = args.out_dir.clone().unwrap_or_else(std::env::temp_dir);
        let file = dir.join(format!("dhat-heap-{}.json", args.workload.name()));
        dhat::Profiler::builder().file_name(file).build()
    })
}
