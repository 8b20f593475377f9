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

/// The measurement of one run.
struct Run {
    pattern: &'static str,
    variant: &'static str,
    bytes_per_cycle: f64,
    blocks_per_cycle: f64,
    verdict: &'static str,
}

/// Runs every pattern, leaky and fixed; prints the table and writes the
/// snapshots and a summary under `out`.
pub(crate) fn run_all(cycles: u32, batch: u32, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut runs = Vec::new();
    for pattern in [Pattern::GlobalList, Pattern::Cycle] {
        for leaky in [true, false] {
            let variant = if leaky { "leaky" } else { "fixed" };
            eprintln!("running {} ({variant}), {cycles} cycles...", pattern.name());
            let snaps = run_one(pattern, leaky, cycles, batch)?;
            let dir = out.join(format!("{}-{variant}", pattern.name()));
            write_series(&dir, &snaps)?;
            runs.push(measure(pattern.name(), variant, &snaps));
        }
    }
    let mut table = format!(
        "{:<12} {:<6} {:>9} {:>14} {:>15}\n",
        "pattern", "variant", "verdict", "bytes/cycle", "blocks/cycle"
    );
    let mut json = Vec::new();
    for r in &runs {
        let _ = writeln!(
            table,
            "{:<12} {:<6} {:>9} {:>14.1} {:>15.2}",
            r.pattern, r.variant, r.verdict, r.bytes_per_cycle, r.blocks_per_cycle
        );
        json.push(serde_json::json!({
            "pattern": r.pattern, "variant": r.variant, "verdict": r.verdict,
            "bytes_per_cycle": r.bytes_per_cycle, "blocks_per_cycle": r.blocks_per_cycle,
            "snapshots": format!("{}-{}/snapshots.jsonl", r.pattern, r.variant),
        }));
    }
    print!("{table}");
    let summary = serde_json::json!({ "cycles": cycles, "runs": json });
    write_atomic(&out.join("summary.json"), summary.to_string().as_bytes())?;
    write_atomic(&out.join("report.txt"), table.as_bytes())?;
    println!("report written to {}", out.join("report.txt").display());
    Ok(())
}

/// Serves `cycles` connections with `pattern` and snapshots after each batch.
fn run_one(
    pattern: Pattern,
    leaky: bool,
    cycles: u32,
    batch: u32,
) -> Result<Vec<(u32, Snapshot)>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    std::thread::spawn(move || server::serve(listener, move |c| pattern.on_connect(leaky, c)));
    let mut snaps = vec![(0, settled_snapshot()?)];
    let mut done = 0;
    while done < cycles {
        let n = batch.min(cycles - done);
        for i in 0..n {
            server::client_cycle(addr, done + i).map_err(|e| format!("client: {e}"))?;
        }
        done += n;
        snaps.push((done, settled_snapshot()?));
    }
    Ok(snaps)
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

/// Survivors born since the run's first snapshot, per cycle: the least-squares
/// slope over the second half of the run.
fn measure(pattern: &'static str, variant: &'static str, snaps: &[(u32, Snapshot)]) -> Run {
    let start = snaps[0].1.epoch;
    let points: Vec<(f64, f64, f64)> = snaps
        .iter()
        .map(|(cycles, s)| {
            let (b, n) = s
                .epochs
                .iter()
                .filter(|e| e.first >= start && e.last < s.epoch)
                .fold((0, 0), |a, e| (a.0 + e.live_bytes, a.1 + e.live_blocks));
            (f64::from(*cycles), b as f64, n as f64)
        })
        .collect();
    let later = &points[points.len() / 2..];
    let bytes_per_cycle = slope(later.iter().map(|p| (p.0, p.1)));
    let blocks_per_cycle = slope(later.iter().map(|p| (p.0, p.2)));
    Run {
        pattern,
        variant,
        bytes_per_cycle,
        blocks_per_cycle,
        verdict: if bytes_per_cycle >= 1.0 { "leak" } else { "ok" },
    }
}

fn slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> f64 {
    let n = points.clone().count() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = points
        .clone()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.fold((0.0, 0.0), |a, p| {
        (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx) * (p.0 - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

fn write_series(dir: &Path, snaps: &[(u32, Snapshot)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut text = String::new();
    for (_, s) in snaps {
        let line = serde_json::to_string(s).map_err(|e| format!("serialise: {e}"))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_atomic(&dir.join("snapshots.jsonl"), text.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {}: {e}", path.display()))
}
