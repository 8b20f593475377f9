//! An admin HTTP endpoint for any program that links alloc-core: snapshots
//! in the snapshot file format, epoch advances, the number of open
//! connections (so a soak driver can wait for quiescence), and Prometheus
//! metrics.
//!
//! # Mounting it
//!
//! A program whose global allocator is `alloc_core::EpochAlloc` starts the
//! endpoint once, at start-up, before the soak begins:
//!
//! ```no_run
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! /// Connections the server is holding state for.
//! static OPEN: AtomicU64 = AtomicU64::new(0);
//!
//! fn main() -> Result<(), alloc_admin::AdminError> {
//!     let admin = alloc_admin::Admin::new() // 127.0.0.1:7171 unless told otherwise
//!         .open_connections(|| OPEN.load(Ordering::SeqCst))
//!         .start()?;
//!     eprintln!("admin endpoint on http://{}", admin.local_addr());
//!     // ... serve, incrementing OPEN when a connection's state is created
//!     // and decrementing it when that state is dropped ...
//!     Ok(())
//! }
//! ```
//!
//! Then `demo-server soak --server HOST:PORT --admin 127.0.0.1:7171 ...`
//! drives it (see the workspace README).
//!
//! # Routes
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | a plain-text list of these routes |
//! | `GET /snapshot?cycles=N` | `alloc_core::snapshot()` as one snapshot file (`alloc_snapshot::file`): raw call stacks and the loaded modules, which `alloc-report` and the soak driver symbolise from the binaries on disk (the server never parses debug information); `cycles` (optional) is written into the file |
//! | `GET /epoch` | `{"epoch":N}`, the current epoch |
//! | `POST /epoch` | closes the current epoch; `{"epoch":N}`, the new one |
//! | `GET /connections` | `{"open":N}` from the counter given to [`Admin::open_connections`] (404 without one) |
//! | `GET /metrics` | Prometheus text format 0.0.4: epoch, live bytes and blocks, survivors of closed epochs, operation counts, RSS, allocator and tool memory, open connections, and the program's own lines ([`Admin::extra_metrics`]) |
//! | `GET /debug/pprof/heap` | the live heap as a gzipped pprof profile, shaped like Go's heap profiles: `inuse_objects`/`inuse_space`, a `birth_epoch` label, mappings with build ids; `go tool pprof -top http://127.0.0.1:PORT/debug/pprof/heap` reads it (Pyroscope and Parca scrape it). Symbolised in the server (functions, files, lines, inlined calls as lines of their own), each stack starting at its site, the innermost frame of the program's own code, as `alloc-report` shows it; the first answer parses the debug information (about a second) and keeps it for the next ones as the tool's memory. `?symbolize=0`: raw addresses that pprof symbolises from the binaries (no inlined calls), stacks cut at the first frame outside the allocator and the standard library. Other query parameters are ignored |
//! | `GET`/`POST /debug/pprof/symbol` | pprof's symbolz protocol: function names for the addresses pprof could not symbolise from files |
//!
//! Every answer closes its connection (`Connection: close`). A request that
//! is not HTTP/1.x, has a head over 16 KiB or more than 32 headers, names an
//! unknown route or query parameter, or uses the wrong method gets a 4xx
//! answer; nothing a client sends can panic the endpoint. A client that
//! sends nothing is dropped after 2 s.
//!
//! # The endpoint is the tool, not the program
//!
//! The endpoint's threads run everything (accepting, parsing, snapshotting,
//! encoding) inside [`alloc_core::untracked`], so its
//! allocations count in the snapshot's `tool` usage and never as the
//! program's live bytes or survivors. It uses one acceptor thread and four
//! worker threads, all spawned inside that scope; a fifth complete request
//! waits in a queue of 32, and beyond that gets `503`.
//!
//! # Security
//!
//! Anyone who reaches the endpoint can read the heap profile (including
//! symbol names and file paths) and advance epochs, unless it has a token
//! ([`Admin::token`], or the environment variable [`TOKEN_ENV`]): then
//! every request must carry it (`Authorization: Bearer TOKEN`, or
//! `token=TOKEN` in the query) or gets `401`. It binds to loopback by
//! default. [`Admin::start`] refuses any other address unless
//! [`Admin::allow_non_loopback`] was set, and prints a warning to stderr
//! when it is.
//!
//! Against a browser on the same machine, the endpoint's own port answers
//! only a `Host` that is a loopback name or its own address (DNS
//! rebinding), and every route refuses a cross-site request (an `Origin`
//! that is not the request's own, or a `Sec-Fetch-Site` other than
//! `same-origin`/`none`) with `403`.
//!
//! Against hostile local clients, heads are read by the acceptor without
//! blocking: idle connections and clients that trickle their heads hold no
//! worker and are closed 2 s after they connect (at most 128 wait at once;
//! the longest-waiting goes first), the answer must be read within 5 s and
//! closing lingers at most 200 ms.

