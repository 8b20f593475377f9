//! Parsing one HTTP/1.x request head (by `httparse`, from the bytes the
//! acceptor gathered) and answering it on a worker, with every limit that
//! keeps a hostile client from hurting the program: head size, header
//! count, one `Content-Length`, and a deadline on each stage (the head and
//! body within [`READ_TIMEOUT`] of being accepted, the answer within
//! [`WRITE_TIMEOUT`], the linger within 200 ms), however a client trickles.

use crate::message::{reason, Guard, Request, Response};
use crate::State;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head read; larger gets 431.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The most headers parsed; more gets 431.
const MAX_HEADERS: usize = 32;
/// The largest request body read (`/debug/pprof/symbol` takes a list of
/// addresses); larger gets 413.
const MAX_BODY: usize = 1024 * 1024;
/// How long a client may take to send its request head and body, from
/// the moment it is accepted.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writing the answer may take in all.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no request could be read: answer with this status and message.
pub(crate) struct Refusal(pub(crate) u16, pub(crate) String);

/// A request head read in full (by the acceptor), with the body bytes that
/// came with it.
pub(crate) struct Head {
    pub(crate) request: Request,
    /// `Content-Length`: the body's whole length.
    pub(crate) body_len: usize,
}

/// Parses `buf` (what a client sent so far): `Ok(None)` while the head is
/// incomplete, the request once it is (its body holds the bytes that came
/// with the head, at most `body_len`), or the answer that refuses it.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            if req.version != Some(1) && req.version != Some(0) {
                return Err(Refusal(505, "HTTP/1.x only".to_string()));
            }
            let method = req.method.unwrap_or("").to_string();
            let target = req.path.unwrap_or("");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (target.to_string(), None),
            };
            let body_len = content_length(req.headers)?;
            let header = |name: &str| {
                let mut values = req
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
                let first = values.next();
                match values.next() {
                    Some(_) => Err(Refusal(400, format!("more than one {name} header"))),
                    None => Ok(first),
                }
            };
            let guard = Guard {
                host: header("host")?,
                origin: header("origin")?,
                fetch_site: header("sec-fetch-site")?,
                authorization: header("authorization")?,
            };
            let rest = &buf[head_len..];
            Ok(Some(Head {
                request: Request {
                    method,
                    path,
                    query,
                    body: rest[..rest.len().min(body_len)].to_vec(),
                    guard,
                },
                body_len,
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err(Refusal(
            431,
            format!("request head larger than {MAX_HEAD} bytes"),
        )),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            Err(Refusal(431, format!("more than {MAX_HEADERS} headers")))
        }
        Err(e) => Err(Refusal(400, format!("malformed request: {e}"))),
    }
}

/// Answers one connection whose head the acceptor read: reads the rest of
/// the body, routes, writes the answer, lingers briefly, closes; all of it
/// before `deadline` plus the write and linger allowances.
pub(crate) fn serve_one(
    mut stream: TcpStream,
    head: Result<Head, Refusal>,
    deadline: Instant,
    state: &State,
) {
    let _ = stream.set_nonblocking(false);
    let (response, head_only) = match head.and_then(|h| finish_body(&mut stream, h, deadline)) {
        Ok(mut req) => match crate::guard::admit(&state.guard, &mut req) {
            Ok(()) => (crate::routes::route(&req, state), req.method == "HEAD"),
            Err(refused) => (refused, false),
        },
        Err(Refusal(status, msg)) => (Response::text(status, msg + "\n"), false),
    };
    if write_response(&mut stream, &response, head_only).is_ok() {
        linger_close(&mut stream);
    }
}

/// The answer when every worker is busy and the queue is full: one try,
/// never waiting (the socket is non-blocking).
pub(crate) fn busy(stream: &mut impl Write) {
    let answer = Response::text(503, "busy: too many admin requests at once\n");
    let _ = stream.write(&response_bytes(&answer, false));
}

/// The rest of the body, read before `deadline`.
fn finish_body(stream: &mut TcpStream, head: Head, deadline: Instant) -> Result<Request, Refusal> {
    let Head {
        mut request,
        body_len,
    } = head;
    let mut got = request.body.len();
    request.body.resize(body_len, 0);
    while got < body_len {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(Refusal(
                408,
                "the request body did not arrive in time".to_string(),
            ));
        };
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match stream.read(&mut request.body[got..]) {
            Ok(0) => {
                return Err(Refusal(
                    400,
                    "the request ended before its body was complete".to_string(),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                return Err(Refusal(
                    408,
                    "the request body did not arrive in time".to_string(),
                ))
            }
        }
    }
    Ok(request)
}

/// The request's `Content-Length` (0 without one): 400 if it is not a
/// plain decimal number or is given twice with different values, 413
/// beyond [`MAX_BODY`], 501 for chunked bodies.
fn content_length(headers: &[httparse::Header<'_>]) -> Result<usize, Refusal> {
    let mut length = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal(
                501,
                "chunked request bodies are not supported".to_string(),
            ));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| Refusal(400, "bad Content-Length".to_string()))?;
            if length.is_some_and(|l| l != value) {
                return Err(Refusal(
                    400,
                    "conflicting Content-Length headers".to_string(),
                ));
            }
            length = Some(value);
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Err(Refusal(
            413,
            format!("request body larger than {MAX_BODY} bytes"),
        ));
    }
    Ok(length)
}

/// The answer's bytes: status line, headers, and the body unless
/// `head_only`.
fn response_bytes(r: &Response, head_only: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    if let Some(allow) = r.allow {
        head.push_str("Allow: ");
        head.push_str(allow);
        head.push_str("\r\n");
    }
    if r.status == 401 {
        head.push_str("WWW-Authenticate: Bearer\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&r.body);
    }
    bytes
}

/// Writes the answer within [`WRITE_TIMEOUT`] in all: a client that reads
/// slowly is cut off when it runs out, however it trickles.
fn write_response(stream: &mut TcpStream, r: &Response, head_only: bool) -> io::Result<()> {
    let bytes = response_bytes(r, head_only);
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut sent = 0;
    while sent < bytes.len() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
        stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
        match stream.write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.flush()
}

/// How long closing may wait for the client to finish sending.
const LINGER: Duration = Duration::from_millis(200);

/// Half-closes and reads what the client still sends (a body we ignored),
/// for at most [`LINGER`] in all, so that closing does not reset the
/// connection before the client has read the answer.
fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < 256 * 1024 {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}
