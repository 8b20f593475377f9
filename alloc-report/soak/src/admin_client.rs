//! A client of the alloc-admin endpoint (`ureq`): one request per
//! connection (`Connection: close`, nothing kept alive), whether the routes
//! have a port of their own or are nested in the server's router.

use alloc_snapshot::file::{decode, SnapshotFile};
use std::net::SocketAddr;
use std::time::Duration;

/// The largest response accepted (a snapshot with many call sites).
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;

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
}

impl AdminClient {
    /// A client of the endpoint at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        AdminClient::with_prefix(addr, "")
    }

    /// A client of routes mounted under `prefix` (`/admin`) at `addr`.
    pub fn with_prefix(addr: SocketAddr, prefix: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
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
        }
    }

    /// Sends one request (`GET` or `POST`, no body); returns the status
    /// and the body.
    pub fn request(&self, method: &str, target: &str) -> Result<(u16, Vec<u8>), String> {
        let url = format!("http://{}{}{target}", self.addr, self.prefix);
        let fail = |e: ureq::Error| format!("admin {} {method} {target}: {e}", self.addr);
        let response = match method {
            "GET" => self.agent.get(&url).header("Connection", "close").call(),
            "POST" => self
                .agent
                .post(&url)
                .header("Connection", "close")
                .send_empty(),
            other => return Err(format!("admin {other} {target}: only GET and POST")),
        };
        let mut response = response.map_err(fail)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(fail)?;
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

    /// A snapshot, with `cycles` written into it: the bytes the endpoint
    /// served (a whole snapshot file) and what they decode to, checked
    /// once here.
    pub fn snapshot(&self, cycles: Option<u64>) -> Result<ReceivedSnapshot, String> {
        self.snapshot_with(cycles, false)
    }

    /// [`AdminClient::snapshot`], with a retention scan when `retention`
    /// (`/snapshot?retention=1`: what holds each sampled survivor).
    pub fn snapshot_with(
        &self,
        cycles: Option<u64>,
        retention: bool,
    ) -> Result<ReceivedSnapshot, String> {
        let mut target = match cycles {
            Some(n) => format!("/snapshot?cycles={n}"),
            None => "/snapshot".to_string(),
        };
        if retention {
            target.push(if cycles.is_some() { '&' } else { '?' });
            target.push_str("retention=1");
        }
        let bytes = self.ok("GET", &target)?;
        let file = decode(&bytes).map_err(|e| format!("admin {target}: {e}"))?;
        Ok(ReceivedSnapshot { file, bytes })
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
