//! The acceptor: takes connections and reads their request heads without
//! blocking, so that clients that connect and send nothing, or trickle
//! their head a byte at a time, hold no worker.
//!
//! One thread polls the listener and every connection whose head is not
//! complete yet (`mio`). A connection is handed to a worker only once its
//! head has arrived (or is refused: too large, malformed); one that has not
//! sent its head within [`READ_TIMEOUT`] of being accepted is closed. At
//! most [`MAX_PENDING`] connections wait for their heads: a new one beyond
//! that closes the one that has waited longest, which a client sending its
//! request at once never is. When every worker is busy and the queue is
//! full, a complete request gets `503` at once. Memory is bounded by
//! `MAX_PENDING` heads of at most [`crate::http::MAX_HEAD`] bytes.

use crate::http::{self, Head, Refusal, MAX_HEAD, READ_TIMEOUT};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections waiting for their request heads at most.
pub(crate) const MAX_PENDING: usize = 128;
const LISTENER: Token = Token(usize::MAX);

/// A connection whose head has arrived, for a worker.
pub(crate) struct Job {
    pub(crate) stream: std::net::TcpStream,
    pub(crate) head: Result<Head, Refusal>,
    /// When reading the request (its body included) must be done.
    pub(crate) deadline: Instant,
}

struct Pending {
    stream: TcpStream,
    buf: Vec<u8>,
    accepted: Instant,
}

/// Runs until `stop` is set (checked at least every 100 ms) or the workers
/// are gone.
pub(crate) fn run(listener: std::net::TcpListener, jobs: SyncSender<Job>, stop: Arc<AtomicBool>) {
    if let Err(e) = serve(listener, &jobs, &stop) {
        eprintln!("alloc-admin: the acceptor stopped: {e}");
    }
}

fn serve(
    listener: std::net::TcpListener,
    jobs: &SyncSender<Job>,
    stop: &AtomicBool,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(256);
    let mut pending: HashMap<Token, Pending> = HashMap::new();
    let mut next = 0usize;
    while !stop.load(Ordering::SeqCst) {
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut pending, &mut next);
            } else if let Some(p) = pending.get_mut(&event.token()) {
                match read_head(p) {
                    Progress::Waiting => {}
                    Progress::Gone => {
                        if let Some(mut p) = pending.remove(&event.token()) {
                            let _ = poll.registry().deregister(&mut p.stream);
                        }
                    }
                    Progress::Done(head) => {
                        if let Some(mut p) = pending.remove(&event.token()) {
                            let _ = poll.registry().deregister(&mut p.stream);
                            if !dispatch(p, head, jobs) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        expire(&poll, &mut pending);
    }
    Ok(())
}

fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    pending: &mut HashMap<Token, Pending>,
    next: &mut usize,
) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if pending.len() >= MAX_PENDING {
                    evict_oldest(poll, pending);
                }
                let token = Token(*next);
                *next = (*next + 1) % (usize::MAX - 1);
                if poll
                    .registry()
                    .register(&mut stream, token, Interest::READABLE)
                    .is_ok()
                {
                    pending.insert(
                        token,
                        Pending {
                            stream,
                            buf: Vec::new(),
                            accepted: Instant::now(),
                        },
                    );
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors, or a connection reset before accept: the
            // next poll tries again.
            Err(_) => return,
        }
    }
}

fn evict_oldest(poll: &Poll, pending: &mut HashMap<Token, Pending>) {
    let oldest = pending
        .iter()
        .min_by_key(|(_, p)| p.accepted)
        .map(|(t, _)| *t);
    if let Some(mut p) = oldest.and_then(|t| pending.remove(&t)) {
        let _ = poll.registry().deregister(&mut p.stream);
    }
}

/// Closes the connections that have not sent their heads in time.
fn expire(poll: &Poll, pending: &mut HashMap<Token, Pending>) {
    let now = Instant::now();
    pending.retain(|_, p| {
        let keep = now.duration_since(p.accepted) < READ_TIMEOUT;
        if !keep {
            let _ = poll.registry().deregister(&mut p.stream);
        }
        keep
    });
}

enum Progress {
    Waiting,
    Gone,
    Done(Result<Head, Refusal>),
}

/// Reads what the connection has sent (edge-triggered: until it would
/// block) and parses it.
fn read_head(p: &mut Pending) -> Progress {
    let mut chunk = [0u8; 4096];
    // The client half-closed: what it sent is all there will be.
    let mut ended = false;
    loop {
        let room = (MAX_HEAD + 1).saturating_sub(p.buf.len()).min(chunk.len());
        if room == 0 {
            break;
        }
        match p.stream.read(&mut chunk[..room]) {
            Ok(0) if p.buf.is_empty() => return Progress::Gone,
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => p.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Progress::Gone,
        }
    }
    match http::parse_head(&p.buf) {
        Ok(None) if ended => Progress::Done(Err(Refusal(
            400,
            "the request ended before its head was complete".to_string(),
        ))),
        Ok(None) => Progress::Waiting,
        Ok(Some(head)) => Progress::Done(Ok(head)),
        Err(refusal) => Progress::Done(Err(refusal)),
    }
}

/// Hands a connection to the workers, or answers `503`. False once the
/// workers are gone.
fn dispatch(p: Pending, head: Result<Head, Refusal>, jobs: &SyncSender<Job>) -> bool {
    let job = Job {
        stream: std::net::TcpStream::from(p.stream),
        head,
        deadline: p.accepted + READ_TIMEOUT,
    };
    match jobs.try_send(job) {
        Ok(()) => true,
        Err(TrySendError::Full(mut job)) => {
            http::busy(&mut job.stream);
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}
