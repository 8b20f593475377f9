//! The load client: connect/use/disconnect cycles at a chosen concurrency on
//! one `mio` event loop, each connection closed with RST (`SO_LINGER` 0) so
//! that a million cycles leave no sockets in `TIME_WAIT` to exhaust the
//! ephemeral ports.
//!
//! A cycle of the demo's protocol ([`Script::Demo`]) connects, sends
//! `set user u<n>`, `get user` and `quit` at once (pipelined), reads
//! `hello <id>`, `ok`, `u<n>`, `bye`, checks that the session gave back its
//! own value, and resets the connection. For another server,
//! [`Script::Custom`] sends bytes (templated per cycle: `{cycle}`, `{key}`,
//! see [`crate::template`]) and waits for the answer to end with a marker
//! (or for the server to close); [`Script::Http`] sends one HTTP/1.1 request
//! with `Connection: close` and checks for a 2xx status.
//!
//! A cycle is one request. By default each has a connection of its own;
//! [`LoadClient::requests_per_connection`] (`--requests-per-conn N`) keeps
//! a connection for up to `N` cycles in a row, as HTTP keep-alive does:
//! a connection takes a block of `N` consecutive cycles (fewer for the last
//! of a batch), so `count` cycles take `count / N` connections, rounded up.
//! Each HTTP request but a connection's last goes without `Connection:
//! close` and is done when its response is complete (`Content-Length`,
//! chunked, or no body: `client/response.rs`); a raw TCP cycle is done when
//! its answer ends with `until`. A connection is closed (RST) after its
//! block, when the server says `Connection: close`, or when a cycle on it
//! fails; the failed cycle and the rest of the block are retried on new
//! connections, under new numbers.

mod response;

use crate::SoakError;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use response::Framing;
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A cycle given as a closure: called with the cycle's number and the
/// server's address, it connects, does its work, disconnects, and says
/// whether all went right. Called from `concurrency` threads at once. Its
/// error is the user's own words on what went wrong, which the soak quotes
/// as a failed cycle's (and, when cycles fail for good, in a
/// [`SoakError::Cycles`]).
pub type CycleFn = std::sync::Arc<dyn Fn(u64, SocketAddr) -> Result<(), String> + Send + Sync>;

/// What one cycle sends and waits for.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Script {
    /// The demo server's protocol, with the session check.
    #[default]
    Demo,
    /// Send `request`, then read until the answer ends with `until` (or,
    /// when `until` is empty, until the server closes). Both are templates.
    Custom {
        /// Sent at once after connecting (or after the connection's previous
        /// answer).
        request: Vec<u8>,
        /// The end of a complete answer; empty: the server closes.
        until: Vec<u8>,
    },
    /// One HTTP/1.1 request per cycle; the cycle is correct when the status
    /// is 2xx. The last request of a connection says `Connection: close` and
    /// is done when the server closes; the others (keep-alive, see
    /// [`LoadClient::requests_per_connection`]) when their response is
    /// complete. `path` and `body` are templates.
    Http {
        /// `GET`, `POST`, ...
        method: String,
        /// The request target, e.g. `/users/{cycle}`.
        path: String,
        /// Extra header lines (`Name: value`).
        headers: Vec<String>,
        /// The body (a `Content-Length` is added when it is not empty).
        body: Vec<u8>,
    },
    /// The cycle is a closure ([`CycleFn`]), for any protocol a test can
    /// speak; run on `concurrency` threads of the soak's own.
    Closure(CycleFn),
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Script::Demo => f.write_str("Demo"),
            Script::Custom { request, until } => f
                .debug_struct("Custom")
                .field("request", &String::from_utf8_lossy(request))
                .field("until", &String::from_utf8_lossy(until))
                .finish(),
            Script::Http {
                method,
                path,
                headers,
                body,
            } => f
                .debug_struct("Http")
                .field("method", method)
                .field("path", path)
                .field("headers", headers)
                .field("body", &String::from_utf8_lossy(body))
                .finish(),
            Script::Closure(_) => f.write_str("Closure"),
        }
    }
}

