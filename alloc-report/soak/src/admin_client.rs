//! A client of the alloc-admin endpoint (`ureq`): one request per
//! connection (`Connection: close`, nothing kept alive), whether the routes
//! have a port of their own or are nested in the server's router.
//!
//! **Busy endpoints.** An answer `503` (the endpoint refusing while other
//! clients hold it), a timeout (10 s an attempt) or a connection reset is
//! retried with jittered exponential backoff (from 100 ms, doubling, at
//! most 5 s a wait) for up to [`DEFAULT_RETRY_FOR`] in all per call
//! ([`AdminClient::retry_for`]); each retry prints a line on standard
//! error, and giving up names the call, the attempts and the last answer.
//! Anything else (a refused connection, another status, a bad body) fails
//! at once. A `POST /epoch` that timed out may have been done: its retry
//! then closes one more epoch, holding what the program allocated between
//! the two (at quiescence, nothing of the cycles'); the analysis counts
//! survivors by birth epoch, so an extra epoch moves no figure.
//!
//! **Bounded bodies.** A body over [`MAX_BODY_BYTES`] is refused: from its
//! `Content-Length` before any of it is read, and otherwise as soon as the
//! bytes read pass the bound, so the client holds at most that much.
//!
//! **Token.** With [`AdminClient::token`], every request carries
//! `Authorization: Bearer <token>`.

use crate::SoakError;
use alloc_snapshot::file::{decode, SnapshotFile};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The largest response body accepted: 64 MiB. `/snapshot` serves raw
/// stacks (function names are resolved by the reader), and `alloc-core`'s
/// tables bound such a snapshot to about 34 MB: 8,192 stacks of at most 32
/// addresses and at most 262,144 sampled records, summed per stack and
/// epoch (the file of a synthetic snapshot at those bounds). Every other route
/// answers a few bytes.
pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// How long one call keeps retrying a busy or silent endpoint by default.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(30);

/// The longest one attempt may take (connect, answer and body).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait before a retry, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A snapshot as `/snapshot` served it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReceivedSnapshot {
    /// The snapshot file the bytes hold.
    pub file: SnapshotFile,
    /// The bytes served: a snapshot file in the current format
    /// (`alloc_snapshot::file::encode`), that `decode` accepted.
    pub bytes: Vec<u8>,
}

/// The admin endpoint of one server.
#[derive(Clone, Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    /// Where the routes are mounted (`""` on the endpoint's own port,
    /// `/admin` when nested in the server's router).
    prefix: String,
    agent: ureq::Agent,
    /// Sent as `Authorization: Bearer <token>` when set.
    token: Option<String>,
    /// How long one call keeps retrying.
    retry_for: Duration,
}

/// Why one attempt failed: worth another try, or not.
enum Failure {
    /// Busy (503), a timeout or a reset: try again after a wait.
    Retry(String),
    /// Anything else.
    Fatal(String),
}

