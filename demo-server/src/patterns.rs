//! The leak patterns, leaky and fixed side by side, and the demo that runs them.
//!
//! - `global-list`: every connection is registered in a process-wide list and
//!   never removed (the original write-up's `_CONNECTIONS`). Fixed with a
//!   guard whose `Drop` removes the entry however the connection ends.
//! - `cycle`: the connection owns a handler that holds the connection back
//!   with an `Arc`, so neither is ever freed. Fixed with `Weak`.

use crate::server::{self, Connection};
use alloc_core::Snapshot;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

static REGISTRY: Mutex<Vec<Arc<Connection>>> = Mutex::new(Vec::new());

/// Removes its connection from `REGISTRY` when dropped.
struct Registered(usize);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut list) = REGISTRY.lock() {
            list.retain(|c| c.id != self.0);
        }
    }
}

/// The handler half of the `cycle` pattern.
#[allow(dead_code)] // the back references are what this pattern is about
enum Handler {
    Strong(Arc<Owner>),
    Weak(Weak<Owner>),
}

/// A connection that owns its handler.
struct Owner {
    _conn: Arc<Connection>,
    handler: Mutex<Option<Arc<Handler>>>,
}

#[derive(Clone, Copy)]
enum Pattern {
    GlobalList,
    Cycle,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::GlobalList => "global-list",
            Pattern::Cycle => "cycle",
        }
    }

    /// What the server holds for the life of one connection.
    fn on_connect(self, leaky: bool, conn: Arc<Connection>) -> Box<dyn Send> {
        match self {
            Pattern::GlobalList => {
                let id = conn.id;
                if let Ok(mut list) = REGISTRY.lock() {
                    list.push(conn);
                }
                if leaky {
                    Box::new(())
                } else {
                    Box::new(Registered(id))
                }
            }
            Pattern::Cycle => {
                let owner = Arc::new(Owner {
                    _conn: conn,
                    handler: Mutex::new(None),
                });
                let handler = if leaky {
                    Handler::Strong(Arc::clone(&owner))
                } else {
                    Handler::Weak(Arc::downgrade(&owner))
                };
                if let Ok(mut h) = owner.handler.lock() {
                    *h = Some(Arc::new(handler));
                }
                Box::new(owner)
            }
        }
    }
}

/// The verdict on one run.
struct Run {
    pattern: &'static str,
    variant: &'static str,
    verdict: alloc_report::Verdict,
}

/// Runs every pattern, leaky and fixed; prints the table and writes, per
/// run, the snapshot series and its report (text and HTML), and a summary.
pub(crate) fn run_all(cycles: u32, batch: u32, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut runs = Vec::new();
    for pattern in [Pattern::GlobalList, Pattern::Cycle] {
        for leaky in [true, false] {
            let variant = if leaky { "leaky" } else { "fixed" };
            eprintln!("running {} ({variant}), {cycles} cycles...", pattern.name());
            let dir = out.join(format!("{}-{variant}", pattern.name()));
            let verdict = run_one(pattern, leaky, cycles, batch, &dir)?;
            runs.push(Run {
                pattern: pattern.name(),
                variant,
                verdict,
            });
        }
    }
    let mut table = format!(
        "{:<12} {:<6} {:>8} {:>12} {:>13} {:>11}\n",
        "pattern", "variant", "verdict", "bytes/cycle", "blocks/cycle", "confidence"
    );
    let mut json = Vec::new();
    for r in &runs {
        let v = &r.verdict;
        let _ = writeln!(
            table,
            "{:<12} {:<6} {:>8} {:>12.1} {:>13.2} {:>11.3}",
            r.pattern,
            r.variant,
            v.kind.as_str(),
            v.bytes_per_cycle,
            v.blocks_per_cycle,
            v.confidence
        );
        let dir = format!("{}-{}", r.pattern, r.variant);
        json.push(serde_json::json!({
            "pattern": r.pattern, "variant": r.variant, "verdict": v.kind.as_str(),
            "bytes_per_cycle": v.bytes_per_cycle, "blocks_per_cycle": v.blocks_per_cycle,
            "confidence": v.confidence,
            "series": format!("{dir}/series"), "report": format!("{dir}/report.html"),
        }));
    }
    print!("{table}");
    let summary = serde_json::json!({ "cycles": cycles, "runs": json });
    write_atomic(&out.join("summary.json"), summary.to_string().as_bytes())?;
    write_atomic(&out.join("report.txt"), table.as_bytes())?;
    println!(
        "reports written under {} (summary.json, report.txt, */report.html)",
        out.display()
    );
    Ok(())
}

/// Serves `cycles` connections with `pattern`, snapshots after each batch
/// into a series under `dir`, and returns the verdict alloc-report gives the
/// series it reads back.
fn run_one(
    pattern: Pattern,
    leaky: bool,
    cycles: u32,
    batch: u32,
    dir: &Path,
) -> Result<alloc_report::Verdict, String> {
    let series_dir = dir.join("series");
    // A fresh series: numbering must not continue an earlier run's files.
    let _ = std::fs::remove_dir_all(&series_dir);
    let mut writer = alloc_core::untracked(|| alloc_report::SeriesWriter::create(&series_dir))
        .map_err(|e| format!("cannot create {}: {e}", series_dir.display()))?;
    let mut record = |done: u32| -> Result<(), String> {
        let snap = settled_snapshot()?;
        // The writer's allocations are the tool's, not the measured server's.
        alloc_core::untracked(|| writer.append(&snap, Some(u64::from(done))))
            .map(drop)
            .map_err(|e| format!("cannot write to {}: {e}", series_dir.display()))
    };

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    std::thread::spawn(move || server::serve(listener, move |c| pattern.on_connect(leaky, c)));
    record(0)?;
    let mut done = 0;
    while done < cycles {
        let n = batch.min(cycles - done);
        for i in 0..n {
            server::client_cycle(addr, done + i).map_err(|e| format!("client: {e}"))?;
        }
        done += n;
        record(done)?;
    }

    alloc_core::untracked(|| {
        let series = alloc_report::read_series(&series_dir).map_err(|e| e.to_string())?;
        let report = alloc_report::analyze(&series, &alloc_report::ClassifyOptions::default());
        write_atomic(
            &dir.join("report.txt"),
            alloc_report::render::report_text(&report).as_bytes(),
        )?;
        write_atomic(
            &dir.join("report.html"),
            alloc_report::render::report_html(&report).as_bytes(),
        )?;
        report
            .sites
            .into_iter()
            .next()
            .ok_or_else(|| "the report has no site".to_string())
    })
}

/// Waits until the server has dropped every connection, closes the epoch and
/// takes a snapshot.
fn settled_snapshot() -> Result<Snapshot, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server::OPEN.load(Ordering::SeqCst) != 0 {
        if Instant::now() > deadline {
            return Err("the server did not become quiet within 10 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    alloc_core::advance_epoch();
    Ok(alloc_core::snapshot())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {}: {e}", path.display()))
}
