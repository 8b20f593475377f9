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

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A cycle given as a closure: called with the cycle's number and the
/// server's address, it connects, does its work, disconnects, and says
/// whether all went right. Called from `concurrency` threads at once.
pub type CycleFn = std::sync::Arc<dyn Fn(u64, SocketAddr) -> Result<(), String> + Send + Sync>;

/// What one cycle sends and waits for.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Script {
    /// The demo server's protocol, with the session check.
    #[default]
    Demo,
    /// Send `request`, then read until the answer ends with `until` (or,
    /// when `until` is empty, until the server closes).
    Custom {
        /// Sent at once after connecting.
        request: Vec<u8>,
        /// The end of a complete answer; empty: the server closes.
        until: Vec<u8>,
    },
    /// One HTTP/1.1 request per cycle (`Connection: close`); the cycle is
    /// done when the server closes, and correct when the status is 2xx.
    /// `path` and `body` are templates.
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
    /// The bytes cycle `n` sends to `addr`.
    fn request(&self, n: u64, addr: SocketAddr) -> Vec<u8> {
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
                req.extend_from_slice(addr.to_string().as_bytes());
                req.extend_from_slice(b"\r\nConnection: close\r\n");
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

/// One cycle in flight.
struct Slot {
    stream: TcpStream,
    n: u64,
    request: Vec<u8>,
    written: usize,
    answer: Vec<u8>,
    connected: bool,
}

/// Counts of one [`LoadClient::run`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CycleStats {
    /// Cycles that completed and checked out.
    pub completed: u64,
    /// Cycles that failed (connect error, reset, wrong answer) and were
    /// retried.
    pub failed: u64,
}

