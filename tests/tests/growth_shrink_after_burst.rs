//! Not a leak: a buffer that grows by 64 bytes per cycle during a burst in
//! the later half of the soak (cycles 12,000 to 14,000, to 128 KiB) and is
//! released with `truncate` and `shrink_to_fit` when the burst ends. No
//! `leak` anywhere.

#[macro_use]
mod growth_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::{exit_on_panic, say, watchdog};
use growth_support::{expect_no_leak, soak};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "growth_shrink_after_burst");
    let mut buf: Vec<u64> = Vec::with_capacity(16); // created before the soak
    let mut peak = 0;
    let report = soak(|c| {
        if (12_000..14_000).contains(&c) {
            buf.extend_from_slice(&[c; 8]);
            peak = peak.max(buf.capacity());
        } else if c == 14_000 {
            buf.truncate(16);
            buf.shrink_to_fit();
        }
    });
    assert!(
        peak * 8 >= 128 << 10,
        "the burst grew the buffer to {peak} items"
    );
    assert_eq!(buf.capacity(), 16);
    expect_no_leak("growth_shrink_after_burst", &report);
    say!(
        "growth_shrink_after_burst: no leak (a burst to {} KiB, released)",
        (peak * 8) >> 10
    );
}
