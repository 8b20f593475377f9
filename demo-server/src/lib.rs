//! `demo-server`: a TCP server with the leak patterns of the original
//! write-up, each leaky and fixed, measured by alloc-core; the soak driver
//! that measures any server mounting the `alloc-admin` endpoint; the demo;
//! and the throughput benchmark.
//!
//! ```text
//! demo-server demo  [--cycles N] [--batch N] [--concurrency N] [--out DIR]
//! demo-server serve --pattern P [--variant leaky|fixed] [--addr A] [--admin A]
//!                   [--allow-remote-admin] [--spare-fds N]
//! demo-server soak  --server A --admin A [--cycles N] [--batch N] [--concurrency N]
//!                   [--warmup N] [--hold N] [--out DIR] [--no-progress]
//!                   [--send BYTES [--until BYTES]]
//! demo-server bench [--cycles N] [--batch N] [--concurrency N] [--rounds N]
//! ```
//!
//! # Code map
//!
//! - [`server`]: the `mio` event loop, the line protocol, per-connection
//!   state, surviving accept errors.
//! - [`patterns`]: one module per leak pattern, leaky and fixed side by
//!   side, with the true per-connection figure in each module's docs.
//! - [`client`]: the load client (cycles at a concurrency, RST close).
//! - [`admin_client`]: requests to the admin endpoint.
//! - [`soak`]: batches, quiescence, epochs, snapshots, the series and the
//!   report.
//! - [`demo`]: a fresh server process per run, the verdict table,
//!   `summary.json`.
//! - [`mod@bench`]: alloc-core against plain jemalloc, side by side.
//! - [`cli`]: the command line.
//!
//! The library installs no allocator: `src/main.rs` installs
//! `alloc_core::EpochAlloc<Jemalloc>`, `src/bin/demo-server-jemalloc.rs`
//! plain jemalloc.

#![forbid(unsafe_code)]

pub mod bench;
/// The soak tool (package `alloc-soak`), re-exported for the demo and its tests.
pub use alloc_soak::{admin_client, client, soak};
pub mod cli;
pub mod demo;
pub mod patterns;
pub mod server;

use patterns::{Pattern, Variant};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// How `serve` runs: also the `serve` command's arguments (their docs are
/// its `--help`).
#[derive(Clone, Debug, clap::Args)]
pub struct ServeOptions {
    /// The leak pattern.
    #[arg(long, value_enum)]
    pub pattern: Pattern,
    /// Leaky or fixed.
    #[arg(long, value_enum, default_value_t = Variant::Leaky)]
    pub variant: Variant,
    /// The line-protocol address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub addr: SocketAddr,
    /// The admin endpoint's address.
    #[arg(long, default_value_t = alloc_admin::DEFAULT_ADDR)]
    pub admin: SocketAddr,
    /// Allow a non-loopback admin address (it has no authentication; a
    /// warning is printed).
    #[arg(long)]
    pub allow_remote_admin: bool,
    /// Lower the descriptor limit to leave only N descriptors free once
    /// listening (to test surviving accept errors: fewer than the clients).
    /// By default the limit is raised as far as the hard limit allows, up
    /// to 65,536.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub spare_fds: Option<u64>,
}

/// Binds, starts the admin endpoint, prints `listening ADDR admin ADDR` on
/// stdout, and serves until the process is killed.
pub fn serve(o: &ServeOptions) -> Result<(), String> {
    if o.spare_fds.is_none() {
        alloc_soak::fd_limit::raise(65_536);
    }
    let listener =
        mio::net::TcpListener::bind(o.addr).map_err(|e| format!("cannot bind {}: {e}", o.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin = alloc_admin::Admin::new()
        .addr(o.admin)
        .allow_non_loopback(o.allow_remote_admin)
        .open_connections(|| server::OPEN.load(Ordering::SeqCst))
        .extra_metrics(|out| {
            out.push_str(
                "# HELP demo_server_accept_errors_total accept() calls that failed \
                 (out of descriptors, ...).\n# TYPE demo_server_accept_errors_total counter\n",
            );
            out.push_str(&format!(
                "demo_server_accept_errors_total {}\n",
                server::ACCEPT_ERRORS.load(Ordering::Relaxed)
            ));
        })
        .start()
        .map_err(|e| e.to_string())?;
    if let Some(n) = o.spare_fds {
        let open = open_fds().ok_or("cannot list /proc/self/fd")?;
        alloc_soak::fd_limit::set(limit_leaving(&open, n)).map_err(|e| e.to_string())?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {addr} admin {}", admin.local_addr())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(out);
    eprintln!(
        "demo-server: {} ({}) on {addr}, admin endpoint on http://{}",
        o.pattern,
        o.variant,
        admin.local_addr()
    );
    server::serve(listener, o.pattern, o.variant).map_err(|e| format!("event loop: {e}"))
}

/// The descriptor numbers open in this process (the listing's own
/// descriptor included, which is closed again).
fn open_fds() -> Option<Vec<u64>> {
    Some(
        std::fs::read_dir("/proc/self/fd")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .collect(),
    )
}

/// The descriptor limit under which exactly `spare` numbers are free, given
/// the numbers in use (new descriptors take the lowest free numbers, and
/// the limit bounds the numbers).
fn limit_leaving(open: &[u64], spare: u64) -> u64 {
    let mut limit = spare;
    loop {
        let used = open.iter().filter(|&&fd| fd < limit).count() as u64;
        if limit - used >= spare {
            return limit;
        }
        limit = spare + used;
    }
}

#[cfg(test)]
mod tests {
    use super::limit_leaving;

    #[test]
    fn the_limit_leaves_exactly_the_spare_descriptors() {
        assert_eq!(limit_leaving(&[0, 1, 2], 5), 8);
        assert_eq!(limit_leaving(&[0, 1, 2, 7, 300], 5), 9);
        assert_eq!(limit_leaving(&[], 3), 3);
    }
}
