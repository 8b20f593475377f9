//! `alloc-soak`: soak a server that mounts the alloc-admin endpoint and
//! gate on the verdict. Exit codes: 0 no leak, 1 a leak of the whole heap
//! or a site above `--max-bytes-per-cycle`, 2 an error or bad arguments.
//!
//! The system allocator: the soak driver measures another process. The
//! command is [`alloc_soak::cli::main_from`], so that a test runs it as the
//! binary does.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(alloc_soak::cli::main_from(std::env::args_os()))
}