impl Script {
    /// Whether a connection can carry more than one cycle of this script.
    #[must_use]
    pub fn can_keep_alive(&self) -> bool {
        match self {
            Script::Http { .. } => true,
            Script::Custom { until, .. } => !until.is_empty(),
            Script::Demo | Script::Closure(_) => false,
        }
    }

    /// The bytes cycle `n` sends to `host`; `last`: the connection's last
    /// request (HTTP says `Connection: close`).
    fn request(&self, n: u64, host: &str, last: bool) -> Vec<u8> {
        match self {
            Script::Demo => format!("set user u{n}\nget user\nquit\n").into_bytes(),
            Script::Closure(_) => Vec::new(),
            Script::Custom { request, .. } => crate::template::render(request, n),
            Script::Http {
                method,
                path,
                headers,
                body,
            } => {
                let path = crate::template::render(path.as_bytes(), n);
                let body = crate::template::render(body, n);
                let mut req = Vec::with_capacity(128 + body.len());
                req.extend_from_slice(method.as_bytes());
                req.push(b' ');
                req.extend_from_slice(&path);
                req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
                req.extend_from_slice(host.as_bytes());
                req.extend_from_slice(b"\r\n");
                if last {
                    req.extend_from_slice(b"Connection: close\r\n");
                }
                for h in headers {
                    req.extend_from_slice(h.as_bytes());
                    req.extend_from_slice(b"\r\n");
                }
                if !body.is_empty() {
                    req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                req.extend_from_slice(b"\r\n");
                req.extend_from_slice(&body);
                req
            }
        }
    }
}

/// One connection, and the cycle in flight on it.
struct Slot {
    stream: TcpStream,
    /// The cycle in flight.
    n: u64,
    request: Vec<u8>,
    written: usize,
    answer: Vec<u8>,
    /// The cycle's `until` (raw TCP), templated.
    until: Vec<u8>,
    connected: bool,
    /// Cycles of this connection's block after the one in flight.
    left: u64,
    /// The cycle in flight is not the connection's last: HTTP sent no
    /// `Connection: close`, and its response ends where its framing says.
    keep: bool,
}

impl Slot {
    /// Sets the connection up for cycle `n`: its last when no cycle of its
    /// block is `left` after it.
    fn begin(&mut self, script: &Script, host: &str, n: u64) {
        let last = self.left == 0;
        self.n = n;
        self.request = script.request(n, host, last);
        self.written = 0;
        self.answer.clear();
        self.until = match script {
            Script::Custom { until, .. } => crate::template::render(until, n),
            _ => Vec::new(),
        };
        self.keep = !last;
    }
}

/// Where a cycle stands after [`drive`].
enum Progress {
    /// Waiting for the server.
    Pending,
    /// Done and correct; `reusable`: the connection can carry another.
    Done { reusable: bool },
}

/// Counts of one [`LoadClient::run`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CycleStats {
    /// Cycles that completed and checked out.
    pub completed: u64,
    /// Cycles that failed (connect error, reset, wrong answer) and were
    /// retried.
    pub failed: u64,
    /// Connections opened (the closure's cycles open their own, uncounted:
    /// 0).
    pub connections: u64,
    /// The first cycle number the run did not use (a retried cycle, and the
    /// rest of a connection's block cut short, take new numbers): where the
    /// next run's numbers start.
    pub next: u64,
}

/// Runs cycles against one server address.
pub struct LoadClient {
    addr: SocketAddr,
    /// `addr` as the HTTP `Host` header.
    host: String,
    requests_per_connection: u64,
    poll: Poll,
    events: Events,
    slots: Slab<Slot>,
    script: Script,
    /// The first failure, for the error message.
    first_failure: Option<String>,
}

impl LoadClient {
    /// A client of the server at `addr`, running `script` each cycle.
    pub fn new(addr: SocketAddr, script: Script) -> io::Result<Self> {
        Ok(LoadClient {
            addr,
            host: addr.to_string(),
            requests_per_connection: 1,
            script,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            slots: Slab::with_capacity(1024),
            first_failure: None,
        })
    }

