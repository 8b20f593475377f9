//! `demo-server`: the leak patterns' server, its soak driver, the demo and
//! the throughput benchmark (see the library docs, `cargo doc -p
//! demo-server`).

#![forbid(unsafe_code)]

// The server measures itself: alloc-core over jemalloc is its global
// allocator. (`demo-server-jemalloc` is the same program over plain jemalloc,
// for the benchmark's baseline.)
#[global_allocator]
static GLOBAL: alloc_core::EpochAlloc<alloc_core::Jemalloc> =
    alloc_core::EpochAlloc::new(alloc_core::Jemalloc);

fn main() -> std::process::ExitCode {
    demo_server::cli::main()
}
