//! `cycle`: a [`Connection`] owns its [`ConnectionHandler`], and the handler
//! holds the connection back with a strong `Arc`. When the server drops its
//! handle, each still keeps the other's count above zero, so neither is ever
//! freed (Python frees such a cycle in a slow older-generation GC pass; Rust
//! never does).
//!
//! Fixed: the handler's back reference is a `Weak` (the write-up's
//! `weakref.proxy`), upgraded for the moment it is used.
//!
//! **True figure (leaky, 64-bit): 1024 bytes in 4 blocks per connection**:
//! the `Arc<Connection>` (16 + 96 = 112 bytes), its 512-byte inbox, the
//! `Arc<ConnectionHandler>` (16 + 56 = 72) and its 328-byte scratch buffer.

use super::{ConnInfo, ConnectionState, Journal};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

/// Bytes and blocks one connection leaks in the leaky variant.
pub const LEAK_PER_CONNECTION: (f64, f64) = (1024.0, 4.0);

const INBOX: usize = 512;
const SCRATCH: usize = 328;

/// One client connection, as the server's logic sees it.
pub struct Connection {
    #[allow(dead_code)] // kept for whoever inspects a connection
    id: u64,
    #[allow(dead_code)]
    peer: SocketAddr,
    inbox: Journal,
    handler: Mutex<Option<Arc<ConnectionHandler>>>,
}

/// How the handler refers back to its connection.
enum Back {
    /// The leak: the handler keeps the connection alive.
    Strong(Arc<Connection>),
    /// The fix: the handler can reach the connection while it lives.
    Weak(Weak<Connection>),
}

/// Handles a connection's requests; needs to reach the connection.
pub struct ConnectionHandler {
    conn: Back,
    scratch: Journal,
}

impl ConnectionHandler {
    fn handle(&self, command: &str) {
        let conn = match &self.conn {
            Back::Strong(c) => Some(Arc::clone(c)),
            Back::Weak(w) => w.upgrade(),
        };
        if let Some(conn) = conn {
            conn.inbox.record(&[command]);
        }
        self.scratch.record(&[command]);
    }
}

/// The server's handle on a connection for its lifetime.
struct Session(Arc<Connection>);

impl ConnectionState for Session {
    fn on_request(&mut self, command: &str) {
        let handler = self.0.handler.lock().ok().and_then(|h| h.clone());
        if let Some(h) = handler {
            h.handle(command);
        }
    }
}

/// Creates a connection and its handler, the handler pointing back strongly
/// (leaky) or weakly (fixed).
pub(crate) fn open(leaky: bool, info: ConnInfo) -> Box<dyn ConnectionState> {
    let conn = Arc::new(Connection {
        id: info.id,
        peer: info.peer,
        inbox: Journal::new(Vec::with_capacity(INBOX)),
        handler: Mutex::new(None),
    });
    let back = if leaky {
        Back::Strong(Arc::clone(&conn))
    } else {
        Back::Weak(Arc::downgrade(&conn))
    };
    let handler = Arc::new(ConnectionHandler {
        conn: back,
        scratch: Journal::new(Vec::with_capacity(SCRATCH)),
    });
    if let Ok(mut h) = conn.handler.lock() {
        *h = Some(handler);
    }
    Box::new(Session(conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_figure_is_the_layout() {
        let counts = 2 * std::mem::size_of::<usize>();
        let conn = counts + std::mem::size_of::<Connection>();
        let handler = counts + std::mem::size_of::<ConnectionHandler>();
        assert_eq!((conn, handler), (112, 72));
        assert_eq!(
            LEAK_PER_CONNECTION,
            ((conn + INBOX + handler + SCRATCH) as f64, 4.0)
        );
    }
}