impl AdminClient {
    /// A client of the endpoint at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient::with_prefix(addr, "")
    }

    /// A client of routes mounted under `prefix` (`/admin`) at `addr`.
    pub fn with_prefix(addr: SocketAddr, prefix: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            // A status is an answer to report, not a transport error.
            .http_status_as_error(false)
            // No kept-alive connection: the server counts open
            // connections, and the quiescence wait must not see ours.
            .max_idle_connections(0)
            .build();
        AdminClient {
            addr,
            prefix: prefix.trim_end_matches('/').to_string(),
            agent: config.into(),
            token: None,
            retry_for: DEFAULT_RETRY_FOR,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request (none
    /// with `None`).
    #[must_use]
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// How long one call keeps retrying a busy or silent endpoint
    /// ([`DEFAULT_RETRY_FOR`] unless set; zero: one attempt).
    #[must_use]
    pub fn retry_for(mut self, limit: Duration) -> Self {
        self.retry_for = limit;
        self
    }

    /// Sends one request (`GET` or `POST`, no body), retrying while the
    /// endpoint is busy or silent (see the module docs); returns the
    /// status and the body.
    pub fn request(&self, method: &str, target: &str) -> Result<(u16, Vec<u8>), SoakError> {
        let call = format!("admin {} {method} {target}", self.addr);
        let started = Instant::now();
        // Jitter: splitmix64 of a per-call seed, so that soaks started
        // together do not retry in step.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let timeout = ATTEMPT_TIMEOUT
                .min(self.retry_for.saturating_sub(started.elapsed()))
                .max(Duration::from_secs(1));
            let why = match self.attempt(method, target, timeout) {
                Ok(answer) => return Ok(answer),
                Err(Failure::Fatal(e)) => return Err(SoakError::Admin(format!("{call}: {e}"))),
                Err(Failure::Retry(why)) => why,
            };
            // Between half the backoff and all of it.
            let half = backoff.as_micros() as u64 / 2;
            let wait =
                Duration::from_micros(half + crate::template::key(seed ^ attempt) % half.max(1));
            let spent = started.elapsed();
            if spent + wait >= self.retry_for {
                let attempts = if attempt == 1 { "attempt" } else { "attempts" };
                return Err(SoakError::Admin(format!(
                    "{call}: gave up after {attempt} {attempts} in {:.1} s (retries are bounded \
                     by {:.0} s a call): {why}",
                    spent.as_secs_f64(),
                    self.retry_for.as_secs_f64()
                )));
            }
            eprintln!(
                "alloc-soak: {call}: {why}; retry {attempt} in {} ms",
                wait.as_millis()
            );
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// What every request carries: its timeout, `Connection: close`, and
    /// the token.
    fn prepare<B>(&self, r: ureq::RequestBuilder<B>, timeout: Duration) -> ureq::RequestBuilder<B> {
        let r = r
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Connection", "close");
        match &self.token {
            Some(t) => r.header("Authorization", format!("Bearer {t}")),
            None => r,
        }
    }

    /// One attempt of [`AdminClient::request`], of at most `timeout`.
    fn attempt(
        &self,
        method: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let url = format!("http://{}{}{target}", self.addr, self.prefix);
        let response = match method {
            "GET" => self.prepare(self.agent.get(&url), timeout).call(),
            "POST" => self.prepare(self.agent.post(&url), timeout).send_empty(),
            other => return Err(Failure::Fatal(format!("{other}: only GET and POST"))),
        };
        let mut response = response.map_err(classify)?;
        let status = response.status().as_u16();
        if let Some(n) = response.body().content_length() {
            if n > MAX_BODY_BYTES {
                return Err(Failure::Fatal(format!(
                    "status {status} with a body of {n} bytes (Content-Length), over the \
                     {} MiB an answer may have; refused unread",
                    MAX_BODY_BYTES >> 20
                )));
            }
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Failure::Fatal(format!(
                    "status {status} with a body past the {} MiB an answer may have; \
                     refused after reading that much",
                    MAX_BODY_BYTES >> 20
                )),
                other => classify(other),
            })?;
        if status == 503 {
            return Err(Failure::Retry(format!(
                "status 503: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            )));
        }
        Ok((status, body))
    }

    fn ok(&self, method: &str, target: &str) -> Result<Vec<u8>, SoakError> {
        let (status, body) = self.request(method, target)?;
        if status != 200 {
            return Err(SoakError::Admin(format!(
                "admin {} {method} {target}: status {status}: {}",
                self.addr,
                String::from_utf8_lossy(&body).trim()
            )));
        }
        Ok(body)
    }

    fn number(&self, method: &str, target: &str, field: &str) -> Result<u64, SoakError> {
        let body = self.ok(method, target)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| SoakError::Admin(format!("admin {method} {target}: not JSON: {e}")))?;
        v[field].as_u64().ok_or_else(|| {
            SoakError::Admin(format!(
                "admin {method} {target}: no number '{field}' in {v}"
            ))
        })
    }

    /// The server's open connections.
    pub fn open_connections(&self) -> Result<u64, SoakError> {
        self.number("GET", "/connections", "open")
    }

    /// Closes the current epoch; returns the new one.
    pub fn advance_epoch(&self) -> Result<u64, SoakError> {
        self.number("POST", "/epoch", "epoch")
    }

    /// A snapshot, with `cycles` written into it: the bytes the endpoint
    /// served (a whole snapshot file) and what they decode to, checked
    /// once here.
    pub fn snapshot(&self, cycles: Option<u64>) -> Result<ReceivedSnapshot, SoakError> {
        self.snapshot_with(cycles, false)
    }

    /// [`AdminClient::snapshot`], with a retention scan when `retention`
    /// (`/snapshot?retention=1`: what holds each sampled survivor).
    pub fn snapshot_with(
        &self,
        cycles: Option<u64>,
        retention: bool,
    ) -> Result<ReceivedSnapshot, SoakError> {
        let mut target = match cycles {
            Some(n) => format!("/snapshot?cycles={n}"),
            None => "/snapshot".to_string(),
        };
        if retention {
            target.push(if cycles.is_some() { '&' } else { '?' });
            target.push_str("retention=1");
        }
        let bytes = self.ok("GET", &target)?;
        let file = decode(&bytes).map_err(|e| SoakError::Admin(format!("admin {target}: {e}")))?;
        Ok(ReceivedSnapshot { file, bytes })
    }

    /// Waits until the open connections equal `baseline`; fails after
    /// `timeout`.
    pub fn wait_for_connections(&self, baseline: u64, timeout: Duration) -> Result<(), SoakError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            let open = self.open_connections()?;
            if open == baseline {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(SoakError::NotQuiescent {
                    open,
                    baseline,
                    timeout,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Whether a transport error is worth another attempt: a timeout or a
/// connection the endpoint dropped, not a refused connection.
fn classify(e: ureq::Error) -> Failure {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match &e {
        ureq::Error::Timeout(_) => Failure::Retry(e.to_string()),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) =>
        {
            Failure::Retry(e.to_string())
        }
        _ => Failure::Fatal(e.to_string()),
    }
}