    /// Lets a connection carry up to `n` cycles in a row (at least 1, the
    /// default: a connection per cycle). A script that cannot keep a
    /// connection ([`Script::can_keep_alive`]) stays at 1.
    #[must_use]
    pub fn requests_per_connection(mut self, n: u64) -> Self {
        self.requests_per_connection = if self.script.can_keep_alive() {
            n.max(1)
        } else {
            1
        };
        self
    }

    /// Runs `count` successful cycles numbered from `first`, at most
    /// `concurrency` connections at once; failed cycles are retried, up to
    /// `count + 100` failures. Fails if that many fail or `timeout` passes.
    /// Each turn: connections opened for the cycles due, a poll, the ready
    /// connections driven, the finished ones closed.
    pub fn run(
        &mut self,
        first: u64,
        count: u64,
        concurrency: usize,
        timeout: Duration,
    ) -> Result<CycleStats, SoakError> {
        if let Script::Closure(cycle) = &self.script {
            return run_closure(cycle, self.addr, first, count, concurrency, timeout);
        }
        let deadline = Instant::now() + timeout;
        let mut b = Batch {
            count,
            next: first,
            started: 0,
            max_failures: count + 100,
            stats: CycleStats::default(),
            to_close: Vec::with_capacity(concurrency.max(1)),
        };
        loop {
            self.fill(&mut b, concurrency.max(1))?;
            if self.slots.is_empty() && b.stats.completed >= count {
                b.stats.next = b.next;
                return Ok(b.stats);
            }
            let now = Instant::now();
            if now > deadline {
                self.close_all();
                return Err(SoakError::Cycles(format!(
                    "{} of {count} cycles done when the {timeout:?} timeout passed ({} failed{})",
                    b.stats.completed,
                    b.stats.failed,
                    self.first_failure
                        .as_deref()
                        .map(|f| format!("; first failure: {f}"))
                        .unwrap_or_default()
                )));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SoakError::Cycles(format!("poll: {e}"))),
            }
            self.drive_ready(&mut b);
            self.close_finished(&mut b)?;
        }
    }

    /// Keeps `concurrency` connections busy while cycles are due.
    fn fill(&mut self, b: &mut Batch, concurrency: usize) -> Result<(), SoakError> {
        while self.slots.len() < concurrency && b.started < b.count + b.stats.failed {
            // A connection takes its cycles in one block, so `count`
            // cycles take `count / N` connections, rounded up.
            let block = self
                .requests_per_connection
                .min(b.count + b.stats.failed - b.started);
            match self.start(b.next, block) {
                Ok(()) => {
                    b.stats.connections += 1;
                    b.next += block;
                    b.started += block;
                }
                Err(e) => {
                    b.stats.failed += 1;
                    self.note_failure(format!("connect: {e}"));
                    if b.stats.failed > b.max_failures {
                        return Err(self.give_up(b.stats));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    b.next += 1;
                    b.started += 1;
                }
            }
        }
        Ok(())
    }

    /// Drives the connections the poll found ready; those done with their
    /// block, or failed, go to `b.to_close`.
    fn drive_ready(&mut self, b: &mut Batch) {
        for event in self.events.iter() {
            let key = event.token().0;
            let Some(slot) = self.slots.get_mut(key) else {
                continue;
            };
            // A kept connection goes on to its next cycle at once (the
            // socket is writable and no new event would say so).
            let mut readable = event.is_readable() || event.is_read_closed();
            loop {
                match drive(slot, &self.script, readable) {
                    Ok(Progress::Pending) => break,
                    Ok(Progress::Done { reusable }) => {
                        b.stats.completed += 1;
                        if reusable && slot.left > 0 {
                            slot.left -= 1;
                            slot.begin(&self.script, &self.host, slot.n + 1);
                            // Drained to `WouldBlock`: the answer comes
                            // with a new event.
                            readable = false;
                            continue;
                        }
                        // The server closes early: the rest of the block
                        // is due again, on another connection.
                        b.started -= slot.left;
                        b.to_close.push((key, false));
                    }
                    Err(e) => {
                        if self.first_failure.is_none() {
                            self.first_failure = Some(format!("cycle {}: {e}", slot.n));
                        }
                        // This cycle is retried (a failure makes one more
                        // due); the rest of the block is due again.
                        b.started -= slot.left;
                        b.to_close.push((key, true));
                    }
                }
                break;
            }
        }
    }

    /// Closes the connections in `b.to_close`, counting the failed ones.
    fn close_finished(&mut self, b: &mut Batch) -> Result<(), SoakError> {
        for (key, failed) in b.to_close.drain(..) {
            // Closing the socket takes it out of the epoll set.
            if let Some(slot) = self.slots.try_remove(key) {
                reset(&slot.stream);
                if failed {
                    b.stats.failed += 1;
                    if b.stats.failed > b.max_failures {
                        self.close_all();
                        return Err(self.give_up(b.stats));
                    }
                }
            }
        }
        Ok(())
    }

    /// Connects for the `block` cycles numbered from `n` (at least 1).
    fn start(&mut self, n: u64, block: u64) -> io::Result<()> {
        let mut stream = TcpStream::connect(self.addr)?;
        let entry = self.slots.vacant_entry();
        self.poll.registry().register(
            &mut stream,
            Token(entry.key()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let slot = entry.insert(Slot {
            stream,
            n,
            request: Vec::new(),
            written: 0,
            answer: Vec::with_capacity(64),
            until: Vec::new(),
            connected: false,
            left: block.max(1) - 1,
            keep: false,
        });
        slot.begin(&self.script, &self.host, n);
        Ok(())
    }

    fn note_failure(&mut self, msg: String) {
        if self.first_failure.is_none() {
            self.first_failure = Some(msg);
        }
    }

    fn give_up(&self, stats: CycleStats) -> SoakError {
        SoakError::Cycles(format!(
            "{} cycles failed ({} completed); first failure: {}",
            stats.failed,
            stats.completed,
            self.first_failure.as_deref().unwrap_or("?")
        ))
    }

    fn close_all(&mut self) {
        for slot in self.slots.drain() {
            reset(&slot.stream);
        }
    }
}

/// One [`LoadClient::run`]'s state.
struct Batch {
    /// The successful cycles wanted.
    count: u64,
    /// The next cycle's number.
    next: u64,
    /// Cycles started (a failure makes one more due).
    started: u64,
    max_failures: u64,
    stats: CycleStats,
    /// Connections to close, and whether their cycle failed.
    to_close: Vec<(usize, bool)>,
}

/// Closes with RST instead of FIN: no `TIME_WAIT` on either side.
pub fn reset<S: std::os::fd::AsFd>(stream: &S) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// [`LoadClient::run`] for a [`Script::Closure`]: `concurrency` threads
/// take cycle numbers in turn; a failed cycle is retried under a new number,
/// up to `count + 100` failures.
fn run_closure(
    cycle: &CycleFn,
    addr: SocketAddr,
    first: u64,
    count: u64,
    concurrency: usize,
    timeout: Duration,
) -> Result<CycleStats, SoakError> {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Mutex;
    let deadline = Instant::now() + timeout;
    let (next, completed, failed) = (AtomicU64::new(first), AtomicU64::new(0), AtomicU64::new(0));
    // Successes claimed: no more than `count` cycles succeed.
    let claimed = AtomicU64::new(0);
    let first_failure: Mutex<Option<String>> = Mutex::new(None);
    let max_failures = count + 100;
    std::thread::scope(|scope| {
        for _ in 0..concurrency.max(1) {
            scope.spawn(|| loop {
                if failed.load(Relaxed) > max_failures || Instant::now() > deadline {
                    return;
                }
                if claimed.fetch_add(1, Relaxed) >= count {
                    claimed.fetch_sub(1, Relaxed);
                    return;
                }
                let n = next.fetch_add(1, Relaxed);
                match cycle(n, addr) {
                    Ok(()) => {
                        completed.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        // Give the claim back: a failed cycle is retried.
                        claimed.fetch_sub(1, Relaxed);
                        failed.fetch_add(1, Relaxed);
                        let mut f = first_failure.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(format!("cycle {n}: {e}"));
                    }
                }
            });
        }
    });
    let stats = CycleStats {
        completed: completed.load(Relaxed),
        failed: failed.load(Relaxed),
        connections: 0,
        next: next.load(Relaxed),
    };
    let why = first_failure
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or_default();
    if stats.failed > max_failures {
        return Err(SoakError::Cycles(format!(
            "{} cycles failed ({} completed); first failure: {why}",
            stats.failed, stats.completed
        )));
    }
    if stats.completed < count {
        return Err(SoakError::Cycles(format!(
            "{} of {count} cycles done when the {timeout:?} timeout passed ({} failed; {why})",
            stats.completed, stats.failed
        )));
    }
    Ok(stats)
}

/// Advances the cycle in flight on `slot`; `readable`: its event said there
/// is something to read.
fn drive(slot: &mut Slot, script: &Script, readable: bool) -> Result<Progress, String> {
    if !slot.connected {
        if let Ok(Some(e)) | Err(e) = slot.stream.take_error() {
            return Err(format!("connect: {e}"));
        }
        match slot.stream.peer_addr() {
            Ok(_) => slot.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(Progress::Pending),
            Err(e) => return Err(format!("connect: {e}")),
        }
    }
    let unsent = slot.written < slot.request.len();
    while slot.written < slot.request.len() {
        match slot.stream.write(&slot.request[slot.written..]) {
            Ok(0) => return Err("write returned 0".to_string()),
            Ok(n) => slot.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    if unsent && !readable {
        // The request has just gone out and nothing had come in: the
        // answer (edge-triggered) brings an event of its own, so a read
        // now would only find `WouldBlock`.
        return Ok(Progress::Pending);
    }
    let mut buf = [0u8; 512];
    loop {
        match slot.stream.read(&mut buf) {
            Ok(0) => return check(slot, script, true),
            Ok(n) => {
                slot.answer.extend_from_slice(&buf[..n]);
                if slot.answer.len() > MAX_ANSWER {
                    return Err("answer too long".to_string());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return check(slot, script, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// The longest answer a cycle reads.
const MAX_ANSWER: usize = 1 << 20;

/// Whether the answer is complete and right.
fn check(slot: &Slot, script: &Script, eof: bool) -> Result<Progress, String> {
    const PENDING: Result<Progress, String> = Ok(Progress::Pending);
    let done = |reusable| Ok(Progress::Done { reusable });
    if let Script::Http { method, .. } = script {
        let status = if slot.keep {
            match response::frame(&slot.answer, method)? {
                Framing::Complete { status, close, .. } => (status, !close && !eof),
                Framing::UntilClose { status } if eof => (status, false),
                Framing::Incomplete if eof => {
                    return Err(format!(
                        "the server closed the connection after {} bytes of a response",
                        slot.answer.len()
                    ))
                }
                Framing::UntilClose { .. } | Framing::Incomplete => return PENDING,
            }
        } else if !eof {
            return PENDING;
        } else if slot.answer.starts_with(b"HTTP/1.1 2") || slot.answer.starts_with(b"HTTP/1.0 2") {
            (200, false)
        } else {
            (0, false)
        };
        return match status {
            (200..=299, reusable) => done(reusable),
            _ => {
                let head = slot
                    .answer
                    .split(|&b| b == b'\r')
                    .next()
                    .unwrap_or_default();
                Err(format!(
                    "HTTP answer {:?}, not 2xx",
                    String::from_utf8_lossy(head)
                ))
            }
        };
    }
    if let Script::Custom { .. } = script {
        let until = &slot.until;
        return match (until.is_empty(), eof) {
            (true, true) => done(false),
            (true, false) => PENDING,
            (false, _) if slot.answer.ends_with(until) => done(!eof),
            (false, true) => Err(format!(
                "the server closed before {:?}",
                String::from_utf8_lossy(until)
            )),
            (false, false) => PENDING,
        };
    }
    if !slot.answer.ends_with(b"bye\n") {
        return if eof {
            Err(format!(
                "the server closed after {:?}",
                String::from_utf8_lossy(&slot.answer)
            ))
        } else {
            PENDING
        };
    }
    let text = String::from_utf8_lossy(&slot.answer);
    let lines: Vec<&str> = text.lines().collect();
    let value = format!("u{}", slot.n);
    match lines.as_slice() {
        [hello, "ok", v, "bye"] if hello.starts_with("hello ") && *v == value => done(false),
        _ => Err(format!("unexpected answer {text:?}")),
    }
}
