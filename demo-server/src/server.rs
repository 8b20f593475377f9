//! A line-protocol TCP server on loopback, one connection at a time.
//!
//! Protocol: the server greets with `hello <id>`; the client sends lines
//! `set KEY VALUE`, `get KEY` or `quit`; the server answers each with one line.
//! Every connection gets a [`Connection`] (a read buffer, a session map, the
//! peer's name) that the active pattern may keep, leak or release.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Per-connection state.
pub(crate) struct Connection {
    pub(crate) id: usize,
    pub(crate) peer: String,
    pub(crate) session: Mutex<HashMap<String, String>>,
    pub(crate) buffer: Mutex<Vec<u8>>,
}

/// Connections whose state has not been dropped yet.
pub(crate) static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Serves connections until the listener fails; `on_connect` returns a value
/// held for the connection's life and dropped when it ends.
pub(crate) fn serve<G>(listener: TcpListener, on_connect: impl Fn(Arc<Connection>) -> G) {
    let mut next_id = 0usize;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        OPEN.fetch_add(1, Ordering::SeqCst);
        next_id += 1;
        {
            let conn = Arc::new(Connection {
                id: next_id,
                peer: stream
                    .peer_addr()
                    .map_or_else(|_| "unknown".to_string(), |a| a.to_string()),
                session: Mutex::new(HashMap::new()),
                buffer: Mutex::new(Vec::with_capacity(1024)),
            });
            let held = on_connect(Arc::clone(&conn));
            // A broken client only ends its own connection.
            let _ = handle(&conn, stream);
            drop(held);
        }
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle(conn: &Connection, stream: TcpStream) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    writeln!(out, "hello {} {}", conn.id, conn.peer)?;
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if let Ok(mut b) = conn.buffer.lock() {
            b.clear();
            b.extend_from_slice(line.as_bytes());
        }
        let mut words = line.split_whitespace();
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("set"), Some(k), Some(v)) => {
                if let Ok(mut s) = conn.session.lock() {
                    s.insert(k.to_string(), v.to_string());
                }
                "ok".to_string()
            }
            (Some("get"), Some(k), None) => conn
                .session
                .lock()
                .ok()
                .and_then(|s| s.get(k).cloned())
                .unwrap_or_else(|| "none".to_string()),
            (Some("quit"), None, None) => return Ok(()),
            _ => "error unknown command".to_string(),
        };
        writeln!(out, "{reply}")?;
    }
}

/// One client cycle: connect, greet, set, get, quit.
pub(crate) fn client_cycle(addr: std::net::SocketAddr, n: u32) -> std::io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    write!(out, "set user u{n}\nget user\nquit\n")?;
    for _ in 0..2 {
        line.clear();
        reader.read_line(&mut line)?;
    }
    Ok(())
}
