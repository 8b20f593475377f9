//! A `String` created before the soak, appended 12 bytes per cycle and
//! never truncated, leaks in one buffer that grows by `realloc`. At the
//! default sampling the whole heap and the `push_str` line are `leak`, of
//! existing blocks that grow, within a factor of 2 of 12 bytes per cycle,
//! and the buffer is seen at that line at its exact size.

#[macro_use]
mod growth_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::{exit_on_panic, say, watchdog};
use growth_support::{expect_growth_leak, site, soak};
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "growth_string_append");
    let mut log = String::from("start;"); // created before the soak
    let mut line = 0;
    let report = soak(|_| line = at_line!(log.push_str("event-12345;")));
    let file = "growth_string_append.rs";
    expect_growth_leak("growth_string_append", &report, (file, line), 12.0);
    let v = site(&report, file, line).unwrap();
    assert_eq!(
        v.final_survivors.bytes,
        log.capacity() as u64,
        "the buffer, exactly: {v:?}"
    );
    say!(
        "growth_string_append: leak at {file}:{line}, {} bytes held",
        log.capacity()
    );
}
