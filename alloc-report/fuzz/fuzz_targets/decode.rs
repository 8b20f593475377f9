//! Fuzzes the snapshot file parser: any bytes give a snapshot or an error,
//! never a panic, and whatever parses survives a write and a read
//! unchanged, and goes through the analysis and every renderer without a
//! panic.
//!
//! Run from `alloc-report/`: `cargo +nightly fuzz run decode`.
#![no_main]

use alloc_report::analysis::{analyze, diff, ClassifyOptions};
use alloc_report::format::{decode, encode};
use alloc_report::render;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = decode(data) {
        let again = decode(&encode(&file)).expect("a written file must read back");
        assert_eq!(again, file);
        let series = vec![file.clone(), file];
        let report = analyze(&series, &ClassifyOptions::default());
        let _ = render::report_text(&report);
        let _ = render::report_json(&report);
        let _ = render::report_html(&report);
        let _ = render::pprof(&report);
        let _ = render::folded(&report);
        let _ = render::diff_text(&diff(&series[0].snapshot, &series[1].snapshot));
    }
});
