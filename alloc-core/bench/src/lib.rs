//! Overhead benchmark of `alloc-core`.
//!
//! The `alloc-bench` binary is the driver (`alloc-bench overhead`); each
//! `bench-*` binary runs one workload under one `#[global_allocator]` and
//! prints one JSON line. The workloads live in [`workloads`], shared by every
//! child binary (and, through `#[path]`, by the out-of-workspace
//! `plain-jemalloc` package).

pub mod workloads;
