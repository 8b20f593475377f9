//! Shared by the demo-server tests: each test binary is also the server it
//! soaks. Run with `DEMO_TEST_SERVER=1` and `serve ...` arguments, it is
//! `demo-server` (same library, alloc-core as global allocator); otherwise
//! it runs its checks against such child processes.

#![allow(dead_code)] // not every test file uses every helper

use demo_server::demo::{serve_args, ServerProcess};
use demo_server::patterns::{Pattern, Variant};
use demo_server::soak::{self, SoakOptions, SoakOutcome};
use std::path::PathBuf;
use std::process::ExitCode;

/// Set in a child process to make it the server.
pub(crate) const SERVER_ROLE: &str = "DEMO_TEST_SERVER";

/// Runs `demo-server`'s command line if this process is a server child.
pub(crate) fn server_role() -> Option<ExitCode> {
    std::env::var_os(SERVER_ROLE).map(|_| demo_server::cli::main())
}

/// Starts a server child for `pattern` in `variant` at the defaults (no
/// `ALLOC_CORE_SAMPLE`, even if this process has one), plus `extra`
/// arguments.
pub(crate) fn start(pattern: Pattern, variant: Variant, extra: &[&str]) -> ServerProcess {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut args = serve_args(pattern, variant);
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProcess::spawn(
        &exe,
        args,
        &[(SERVER_ROLE, Some("1")), ("ALLOC_CORE_SAMPLE", None)],
    )
    .expect("start the server child")
}

/// A fresh output directory under the system's temporary directory.
pub(crate) fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("demo-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Soak options for a short soak of `server`.
pub(crate) fn options(server: &ServerProcess, name: &str, cycles: u64, batch: u64) -> SoakOptions {
    let mut o = SoakOptions::new(server.server, server.admin, out_dir(name));
    o.cycles = cycles;
    o.batch = batch;
    o.concurrency = 8;
    o.warmup = 50;
    o
}

/// Runs a soak, failing the test with its message.
pub(crate) fn soak(o: &SoakOptions) -> SoakOutcome {
    match soak::run(o) {
        Ok(r) => r,
        Err(e) => panic!("soak of {}: {e}", o.out.display()),
    }
}

/// Checks what a soak of `pattern` in `variant` must find: leaky is `leak`
/// within 10% of the documented bytes and blocks per connection, with the top site in
/// the pattern's own file; fixed is `ok` with nothing surviving; `none` is
/// `plateau`. No cycle may fail.
pub(crate) fn assert_verdict(pattern: Pattern, variant: Variant, r: &SoakOutcome) {
    let v = &r.verdict;
    let what = format!(
        "{pattern} ({variant}): {} {:.1} B/cycle {:.2} blocks/cycle, top site {:?}, {} failed cycles",
        v.kind.as_str(),
        v.bytes_per_cycle,
        v.blocks_per_cycle,
        r.top_site,
        r.failed
    );
    assert_eq!(r.failed, 0, "{what}");
    match (pattern.true_leak_per_connection(), variant) {
        (None, _) => {
            assert_eq!(v.kind.as_str(), "plateau", "{what}");
            assert!(v.final_survivors.bytes > 0, "{what}");
        }
        (Some((bytes, blocks)), Variant::Leaky) => {
            assert_eq!(v.kind.as_str(), "leak", "{what}");
            let error = (v.bytes_per_cycle - bytes).abs() / bytes;
            assert!(
                error <= 0.10,
                "{what}: {:.1}% off the true {bytes} bytes per connection",
                error * 100.0
            );
            let error = (v.blocks_per_cycle - blocks).abs() / blocks;
            assert!(
                error <= 0.10,
                "{what}: {:.1}% off the true {blocks} blocks per connection",
                error * 100.0
            );
            let top = r
                .top_site
                .as_deref()
                .unwrap_or_else(|| panic!("{what}: no top site"));
            assert!(
                top.contains(pattern.source_file()),
                "{what}: top site not in {}",
                pattern.source_file()
            );
            // The pattern's own lines, at the defaults: the top site is a
            // `leak`, and the `leak` sites in the pattern's file add up to
            // the true figure within 10%.
            let sites: Vec<_> = r
                .report
                .sites
                .iter()
                .filter(|s| s.site.contains(pattern.source_file()))
                .collect();
            let listed: Vec<String> = sites
                .iter()
                .map(|s| {
                    format!(
                        "{} {} {:.1} B/cycle ({} samples)",
                        s.site,
                        s.kind.as_str(),
                        s.bytes_per_cycle,
                        s.samples
                    )
                })
                .collect();
            let top_kind = sites
                .iter()
                .find(|s| s.site == *top)
                .map(|s| s.kind.as_str());
            assert_eq!(top_kind, Some("leak"), "{what}: {listed:#?}");
            let named: f64 = sites
                .iter()
                .filter(|s| s.kind.as_str() == "leak")
                .map(|s| s.bytes_per_cycle)
                .sum();
            let error = (named - bytes).abs() / bytes;
            assert!(
                error <= 0.10,
                "{what}: the pattern's leak sites name {named:.1} B/cycle, {:.1}% off {bytes}: {listed:#?}",
                error * 100.0
            );
        }
        (Some(_), Variant::Fixed) => {
            assert_eq!(v.kind.as_str(), "ok", "{what}");
            assert_eq!(v.final_survivors.bytes, 0, "{what}");
            assert_eq!(r.top_site, None, "{what}");
        }
    }
}

/// [`alloc_tests::run_checks`].
pub(crate) fn run_checks(checks: &[(&str, fn())]) -> ExitCode {
    alloc_tests::run_checks(checks)
}
