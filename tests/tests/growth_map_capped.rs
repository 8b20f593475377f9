//! Not a leak: a `HashMap<u64, u64>` that keeps the last 1,700 entries (an
//! insert per cycle, the oldest removed). Its table grows while it fills
//! and while deletions leave tombstones, then is rehashed in place for
//! good, long before the later half of the soak. No `leak` anywhere.

#[macro_use]
mod growth_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::{exit_on_panic, say, watchdog};
use growth_support::{expect_no_leak, soak};
use std::collections::HashMap;
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

const CAP: u64 = 1700;

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "growth_map_capped");
    let mut recent: HashMap<u64, u64> = HashMap::new(); // created before the soak
    let report = soak(|c| {
        recent.insert(c, c);
        if c >= CAP {
            recent.remove(&(c - CAP));
        }
    });
    assert_eq!(recent.len() as u64, CAP);
    expect_no_leak("growth_map_capped", &report);
    say!("growth_map_capped: no leak (a map capped at {CAP} entries)");
}
