//! Scale: 2,000 idle connections held open on the server while a soak's
//! cycles go on around them; the verdicts and the leak's size are those of
//! a soak without them (the held connections' state was born before the
//! first snapshot, and quiescence counts them in the baseline).

mod demo_support;

use alloc_core::{EpochAlloc, Jemalloc};
use demo_server::patterns::{Pattern, Variant};
use demo_support::{assert_verdict, options, run_checks, server_role, soak, start};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const HELD: usize = 2000;

fn held_open(variant: Variant) {
    let pattern = Pattern::Cycle;
    let mut server = start(pattern, variant, &[]);
    let mut o = options(&server, &format!("scale-{variant}"), 600, 50);
    o.hold = HELD;
    o.concurrency = 32;
    let r = soak(&o);
    assert!(server.is_running(), "the server died");
    assert_verdict(pattern, variant, &r);
    let _ = std::fs::remove_dir_all(&o.out);
}

fn main() -> ExitCode {
    if let Some(code) = server_role() {
        return code;
    }
    run_checks(&[
        ("two_thousand_held_connections_leaky", || {
            held_open(Variant::Leaky)
        }),
        ("two_thousand_held_connections_fixed", || {
            held_open(Variant::Fixed)
        }),
    ])
}
