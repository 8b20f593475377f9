//! The `alloc-soak` binary prints its examples ([`alloc_soak::cli::EXAMPLES`])
//! in `--help`, and each is accepted as printed: the arguments parse (no
//! usage error) and the run gets as far as the server, which is not there in
//! this test (exit 2 with a connection error). The examples run for real,
//! against the axum example service and the demo server, in
//! `tests/tests/soak_help_examples.rs` (through `alloc_soak::cli::main_from`,
//! the binary's whole body).

use std::process::Command;

use alloc_soak::cli::{examples, EXAMPLES};

#[test]
fn every_help_example_parses_and_reaches_the_server() {
    let exe = env!("CARGO_BIN_EXE_alloc-soak");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.trim_end().ends_with(EXAMPLES),
        "--help does not end with the examples: {help}"
    );
    let ours = examples();
    assert!(ours.len() >= 2, "{help}");
    for args in ours {
        let out = Command::new(exe)
            .args(&args[1..])
            .arg("--no-progress")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("alloc-soak: admin") && !err.contains("Usage"),
            "{args:?}: not a connection error: {err}"
        );
    }
}