#![forbid(unsafe_code)]

mod accept;
#[cfg(feature = "axum")]
pub mod axum;
mod connections;
mod guard;
mod http;
mod message;
mod routes;
mod service;
mod user_frames;

pub use connections::{ConnectionGuard, Connections};
pub use service::{AdminRoutes, MAX_BODY};

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The address the endpoint binds to unless told otherwise: 127.0.0.1:7171.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7171));

/// The environment variable that gives the endpoint's token when
/// [`Admin::token`] was not called: `ALLOC_ADMIN_TOKEN`.
pub const TOKEN_ENV: &str = "ALLOC_ADMIN_TOKEN";

/// Worker threads that answer requests.
const WORKERS: usize = 4;
/// Accepted connections waiting for a worker; beyond this, `503`.
const QUEUE: usize = 32;

/// A counter of open connections, read by `GET /connections` and `/metrics`.
type Counter = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Appends the program's own metrics to `/metrics`.
type ExtraMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

/// What the request handlers can see.
pub(crate) struct State {
    pub(crate) open_connections: Option<Counter>,
    pub(crate) extra_metrics: Option<ExtraMetrics>,
    /// Who may ask ([`guard`]).
    pub(crate) guard: guard::Policy,
}

/// The endpoint's configuration; [`Admin::start`] binds and serves it.
#[must_use = "an `Admin` serves nothing until `start` is called"]
pub struct Admin {
    addr: SocketAddr,
    allow_non_loopback: bool,
    open_connections: Option<Counter>,
    extra_metrics: Option<ExtraMetrics>,
    token: Option<String>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin::new()
    }
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("addr", &self.addr)
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("open_connections", &self.open_connections.is_some())
            .field("extra_metrics", &self.extra_metrics.is_some())
            .finish()
    }
}

impl Admin {
    /// An endpoint on [`DEFAULT_ADDR`] with no connection counter.
    pub fn new() -> Self {
        Admin {
            addr: DEFAULT_ADDR,
            allow_non_loopback: false,
            open_connections: None,
            extra_metrics: None,
            token: None,
        }
    }

