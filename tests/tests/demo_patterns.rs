//! A short soak of every leak pattern, leaky and fixed, each against its
//! own server process over loopback TCP: leaky variants are `leak` within
//! 10% of the bytes per connection their module documents, with the top
//! call site in the pattern's own source file; fixed variants are `ok`;
//! `none` (a bounded cache) is `plateau`.

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{assert_verdict, options, run_checks, server_role, soak, start};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn check(pattern: Pattern, variant: Variant) {
    let server = start(pattern, variant, &[]);
    let name = format!("{pattern}-{variant}");
    let r = soak(&options(&server, &name, 1000, 50));
    assert_verdict(pattern, variant, &r);
    let _ = std::fs::remove_dir_all(options(&server, &name, 1, 1).out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    run_checks(&[
        ("global_list_leaky", || {
            check(Pattern::GlobalList, Variant::Leaky)
        }),
        ("global_list_fixed", || {
            check(Pattern::GlobalList, Variant::Fixed)
        }),
        ("cycle_leaky", || check(Pattern::Cycle, Variant::Leaky)),
        ("cycle_fixed", || check(Pattern::Cycle, Variant::Fixed)),
        ("logger_registry_leaky", || {
            check(Pattern::LoggerRegistry, Variant::Leaky)
        }),
        ("logger_registry_fixed", || {
            check(Pattern::LoggerRegistry, Variant::Fixed)
        }),
        ("none_is_plateau", || check(Pattern::None, Variant::Fixed)),
    ])
}
