//! The TCP server: one `mio` event loop on one thread, any number of
//! concurrent connections, a small line protocol, and the leak pattern's
//! state per connection.
//!
//! # Protocol
//!
//! On connect the server sends `hello <id>`. Each line the client sends
//! (`\n`-terminated, `\r\n` accepted) gets one line back:
//!
//! | request | answer |
//! |---|---|
//! | `set KEY VALUE` | `ok` (the session holds at most 16 keys: `error session full`) |
//! | `get KEY` | the value, or `none` |
//! | `log TEXT...` | `ok` |
//! | `quit` | `bye`, then the server closes |
//! | anything else | `error ...` |
//!
//! A line longer than [`MAX_LINE`] bytes gets `error line too long` and the
//! connection is closed. Requests may be pipelined; a client may half-close
//! and still read its answers.
//!
//! Closing is graceful: once the last answer is written, the server shuts
//! its side down (the client reads the answers, then end of file) and reads
//! and drops whatever the client still sends until the client closes, for at
//! most [`LINGER`] and [`MAX_DRAIN`] bytes. Closing at once with unread
//! input would make the kernel reset the connection, and a reset makes the
//! client's kernel drop answers it has not read yet (`error line too long`
//! to a client still sending its huge line).
//!
//! # Per-connection state
//!
//! The server's own state per connection (a read buffer, a session map, the
//! last log line, a write buffer: about 1-2 KiB) is freed when the
//! connection ends; the pattern's state ([`crate::patterns`]) is dropped at
//! the same moment. [`OPEN`] counts connections whose state exists, for the
//! admin endpoint's quiescence check.
//!
//! # Failure
//!
//! Nothing a client sends or does ends the server: a read or write error
//! ends that connection only. When `accept` fails for lack of descriptors
//! (or memory), the server stops accepting for 10 ms, or until a connection
//! closes, and then goes on; pending clients wait in the listen backlog.

use crate::patterns::{self, ConnInfo, ConnectionState, Pattern, Variant};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest request line, in bytes.
pub const MAX_LINE: usize = 4096;
/// Keys a session holds at most.
const MAX_KEYS: usize = 16;
/// Answer bytes buffered for a client before the server stops answering
/// and reading its requests until it reads its answers.
const MAX_PENDING_OUT: usize = 64 * 1024;
/// Reads per connection per event before others get a turn.
const READ_BUDGET: usize = 16;
/// How long accepting pauses after running out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);
/// How long a closing connection waits for its client to close.
pub const LINGER: Duration = Duration::from_secs(2);
/// Bytes a closing connection reads and drops at most before it closes.
pub const MAX_DRAIN: usize = 8 << 20;

/// Connections whose state (the server's and the pattern's) exists now.
pub static OPEN: AtomicU64 = AtomicU64::new(0);
/// `accept` calls that failed, since start.
pub static ACCEPT_ERRORS: AtomicU64 = AtomicU64::new(0);

const LISTENER: Token = Token(usize::MAX);

/// One connection's state.
struct Conn {
    stream: TcpStream,
    info: ConnInfo,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// Answer bytes already written from the front of `outbuf`.
    written: usize,
    session: HashMap<String, String>,
    log_line: String,
    pattern: Box<dyn ConnectionState>,
    /// No more requests are read: `quit`, an error, or the client's EOF.
    closing: bool,
    /// The client closed its side (read returned 0).
    eof: bool,
    /// When a lingering close gives up waiting for the client (see the
    /// module docs), once answers are written and our side is shut.
    linger_until: Option<Instant>,
    /// Bytes read and dropped while lingering.
    drained: usize,
}

impl Drop for Conn {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to do with a connection after driving it.
enum Next {
    Keep,
    /// Its read budget ran out with input maybe left: drive it again soon.
    Again,
    Close,
}

impl Conn {
    fn new(stream: TcpStream, info: ConnInfo, pattern: Box<dyn ConnectionState>) -> Self {
        OPEN.fetch_add(1, Ordering::SeqCst);
        let mut c = Conn {
            stream,
            info,
            inbuf: Vec::with_capacity(512),
            outbuf: Vec::with_capacity(256),
            written: 0,
            session: HashMap::new(),
            log_line: String::with_capacity(128),
            pattern,
            closing: false,
            eof: false,
            linger_until: None,
            drained: 0,
        };
        let _ = writeln!(Wr(&mut c.outbuf), "hello {}", info.id);
        c
    }

