//! `demo-server` over plain jemalloc: the throughput benchmark's baseline
//! (`demo-server bench` runs it beside `demo-server`). Same code, same
//! jemalloc; only the global allocator differs. alloc-core is linked (the
//! admin endpoint calls it) but counts nothing, so its snapshots are empty.

#![forbid(unsafe_code)]

// Plain jemalloc, no epoch accounting.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    demo_server::cli::main()
}
