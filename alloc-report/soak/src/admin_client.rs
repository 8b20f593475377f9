//! A client of the alloc-admin endpoint: one request per connection
//! (`Connection: close`), the response parsed by `httparse`.

use alloc_snapshot::file::{decode, SnapshotFile};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The largest response accepted (a snapshot with many call sites).
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;

/// The admin endpoint of one server.
#[derive(Clone, Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    /// Where the routes are mounted (`""` on the endpoint's own port,
    /// `/admin` when nested in the server's router).
    prefix: String,
    timeout: Duration,
}

impl AdminClient {
    /// A client of the endpoint at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient {
            addr,
            prefix: String::new(),
            timeout: Duration::from_secs(30),
        }
    }

    /// A client of routes mounted under `prefix` (`/admin`) at `addr`.
    pub fn with_prefix(addr: SocketAddr, prefix: &str) -> Self {
        AdminClient {
            prefix: prefix.trim_end_matches('/').to_string(),
            ..AdminClient::new(addr)
        }
    }

    /// Sends one request; returns the status and the body.
    pub fn request(&self, method: &str, target: &str) -> Result<(u16, Vec<u8>), String> {
        let fail = |what: &str, e: std::io::Error| {
            format!("admin {} {method} {target}: {what}: {e}", self.addr)
        };
        let mut s =
            TcpStream::connect_timeout(&self.addr, self.timeout).map_err(|e| fail("connect", e))?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(|e| fail("socket", e))?;
        s.set_write_timeout(Some(self.timeout))
            .map_err(|e| fail("socket", e))?;
        let req = format!(
            "{method} {}{target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.prefix, self.addr
        );
        s.write_all(req.as_bytes()).map_err(|e| fail("write", e))?;
        let mut raw = Vec::new();
        (&mut s)
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .map_err(|e| fail("read", e))?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(&raw) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err(format!(
                    "admin {} {method} {target}: incomplete response",
                    self.addr
                ))
            }
            Err(e) => {
                return Err(format!(
                    "admin {} {method} {target}: bad response: {e}",
                    self.addr
                ))
            }
        };
        let status = resp.code.unwrap_or(0);
        let length = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            });
        let body = raw.split_off(head);
        if let Some(len) = length {
            if body.len() != len {
                return Err(format!(
                    "admin {} {method} {target}: body of {} bytes, Content-Length {len}",
                    self.addr,
                    body.len()
                ));
            }
        }
        Ok((status, body))
    }

    fn ok(&self, method: &str, target: &str) -> Result<Vec<u8>, String> {
        let (status, body) = self.request(method, target)?;
        if status != 200 {
            return Err(format!(
                "admin {} {method} {target}: status {status}: {}",
                self.addr,
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(body)
    }

    fn number(&self, method: &str, target: &str, field: &str) -> Result<u64, String> {
        let body = self.ok(method, target)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("admin {method} {target}: not JSON: {e}"))?;
        v[field]
            .as_u64()
            .ok_or_else(|| format!("admin {method} {target}: no number '{field}' in {v}"))
    }

    /// The server's open connections.
    pub fn open_connections(&self) -> Result<u64, String> {
        self.number("GET", "/connections", "open")
    }

    /// Closes the current epoch; returns the new one.
    pub fn advance_epoch(&self) -> Result<u64, String> {
        self.number("POST", "/epoch", "epoch")
    }

    /// A snapshot, with `cycles` written into it.
    pub fn snapshot(&self, cycles: Option<u64>) -> Result<SnapshotFile, String> {
        let target = match cycles {
            Some(n) => format!("/snapshot?cycles={n}"),
            None => "/snapshot".to_string(),
        };
        let body = self.ok("GET", &target)?;
        decode(&body).map_err(|e| format!("admin {target}: {e}"))
    }

    /// Waits until the open connections equal `baseline`; fails after
    /// `timeout`.
    pub fn wait_for_connections(&self, baseline: u64, timeout: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            let open = self.open_connections()?;
            if open == baseline {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "the server still has {open} open connections, not {baseline}, after {timeout:?}"
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
