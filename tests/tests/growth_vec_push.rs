//! The first example: a `static Mutex<Vec<u64>>` created before the
//! soak, pushed to once per cycle and never pruned, leaks 8 bytes per cycle
//! in one block that grows by `realloc`. At the default sampling the whole
//! heap and the `push` line are `leak`, of existing blocks that grow, at
//! 8 bytes per cycle within a factor of 2; the buffer (always sampled from
//! 64 KiB, weight 1) is seen at that line at its exact size.

#[macro_use]
mod growth_support;

use alloc_core::{EpochAlloc, Jemalloc};
use alloc_tests::{exit_on_panic, say, watchdog};
use growth_support::{expect_growth_leak, site, soak};
use std::sync::Mutex;
use std::time::Duration;

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

static HISTORY: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn main() {
    exit_on_panic();
    watchdog(Duration::from_secs(300), "growth_vec_push");
    HISTORY.lock().unwrap().push(u64::MAX); // created before the soak
    let mut line = 0;
    let report = soak(|c| line = at_line!(HISTORY.lock().unwrap().push(c)));
    let file = "growth_vec_push.rs";
    expect_growth_leak("growth_vec_push", &report, (file, line), 8.0);
    let bytes = HISTORY.lock().unwrap().capacity() as u64 * 8;
    let v = site(&report, file, line).unwrap();
    assert_eq!(v.final_survivors.bytes, bytes, "the buffer, exactly: {v:?}");
    say!("growth_vec_push: leak at {file}:{line}, the {bytes}-byte buffer seen whole");
}
