//! A `HashMap<u64, u64>` created before the soak and inserted into once per
//! cycle leaks 16 bytes per cycle in one table that hashbrown replaces by
//! a twice larger one as it fills (an allocation and a free, not a
//! `realloc`). At the default sampling the whole heap and the `insert` line
//! are `leak`, of existing blocks that grow, within a factor of 2 of 16
//! bytes per cycle.

#[macro_use]
mod growth_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::{exit_on_panic, say, watchdog};
use growth_support::{expect_growth_leak, soak};
use std::collections::HashMap;
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "growth_map_insert");
    let mut seen: HashMap<u64, u64> = HashMap::new();
    seen.insert(u64::MAX, 0); // created before the soak
    let mut line = 0;
    let report = soak(|c| line = at_line!(seen.insert(c, c)));
    let file = "growth_map_insert.rs";
    expect_growth_leak("growth_map_insert", &report, (file, line), 16.0);
    say!(
        "growth_map_insert: leak at {file}:{line} ({} entries)",
        seen.len()
    );
}
