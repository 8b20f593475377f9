//! `global-list`: every connection is registered in a process-wide list
//! "for tracking" (the write-up's module-level `_CONNECTIONS`), and nothing
//! ever takes it out again, so each connection's record lives until exit.
//!
//! Fixed: the connection holds a [`Registered`] guard whose `Drop` removes
//! the record from the list, however the connection ends (the write-up's
//! `finally`; in Rust a guard also covers early returns and panics).
//!
//! **True figure (leaky, 64-bit): 1136 bytes in 2 blocks per connection**:
//! the `Arc<Tracked>` (16 bytes of counts + 96 of [`Tracked`] = 112) and its
//! 1024-byte command history. The list's own 8-byte slot per connection
//! comes on top, in steps: the list grows by `realloc`, which moves it to
//! the epoch in which it grew, so each doubling of its capacity counts as
//! survivors of that epoch (about 8 bytes per connection amortised).

use super::{ConnInfo, ConnectionState, Journal};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Bytes and blocks one connection leaks in the leaky variant.
pub const LEAK_PER_CONNECTION: (f64, f64) = (1136.0, 2.0);

/// Capacity of a record's command history.
const HISTORY: usize = 1024;

/// What the server tracks about a connection.
pub struct Tracked {
    id: u64,
    #[allow(dead_code)] // kept for whoever inspects the list
    peer: SocketAddr,
    #[allow(dead_code)]
    opened: Instant,
    history: Journal,
}

/// Every connection ever opened (leaky) or currently open (fixed).
static CONNECTIONS: Mutex<Vec<Arc<Tracked>>> = Mutex::new(Vec::new());

fn connections() -> MutexGuard<'static, Vec<Arc<Tracked>>> {
    // The list stays consistent if a holder panicked: take it anyway.
    CONNECTIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the list (before the first snapshot of a soak).
pub(crate) fn init() {
    connections().reserve(1024);
}

/// Connections on the list now.
pub fn tracked_now() -> usize {
    connections().len()
}

/// The leaky variant's state: a second handle on the record the list keeps.
struct Leaky(Arc<Tracked>);

/// The fixed variant's state: removes its record from the list when dropped.
pub struct Registered(Arc<Tracked>);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut list = connections();
        if let Some(i) = list.iter().position(|t| t.id == self.0.id) {
            list.swap_remove(i);
        }
    }
}

fn touch(t: &Tracked, command: &str) {
    t.history.record(&[command]);
}

impl ConnectionState for Leaky {
    fn on_request(&mut self, command: &str) {
        touch(&self.0, command);
    }
}

impl ConnectionState for Registered {
    fn on_request(&mut self, command: &str) {
        touch(&self.0, command);
    }
}

/// Registers a new connection: the record goes on the list in both variants;
/// only the fixed one takes it off again.
pub(crate) fn open(leaky: bool, info: ConnInfo) -> Box<dyn ConnectionState> {
    let tracked = Arc::new(Tracked {
        id: info.id,
        peer: info.peer,
        opened: Instant::now(),
        history: Journal::new(Vec::with_capacity(HISTORY)),
    });
    connections().push(Arc::clone(&tracked));
    if leaky {
        Box::new(Leaky(tracked))
    } else {
        Box::new(Registered(tracked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_figure_is_the_layout() {
        let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Tracked>();
        assert_eq!(arc, 112);
        assert_eq!(LEAK_PER_CONNECTION, ((arc + HISTORY) as f64, 2.0));
    }
}