    /// Requires every request to carry `token`, as `Authorization: Bearer
    /// TOKEN` or as the query parameter `token=TOKEN` (for clients that
    /// cannot set headers, such as `go tool pprof`); others get `401`.
    /// Without this call the environment variable [`TOKEN_ENV`] gives the
    /// token, if set and not empty. `alloc-soak` sends the same variable's
    /// value (or its `--admin-token`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    fn policy(&self, own: Option<SocketAddr>) -> guard::Policy {
        guard::Policy {
            token: self
                .token
                .clone()
                .or_else(|| std::env::var(TOKEN_ENV).ok())
                .filter(|t| !t.is_empty()),
            own,
        }
    }

    /// Binds to `addr` instead (port 0 picks a free port; read it back with
    /// [`AdminHandle::local_addr`]).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Allows an address that is not loopback. Without this, [`Admin::start`]
    /// refuses one; with it, it prints a warning.
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// The number of connections the program holds state for. A soak driver
    /// waits until this is back to its value before the soak (quiescence)
    /// before it closes an epoch. Called on the endpoint's threads, inside
    /// `untracked`.
    pub fn open_connections(mut self, count: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.open_connections = Some(Arc::new(count));
        self
    }

    /// Counts open connections with `connections` (the guard form of
    /// [`Admin::open_connections`]): the program holds a
    /// [`Connections::open`] guard per connection.
    pub fn connections(self, connections: &Connections) -> Self {
        let c = connections.clone();
        self.open_connections(move || c.count())
    }

    /// The program's own metrics: `write` appends lines in the Prometheus
    /// text format (`# HELP`, `# TYPE` and samples) to `/metrics`. Called on
    /// the endpoint's threads, inside `untracked`.
    pub fn extra_metrics(mut self, write: impl Fn(&mut String) + Send + Sync + 'static) -> Self {
        self.extra_metrics = Some(Arc::new(write));
        self
    }

    /// The routes without a port or threads of their own, to mount in a
    /// server the program already runs ([`AdminRoutes::handle`]; with the
    /// `axum` feature, `AdminRoutes::into_router`). The address settings
    /// do not apply: the program's server decides who can reach them.
    #[must_use]
    pub fn routes(self) -> AdminRoutes {
        let guard = self.policy(None);
        AdminRoutes {
            state: Arc::new(State {
                open_connections: self.open_connections,
                extra_metrics: self.extra_metrics,
                guard,
            }),
        }
    }

    /// Binds the listener and starts the endpoint's threads. Returns once
    /// the endpoint accepts connections.
    pub fn start(self) -> Result<AdminHandle, AdminError> {
        // The listener, the threads and the channel are the tool's: they
        // live for the whole run and must not count as the program's.
        alloc_core::untracked(|| self.start_inner())
    }

    fn start_inner(self) -> Result<AdminHandle, AdminError> {
        if !self.addr.ip().is_loopback() {
            if !self.allow_non_loopback {
                return Err(AdminError::NotLoopback(self.addr));
            }
            eprintln!(
                "alloc-admin: WARNING: serving on {}, which is not a loopback address; \
                 anyone who can reach it can read this process's heap profile and \
                 advance its epochs{}",
                self.addr,
                if self.policy(None).token.is_some() {
                    " with its token"
                } else {
                    " (no token is set: see Admin::token)"
                }
            );
        }
        let listener = TcpListener::bind(self.addr).map_err(|e| AdminError::Bind(self.addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AdminError::Bind(self.addr, e))?;
        let guard = self.policy(Some(addr));
        let state = Arc::new(State {
            open_connections: self.open_connections,
            extra_metrics: self.extra_metrics,
            guard,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel::<accept::Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        // The threads' start-up (what std allocates in a new thread before
        // running its closure) happens before `start` returns, so before any
        // snapshot the program takes after mounting the endpoint.
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        for i in 0..WORKERS {
            let rx = Arc::clone(&rx);
            let state = Arc::clone(&state);
            let ready = ready_tx.clone();
            thread::Builder::new()
                .name(format!("alloc-admin-{i}"))
                .spawn(move || {
                    alloc_core::untracked(|| {
                        let _ = ready.send(());
                        drop(ready);
                        worker(&rx, &state)
                    })
                })
                .map_err(AdminError::Spawn)?;
        }
        let stop_flag = Arc::clone(&stop);
        let ready = ready_tx;
        thread::Builder::new()
            .name("alloc-admin-accept".to_string())
            .spawn(move || {
                alloc_core::untracked(|| {
                    let _ = ready.send(());
                    drop(ready);
                    accept::run(listener, tx, stop_flag);
                })
            })
            .map_err(AdminError::Spawn)?;
        for _ in 0..=WORKERS {
            // A thread that died before signalling closes the channel: go on.
            let _ = ready_rx.recv();
        }
        Ok(AdminHandle { addr, stop })
    }
}

fn worker(rx: &Mutex<Receiver<accept::Job>>, state: &State) {
    loop {
        // A poisoned lock only means another worker panicked while waiting,
        // which `recv` cannot do; go on with the receiver.
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match next {
            Ok(job) => http::serve_one(job.stream, job.head, job.deadline, state),
            Err(_) => return,
        }
    }
}

/// A running endpoint. Dropping it leaves the endpoint running for the rest
/// of the process; [`AdminHandle::shutdown`] stops it.
#[derive(Debug)]
pub struct AdminHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl AdminHandle {
    /// The address the endpoint listens on (with the real port when bound
    /// to port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections; requests already accepted are answered.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = alloc_core::untracked(|| {
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(1))
        });
    }
}

/// Why the endpoint could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdminError {
    /// The address is not loopback and [`Admin::allow_non_loopback`] was not set.
    NotLoopback(SocketAddr),
    /// Binding the listener failed.
    Bind(SocketAddr, io::Error),
    /// A thread could not be started.
    Spawn(io::Error),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::NotLoopback(a) => write!(
                f,
                "refusing to serve the admin endpoint on {a}, which is not a loopback \
                 address (it has no authentication); allow it explicitly to do so"
            ),
            AdminError::Bind(a, e) => write!(f, "cannot bind the admin endpoint to {a}: {e}"),
            AdminError::Spawn(e) => write!(f, "cannot start the admin endpoint's threads: {e}"),
        }
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AdminError::NotLoopback(_) => None,
            AdminError::Bind(_, e) | AdminError::Spawn(e) => Some(e),
        }
    }
}
