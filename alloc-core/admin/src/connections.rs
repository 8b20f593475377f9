//! Counting the program's open connections for the soak's quiescence wait,
//! without an atomic of the program's own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A count of open connections: hand a clone to
/// [`Admin::connections`](crate::Admin::connections) and hold a
/// [`ConnectionGuard`] from [`Connections::open`] for as long as the
/// program holds a connection's state (from accept until its last buffer
/// is dropped). With axum, `alloc_admin::axum::CountingListener` does this
/// for every accepted connection.
#[derive(Clone, Debug, Default)]
pub struct Connections(Arc<AtomicU64>);

impl Connections {
    /// A count at zero.
    #[must_use]
    pub fn new() -> Self {
        Connections::default()
    }

    /// Counts one more open connection until the guard is dropped.
    #[must_use = "the connection counts as open only while the guard lives"]
    pub fn open(&self) -> ConnectionGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(self.clone())
    }

    /// The connections open now.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One open connection of a [`Connections`] count; dropping it closes it.
#[derive(Debug)]
pub struct ConnectionGuard(Connections);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::Connections;

    #[test]
    fn guards_count_while_they_live() {
        let c = Connections::new();
        let a = c.open();
        let b = c.clone().open();
        assert_eq!(c.count(), 2);
        drop(a);
        assert_eq!(c.count(), 1);
        drop(b);
        assert_eq!(c.count(), 0);
    }
}
