//! Not a leak: a `Vec` filled with a varying number of items (up to 8,192,
//! 64 KiB) every cycle and cleared, so it grows to its high-water mark in
//! the first cycles and is reused from then on. No `leak` anywhere.

#[macro_use]
mod growth_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::{exit_on_panic, say, watchdog};
use growth_support::{expect_no_leak, soak};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const MAX: usize = 8192;
static ITEMS: [u64; MAX] = [7; MAX];

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "growth_vec_reused");
    let mut buf: Vec<u64> = Vec::new(); // created before the soak
    let mut last_growth = 0;
    let report = soak(|c| {
        buf.clear();
        let k = 1 + (c as usize * 7919) % MAX;
        let before = buf.capacity();
        buf.extend_from_slice(&ITEMS[..k]);
        if buf.capacity() != before {
            last_growth = c;
        }
    });
    assert!(
        buf.capacity() >= MAX,
        "the buffer reached its high-water mark"
    );
    assert!(
        last_growth < 100,
        "it grew for the last time in cycle {last_growth}"
    );
    expect_no_leak("growth_vec_reused", &report);
    say!("growth_vec_reused: no leak (a {MAX}-item buffer reused)");
}
