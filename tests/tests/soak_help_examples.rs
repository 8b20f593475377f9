//! Every example of `alloc-soak --help` (`alloc_soak::cli::EXAMPLES`) runs
//! against the real server it was written for and gives a report with a
//! verdict. The first soaks the axum example service (this binary includes
//! `alloc-core/admin/examples/axum_service.rs` as a module and runs its
//! `main` in a child process), the second the demo server's line protocol
//! (a child running `demo-server serve` through its library; `global-list`
//! fixed, then leaky). Only the ports are substituted: each server listens
//! on a free loopback port instead of 3000, 7070 and 7171; every other
//! argument, `--cycles 20000` included, is as printed. Each example runs
//! through `alloc_soak::cli::main_from`, the `alloc-soak` binary's whole
//! body, in a fresh working directory, so its output lands in `target/soak`
//! as printed; the third example, `alloc-report report target/soak`, is
//! checked by reading that directory as `alloc-report` does (its own
//! `--help` examples run through its binary in `alloc-report`'s tests).
//! Exit 0 for the clean servers, 1 for the leaky ones, as the verdict says.
//! The axum service with its leak switched on (`AXUM_SERVICE_LEAK=1`) is
//! also the end-to-end check of site labels: the top site is named
//! relative to the workspace, `alloc-core/admin/examples/axum_service.rs`
//! (a nested package, which the rule without a root shortens to
//! `admin/examples/…`).

#[path = "../../alloc-core/admin/examples/axum_service.rs"]
mod axum_service;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};

use alloc_report::{Analyzer, Report, VerdictKind, WorkspaceFinder};
use demo_server::demo::{serve_args, ServerProcess};
use demo_server::patterns::{Pattern, Variant};

/// Set in a child process to make it a server: `axum` or `demo`.
const ROLE: &str = "SOAK_HELP_SERVER";

/// The axum example service in a child process, killed when dropped.
struct AxumService {
    child: Child,
    addr: SocketAddr,
}

impl AxumService {
    /// Starts the service, with its leak if `leak`.
    fn start(leak: bool) -> AxumService {
        let mut cmd = Command::new(std::env::current_exe().expect("this binary's path"));
        cmd.arg("127.0.0.1:0")
            .env(ROLE, "axum")
            .env_remove("ALLOC_CORE_SAMPLE")
            .env_remove("AXUM_SERVICE_LEAK");
        if leak {
            cmd.env("AXUM_SERVICE_LEAK", "1");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the axum example service");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok());
        match (read, addr) {
            (Ok(_), Some(addr)) => AxumService { child, addr },
            _ => {
                let _ = child.kill();
                panic!("the axum example service said {line:?}, not its address");
            }
        }
    }
}

impl Drop for AxumService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo server in `variant` of `global-list`, on free ports.
fn demo_server(variant: Variant) -> ServerProcess {
    let exe = std::env::current_exe().expect("this binary's path");
    ServerProcess::spawn(
        &exe,
        serve_args(Pattern::GlobalList, variant),
        &[(ROLE, Some("demo")), ("ALLOC_CORE_SAMPLE", None)],
    )
    .expect("start the demo server")
}

/// `example` with its printed addresses replaced by `ports`' (printed,
/// actual) pairs; every address in it must be one of them.
fn with_ports(example: &[String], ports: &[(&str, SocketAddr)]) -> Vec<String> {
    example
        .iter()
        .map(|a| match ports.iter().find(|(printed, _)| a == printed) {
            Some((_, actual)) => actual.to_string(),
            None => {
                assert!(
                    a.parse::<SocketAddr>().is_err(),
                    "{a} in {example:?}: no server for it"
                );
                a.clone()
            }
        })
        .collect()
}

/// Runs `example` (ports substituted) in a fresh working directory `dir`
/// and checks its exit code against `expected` and what it left in
/// `target/soak`: the reports, and a series that `alloc-report report
/// target/soak` reads to the same report with the verdict the exit code
/// gave; returns that report.
fn run(
    name: &str,
    example: &[String],
    ports: &[(&str, SocketAddr)],
    expected: VerdictKind,
) -> Report {
    let dir = std::env::temp_dir().join(format!("soak-help-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let args = with_ports(example, ports);
    println!("soak_help_examples: {name}: {}", args.join(" "));
    let code = alloc_soak::cli::main_from(&args);

    // What `alloc-report report target/soak` reads and shows.
    let out = Path::new("target/soak");
    let series = alloc_snapshot::read_series(out).expect("target/soak reads as a series");
    let mut analyzer = Analyzer::new(&Default::default());
    let mut roots = WorkspaceFinder::new();
    for file in &series {
        roots.scan(&file.snapshot);
        analyzer.push_in(file, roots.workspaces());
    }
    let report = analyzer.finish();
    let text = alloc_report::render::report_text(&report);
    let written = |f: &str| std::fs::read_to_string(out.join(f)).expect("a report file");
    assert_eq!(written("report.txt"), text, "{name}: report.txt");
    assert_eq!(
        written("report.json"),
        alloc_report::render::report_json(&report),
        "{name}: report.json"
    );
    assert!(written("report.html").contains("<html"), "{name}");
    let verdict = &report.overall;
    assert!(
        text.contains(verdict.kind.as_str()),
        "{name}: no verdict in the report:\n{text}"
    );
    assert_eq!(verdict.kind, expected, "{name}:\n{text}");
    assert_eq!(
        code,
        u8::from(verdict.kind == VerdictKind::Leak),
        "{name}: exit code for {}",
        verdict.kind.as_str()
    );
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report
}

fn main() -> ExitCode {
    match std::env::var(ROLE).as_deref() {
        Ok("axum") => {
            return match axum_service::main() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("axum service: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok("demo") => return demo_server::cli::main(),
        _ => {}
    }
    let examples = alloc_soak::cli::examples();
    let [axum, line] = examples.as_slice() else {
        panic!("expected two alloc-soak examples: {examples:?}");
    };

    for (leak, expected) in [(false, VerdictKind::Ok), (true, VerdictKind::Leak)] {
        let service = AxumService::start(leak);
        let name = if leak {
            "axum service, leaky"
        } else {
            "axum service"
        };
        let report = run(name, axum, &[("127.0.0.1:3000", service.addr)], expected);
        if leak {
            // The leaking line, named relative to the workspace.
            let line = include_str!("../../alloc-core/admin/examples/axum_service.rs")
                .lines()
                .position(|l| l.starts_with("fn remember"))
                .expect("the example's leaking function")
                + 2;
            let site = format!(
                "alloc-core/admin/examples/axum_service.rs:{line} \
                 soak_help_examples::axum_service::remember"
            );
            assert_eq!(
                alloc_soak::soak::top_site(&report).as_deref(),
                Some(site.as_str())
            );
        }
    }

    for (variant, expected) in [
        (Variant::Fixed, VerdictKind::Ok),
        (Variant::Leaky, VerdictKind::Leak),
    ] {
        let server = demo_server(variant);
        let ports = [
            ("127.0.0.1:7070", server.server),
            ("127.0.0.1:7171", server.admin),
        ];
        run(&format!("demo server, {variant}"), line, &ports, expected);
    }
    ExitCode::SUCCESS
}