    /// Writes pending answers, reads and answers requests, until the socket
    /// would block either way.
    fn drive(&mut self) -> Next {
        let mut reads = 0;
        let mut chunk = [0u8; 4096];
        loop {
            if self.flush().is_err() {
                return Next::Close;
            }
            let pending = self.outbuf.len() - self.written;
            if self.closing {
                return if pending > 0 {
                    Next::Keep
                } else if self.eof {
                    Next::Close
                } else {
                    self.linger(&mut chunk)
                };
            }
            if pending >= MAX_PENDING_OUT {
                return Next::Keep; // resumed by the writable event
            }
            if self.inbuf.contains(&b'\n') {
                // Lines left over when the answers backed up.
                self.take(&[]);
                continue;
            }
            if reads == READ_BUDGET {
                return Next::Again;
            }
            reads += 1;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    self.closing = true;
                }
                Ok(n) => self.take(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }

    /// All answers are written and no more requests are read: shut our
    /// side, then read and drop the client's input until it closes.
    fn linger(&mut self, chunk: &mut [u8]) -> Next {
        if self.linger_until.is_none() {
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
            self.linger_until = Some(Instant::now() + LINGER);
        }
        loop {
            match self.stream.read(chunk) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    self.drained += n;
                    if self.drained > MAX_DRAIN {
                        return Next::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.written < self.outbuf.len() {
            match self.stream.write(&self.outbuf[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outbuf.clear();
        self.written = 0;
        Ok(())
    }

    /// Takes bytes from the client and answers every complete line.
    fn take(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
        let mut start = 0;
        // Stop answering while a client does not read its answers.
        while !self.closing && self.outbuf.len() - self.written < MAX_PENDING_OUT {
            let Some(nl) = self.inbuf[start..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let end = start + nl;
            let line = std::mem::take(&mut self.inbuf);
            self.answer(&line[start..end]);
            self.inbuf = line;
            start = end + 1;
        }
        if self.closing {
            self.inbuf.clear();
            return;
        }
        self.inbuf.drain(..start);
        if self.inbuf.len() > MAX_LINE && !self.inbuf.contains(&b'\n') {
            self.inbuf.clear();
            self.reply("error line too long");
            self.closing = true;
        }
    }

    fn reply(&mut self, text: &str) {
        self.outbuf.extend_from_slice(text.as_bytes());
        self.outbuf.push(b'\n');
    }

    /// Answers one request line.
    fn answer(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            self.reply("error line too long");
            self.closing = true;
            return;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            self.reply("error not utf-8");
            return;
        };
        let mut words = text.split_whitespace();
        let command = words.next();
        match (command, words.next(), words.next(), words.next()) {
            (None, ..) => return, // blank line
            (Some("set"), Some(k), Some(v), None) => {
                if self.session.len() >= MAX_KEYS && !self.session.contains_key(k) {
                    self.reply("error session full");
                } else {
                    self.session.insert(k.to_string(), v.to_string());
                    self.reply("ok");
                }
            }
            (Some("get"), Some(k), None, None) => {
                let value = self.session.get(k).cloned();
                self.reply(value.as_deref().unwrap_or("none"));
            }
            (Some("log"), Some(_), ..) => self.reply("ok"),
            (Some("quit"), None, None, None) => {
                self.reply("bye");
                self.closing = true;
            }
            _ => {
                self.reply("error unknown command");
                return;
            }
        }
        self.log_line.clear();
        let mut cut = text.len().min(64);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let shown = &text[..cut];
        let _ = write!(self.log_line, "{} {}", self.info.id, shown);
        self.pattern.on_request(text);
    }
}

/// `fmt::Write` for a byte vector.
struct Wr<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Wr<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serves `pattern` in `variant` on `listener` until the process ends.
/// Returns only if polling itself fails. Each turn: close the lingering
/// connections whose time is up, poll, drive the ready connections, accept.
pub fn serve(listener: TcpListener, pattern: Pattern, variant: Variant) -> io::Result<()> {
    patterns::init(pattern);
    let mut server = Server::new(listener, pattern, variant)?;
    loop {
        let now = Instant::now();
        let mut closed_any = server.close_lingering(now);
        let timeout = server.poll_timeout(now);
        match server.poll.poll(&mut server.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if server.paused_until.is_some_and(|t| Instant::now() >= t) {
            server.paused_until = None;
            server.accept_now = true;
        }
        closed_any |= server.drive_ready();
        if closed_any && server.paused_until.is_some() {
            server.paused_until = None;
            server.accept_now = true;
        }
        if server.accept_now && server.paused_until.is_none() {
            server.accept_now = false;
            server.accept_all();
        }
    }
}

/// The event loop's state.
struct Server {
    listener: TcpListener,
    pattern: Pattern,
    variant: Variant,
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    /// Connections to drive again without waiting for an event.
    again: Vec<usize>,
    /// The connections this turn drives (the events' and last turn's
    /// `again`).
    again_next: Vec<usize>,
    next_id: u64,
    /// Accepting stopped until then, after a shortage of descriptors.
    paused_until: Option<Instant>,
    accept_now: bool,
    /// Connections in a lingering close, by key (checked for their
    /// deadline).
    lingering: Vec<usize>,
}

impl Server {
    fn new(mut listener: TcpListener, pattern: Pattern, variant: Variant) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        // Created before the first snapshot, with room for the connections a
        // soak holds; growing later would count in the epoch where it grew.
        Ok(Server {
            listener,
            pattern,
            variant,
            poll,
            events: Events::with_capacity(1024),
            conns: Slab::with_capacity(4096),
            again: Vec::with_capacity(4096),
            again_next: Vec::with_capacity(4096),
            next_id: 0,
            paused_until: None,
            accept_now: false,
            lingering: Vec::with_capacity(256),
        })
    }

    /// Closes the lingering connections whose deadline has passed; whether
    /// any was.
    fn close_lingering(&mut self, now: Instant) -> bool {
        let mut closed_any = false;
        let conns = &mut self.conns;
        self.lingering.retain(|&key| match conns.get(key) {
            Some(c) if c.linger_until.is_some_and(|t| now >= t) => {
                drop(conns.remove(key));
                closed_any = true;
                false
            }
            Some(c) => c.linger_until.is_some(),
            None => false,
        });
        closed_any
    }

    /// How long the poll may wait: not at all with work pending, else until
    /// the next lingering deadline or the end of an accept pause.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() || self.accept_now {
            return Some(Duration::ZERO);
        }
        self.lingering
            .iter()
            .filter_map(|&key| self.conns.get(key).and_then(|c| c.linger_until))
            .chain(self.paused_until)
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Drives the connections with events and those due again; whether
    /// any closed.
    fn drive_ready(&mut self) -> bool {
        let mut closed_any = false;
        std::mem::swap(&mut self.again, &mut self.again_next);
        self.again.clear();
        for event in self.events.iter() {
            if event.token() == LISTENER {
                self.accept_now = true;
            } else {
                self.again_next.push(event.token().0);
            }
        }
        for &key in &self.again_next {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            match conn.drive() {
                Next::Keep => {
                    if conn.linger_until.is_some() && !self.lingering.contains(&key) {
                        self.lingering.push(key);
                    }
                }
                Next::Again => self.again.push(key),
                Next::Close => {
                    // Closing the socket takes it out of the epoll set.
                    drop(self.conns.remove(key));
                    closed_any = true;
                }
            }
        }
        self.again_next.clear();
        self.again.sort_unstable();
        self.again.dedup();
        closed_any
    }

    /// Accepts every pending connection; on a shortage of descriptors (or
    /// unknown trouble) pauses accepting for [`ACCEPT_PAUSE`].
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.open(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    ACCEPT_ERRORS.fetch_add(1, Ordering::Relaxed);
                    if !is_resource_shortage(&e) {
                        // Unknown trouble: also back off rather than spin.
                        eprintln!("demo-server: accept: {e}");
                    }
                    self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    break;
                }
            }
        }
    }

    /// A new connection: registered, given the pattern's state, driven at
    /// once.
    fn open(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        self.next_id += 1;
        let info = ConnInfo {
            id: self.next_id,
            peer,
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let registered = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            return;
        }
        let state = patterns::open(self.pattern, self.variant, info);
        entry.insert(Conn::new(stream, info, state));
        self.again.push(key);
    }
}
