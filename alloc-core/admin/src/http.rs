//! Reading one HTTP/1.x request head (parsed by `httparse`) and writing one
//! response, with every limit that keeps a hostile client from hurting the
//! program: head size, header count, time.

use crate::State;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head read; larger gets 431.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers parsed; more gets 431.
const MAX_HEADERS: usize = 32;
/// The largest request body read (`/debug/pprof/symbol` takes a list of
/// addresses); larger gets 413.
const MAX_BODY: usize = 1024 * 1024;
/// How long a client may take to send its request head (and its body).
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writing the answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One parsed request: only what the routes need.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    /// The body, as long as `Content-Length` said (at most [`MAX_BODY`]).
    pub(crate) body: Vec<u8>,
}

/// One response; every response closes its connection.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// `Allow` for 405 answers.
    pub(crate) allow: Option<&'static str>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type,
            body,
            allow: None,
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    pub(crate) fn json(body: String) -> Self {
        Response::new(200, "application/json", body.into_bytes())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

/// Why no request could be read.
enum ReadProblem {
    /// The client closed (or reset) before sending a byte: nothing to answer.
    Gone,
    /// Answer with this status and message.
    Answer(u16, String),
}

/// Answers one connection: reads a request head, routes it, writes the
/// answer, closes.
pub(crate) fn serve_one(mut stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (response, head_only) = match read_request(&mut stream) {
        Ok(req) => (crate::routes::route(&req, state), req.method == "HEAD"),
        Err(ReadProblem::Gone) => return,
        Err(ReadProblem::Answer(status, msg)) => (Response::text(status, msg + "\n"), false),
    };
    if write_response(&mut stream, &response, head_only).is_ok() {
        linger_close(&mut stream);
    }
}

/// The answer when every worker is busy and the queue is full.
pub(crate) fn busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = write_response(
        &mut stream,
        &Response::text(503, "busy: too many admin requests at once\n"),
        false,
    );
}

fn read_request(stream: &mut TcpStream) -> Result<Request, ReadProblem> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(ReadProblem::Answer(
                431,
                format!("request head larger than {MAX_HEAD} bytes"),
            ));
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) if len == 0 => return Err(ReadProblem::Gone),
            Ok(0) => {
                return Err(ReadProblem::Answer(
                    400,
                    "the request ended before its head was complete".to_string(),
                ))
            }
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if len == 0 {
                    return Err(ReadProblem::Gone);
                }
                return Err(ReadProblem::Answer(
                    408,
                    "the request head did not arrive in time".to_string(),
                ));
            }
            Err(_) => return Err(ReadProblem::Gone),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_string();
                let target = req.path.unwrap_or("");
                if req.version != Some(1) && req.version != Some(0) {
                    return Err(ReadProblem::Answer(505, "HTTP/1.x only".to_string()));
                }
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), Some(q.to_string())),
                    None => (target.to_string(), None),
                };
                let length = content_length(req.headers)?;
                let body = read_body(stream, &buf[head_len..len], length, deadline)?;
                return Ok(Request {
                    method,
                    path,
                    query,
                    body,
                });
            }
            Ok(httparse::Status::Partial) => {
                if Instant::now() > deadline {
                    return Err(ReadProblem::Answer(
                        408,
                        "the request head did not arrive in time".to_string(),
                    ));
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadProblem::Answer(
                    431,
                    format!("more than {MAX_HEADERS} headers"),
                ))
            }
            Err(e) => return Err(ReadProblem::Answer(400, format!("malformed request: {e}"))),
        }
    }
}

/// The request's `Content-Length` (0 without one); 400 if it is not a
/// number, 413 beyond [`MAX_BODY`], 501 for chunked bodies.
fn content_length(headers: &[httparse::Header<'_>]) -> Result<usize, ReadProblem> {
    let mut length = 0;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadProblem::Answer(
                501,
                "chunked request bodies are not supported".to_string(),
            ));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| ReadProblem::Answer(400, "bad Content-Length".to_string()))?;
        }
    }
    if length > MAX_BODY {
        return Err(ReadProblem::Answer(
            413,
            format!("request body larger than {MAX_BODY} bytes"),
        ));
    }
    Ok(length)
}

/// The body: `already` (read with the head) and the rest, up to `length`
/// bytes, before `deadline`.
fn read_body(
    stream: &mut TcpStream,
    already: &[u8],
    length: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadProblem> {
    let mut body = already[..already.len().min(length)].to_vec();
    body.resize(length, 0);
    let mut got = already.len().min(length);
    while got < length {
        match stream.read(&mut body[got..]) {
            Ok(0) => {
                return Err(ReadProblem::Answer(
                    400,
                    "the request ended before its body was complete".to_string(),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                return Err(ReadProblem::Answer(
                    408,
                    "the request body did not arrive in time".to_string(),
                ))
            }
        }
        if Instant::now() > deadline {
            return Err(ReadProblem::Answer(
                408,
                "the request body did not arrive in time".to_string(),
            ));
        }
    }
    Ok(body)
}

fn write_response(stream: &mut TcpStream, r: &Response, head_only: bool) -> io::Result<()> {
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
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}

/// Half-closes and reads what the client still sends (a body we ignored),
/// briefly, so that closing does not reset the connection before the client
/// has read the answer.
fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < 256 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}
