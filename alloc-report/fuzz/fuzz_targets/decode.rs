//! Fuzzes the snapshot file parser: any bytes give a snapshot or an error,
//! never a panic, and whatever parses survives a write and a read unchanged.
//!
//! Run from `alloc-report/`: `cargo +nightly fuzz run decode`.
#![no_main]

use alloc_report::format::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = decode(data) {
        let again = decode(&encode(&file)).expect("a written file must read back");
        assert_eq!(again, file);
    }
});