/// Runs cycles against one server address.
pub struct LoadClient {
    addr: SocketAddr,
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
            script,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            slots: Slab::with_capacity(1024),
            first_failure: None,
        })
    }

    /// Runs `count` successful cycles numbered from `first`, at most
    /// `concurrency` at once; failed cycles are retried, up to `count + 100`
    /// failures. Fails if that many fail or `timeout` passes.
    pub fn run(
        &mut self,
        first: u64,
        count: u64,
        concurrency: usize,
        timeout: Duration,
    ) -> Result<CycleStats, String> {
        if let Script::Closure(cycle) = &self.script {
            return run_closure(cycle, self.addr, first, count, concurrency, timeout);
        }
        let deadline = Instant::now() + timeout;
        let mut stats = CycleStats::default();
        let mut next = first;
        let mut started = 0u64;
        let max_failures = count + 100;
        let mut to_close: Vec<(usize, bool)> = Vec::with_capacity(concurrency.max(1));
        loop {
            // Keep `concurrency` cycles in flight while some are still due.
            while self.slots.len() < concurrency.max(1) && started < count + stats.failed {
                match self.start(next) {
                    Ok(()) => {}
                    Err(e) => {
                        stats.failed += 1;
                        self.note_failure(format!("connect: {e}"));
                        if stats.failed > max_failures {
                            return Err(self.give_up(stats));
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                next += 1;
                started += 1;
            }
            if self.slots.is_empty() && stats.completed >= count {
                return Ok(stats);
            }
            let now = Instant::now();
            if now > deadline {
                self.close_all();
                return Err(format!(
                    "{} of {count} cycles done when the {timeout:?} timeout passed ({} failed{})",
                    stats.completed,
                    stats.failed,
                    self.first_failure
                        .as_deref()
                        .map(|f| format!("; first failure: {f}"))
                        .unwrap_or_default()
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            for event in self.events.iter() {
                let key = event.token().0;
                let Some(slot) = self.slots.get_mut(key) else {
                    continue;
                };
                match drive(slot, &self.script) {
                    Ok(false) => {}
                    Ok(true) => to_close.push((key, true)),
                    Err(e) => {
                        if self.first_failure.is_none() {
                            self.first_failure = Some(format!("cycle {}: {e}", slot.n));
                        }
                        to_close.push((key, false));
                    }
                }
            }
            for (key, ok) in to_close.drain(..) {
                // Closing the socket takes it out of the epoll set.
                if let Some(slot) = self.slots.try_remove(key) {
                    reset(&slot.stream);
                    if ok {
                        stats.completed += 1;
                    } else {
                        stats.failed += 1;
                        if stats.failed > max_failures {
                            self.close_all();
                            return Err(self.give_up(stats));
                        }
                    }
                }
            }
        }
    }

    fn start(&mut self, n: u64) -> io::Result<()> {
        let mut stream = TcpStream::connect(self.addr)?;
        let entry = self.slots.vacant_entry();
        self.poll.registry().register(
            &mut stream,
            Token(entry.key()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let request = self.script.request(n, self.addr);
        entry.insert(Slot {
            stream,
            n,
            request,
            written: 0,
            answer: Vec::with_capacity(64),
            connected: false,
        });
        Ok(())
    }

    fn note_failure(&mut self, msg: String) {
        if self.first_failure.is_none() {
            self.first_failure = Some(msg);
        }
    }

    fn give_up(&self, stats: CycleStats) -> String {
        format!(
            "{} cycles failed ({} completed); first failure: {}",
            stats.failed,
            stats.completed,
            self.first_failure.as_deref().unwrap_or("?")
        )
    }

    fn close_all(&mut self) {
        for slot in self.slots.drain() {
            reset(&slot.stream);
        }
    }
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
) -> Result<CycleStats, String> {
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
    };
    let why = first_failure
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or_default();
    if stats.failed > max_failures {
        return Err(format!(
            "{} cycles failed ({} completed); first failure: {why}",
            stats.failed, stats.completed
        ));
    }
    if stats.completed < count {
        return Err(format!(
            "{} of {count} cycles done when the {timeout:?} timeout passed ({} failed; {why})",
            stats.completed, stats.failed
        ));
    }
    Ok(stats)
}

/// Advances one cycle; `Ok(true)` when it is complete and correct.
fn drive(slot: &mut Slot, script: &Script) -> Result<bool, String> {
    if !slot.connected {
        if let Ok(Some(e)) | Err(e) = slot.stream.take_error() {
            return Err(format!("connect: {e}"));
        }
        match slot.stream.peer_addr() {
            Ok(_) => slot.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(format!("connect: {e}")),
        }
    }
    while slot.written < slot.request.len() {
        match slot.stream.write(&slot.request[slot.written..]) {
            Ok(0) => return Err("write returned 0".to_string()),
            Ok(n) => slot.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
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

/// Whether the answer is complete (`bye` received) and right.
fn check(slot: &Slot, script: &Script, eof: bool) -> Result<bool, String> {
    if let Script::Http { .. } = script {
        if !eof {
            return Ok(false);
        }
        return if slot.answer.starts_with(b"HTTP/1.1 2") || slot.answer.starts_with(b"HTTP/1.0 2") {
            Ok(true)
        } else {
            let head = slot
                .answer
                .split(|&b| b == b'\r')
                .next()
                .unwrap_or_default();
            Err(format!(
                "HTTP answer {:?}, not 2xx",
                String::from_utf8_lossy(head)
            ))
        };
    }
    if let Script::Custom { until, .. } = script {
        return match (until.is_empty(), eof) {
            (true, eof) => Ok(eof),
            (false, _) if slot.answer.ends_with(until) => Ok(true),
            (false, true) => Err(format!(
                "the server closed before {:?}",
                String::from_utf8_lossy(until)
            )),
            (false, false) => Ok(false),
        };
    }
    if !slot.answer.ends_with(b"bye\n") {
        return if eof {
            Err(format!(
                "the server closed after {:?}",
                String::from_utf8_lossy(&slot.answer)
            ))
        } else {
            Ok(false)
        };
    }
    let text = String::from_utf8_lossy(&slot.answer);
    let lines: Vec<&str> = text.lines().collect();
    let value = format!("u{}", slot.n);
    match lines.as_slice() {
        [hello, "ok", v, "bye"] if hello.starts_with("hello ") && *v == value => Ok(true),
        _ => Err(format!("unexpected answer {text:?}")),
    }
}
