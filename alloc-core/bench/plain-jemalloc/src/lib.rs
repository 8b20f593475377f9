//! The workloads of alloc-bench (one source, `../../src/workloads.rs`), in a
//! library crate of their own so that they call the global allocator as an
//! external symbol, as the workspace's children do (see Cargo.toml).

#[path = "../../src/workloads.rs"]
pub mod workloads;
