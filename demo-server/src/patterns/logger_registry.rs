//! `logger-registry`: each connection asks a global registry for a logger
//! named after it (`get_logger("conn.0000000042")`, like Python's
//! `logging.getLogger(name)`), and the registry keeps every logger it ever
//! made, so it grows by one logger per connection, forever (the write-up's
//! pointer to the logging module).
//!
//! Fixed: one logger for all connections, with the connection as a field of
//! each record ([`LogContext`]), so nothing is created by name per
//! connection.
//!
//! **True figure (leaky, 64-bit): about 686 bytes in 4.17 blocks per
//! connection**: the registry's key (a 24-byte `String` buffer), the
//! `Arc<Logger>` (16 + 64 = 80 bytes), the logger's own copy of its name
//! (24) and its 496-byte line buffer, exactly 624 bytes; plus the
//! registry's B-tree nodes, about 62 bytes and 0.17 blocks per entry: keys
//! arrive in order, so every 368-byte leaf ends up holding 6 of every 7
//! keys (the seventh moves up into a 464-byte internal node, one per 49
//! keys, and so on up). A soak measures 687.6 bytes and 4.17 blocks.

use super::{ConnInfo, ConnectionState, Journal};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Bytes and blocks one connection leaks in the leaky variant: 624 bytes in
/// 4 blocks of its own, plus the registry's B-tree nodes, about 62 bytes and
/// 0.17 blocks per entry (see the module docs).
pub const LEAK_PER_CONNECTION: (f64, f64) = (686.0, 4.17);

/// The length of a logger's name, `conn.` and ten digits.
const NAME: usize = 24;
/// Capacity of a logger's line buffer.
const LINE: usize = 496;

/// A named logger that keeps its last lines.
pub struct Logger {
    #[allow(dead_code)] // what a logging framework would print
    name: String,
    last: Journal,
}

impl Logger {
    fn new(name: String) -> Self {
        Logger {
            name,
            last: Journal::new(Vec::with_capacity(LINE)),
        }
    }

    fn log(&self, prefix: &str, text: &str) {
        self.last.record(&[prefix, text]);
    }
}

/// The process-wide registry of named loggers.
static LOGGERS: Mutex<BTreeMap<String, Arc<Logger>>> = Mutex::new(BTreeMap::new());

fn loggers() -> MutexGuard<'static, BTreeMap<String, Arc<Logger>>> {
    LOGGERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The logger called `name`, created and registered if new: the registry
/// keeps it for the rest of the process.
pub fn get_logger(name: &str) -> Arc<Logger> {
    let mut registry = loggers();
    if let Some(l) = registry.get(name) {
        return Arc::clone(l);
    }
    let mut key = String::with_capacity(NAME);
    key.push_str(name);
    let mut own = String::with_capacity(NAME);
    own.push_str(name);
    let logger = Arc::new(Logger::new(own));
    registry.insert(key, Arc::clone(&logger));
    logger
}

/// Loggers in the registry now.
pub fn registered_now() -> usize {
    loggers().len()
}

/// The one logger of the fixed variant.
fn shared_logger() -> &'static Arc<Logger> {
    static SHARED: OnceLock<Arc<Logger>> = OnceLock::new();
    SHARED.get_or_init(|| get_logger("conn"))
}

/// Creates the shared logger (before the first snapshot of a soak).
pub(crate) fn init() {
    shared_logger();
}

/// The leaky variant's state: the connection's own registered logger.
struct PerConnection {
    logger: Arc<Logger>,
}

impl ConnectionState for PerConnection {
    fn on_request(&mut self, command: &str) {
        self.logger.log("", command);
    }
}

/// The fixed variant's state: the shared logger and the connection as a
/// field of every record.
pub struct LogContext {
    logger: &'static Logger,
    id: u64,
    peer: SocketAddr,
    prefix: String,
}

impl ConnectionState for LogContext {
    fn on_request(&mut self, command: &str) {
        self.prefix.clear();
        let _ = write!(self.prefix, "conn {} {}", self.id, self.peer);
        self.logger.log(&self.prefix, command);
    }
}

/// A logger for a new connection: one made by name (leaky) or the shared
/// one with the connection as context (fixed).
pub(crate) fn open(leaky: bool, info: ConnInfo) -> Box<dyn ConnectionState> {
    if leaky {
        let mut name = String::with_capacity(NAME);
        let _ = write!(name, "conn.{:010}", info.id % 10_000_000_000);
        Box::new(PerConnection {
            logger: get_logger(&name),
        })
    } else {
        Box::new(LogContext {
            logger: shared_logger(),
            id: info.id,
            peer: info.peer,
            prefix: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_part_of_the_documented_figure_is_the_layout() {
        let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Logger>();
        assert_eq!(arc, 80);
        assert_eq!(NAME + arc + NAME + LINE, 624);
        let mut name = String::with_capacity(NAME);
        let _ = write!(name, "conn.{:010}", 9_999_999_999u64);
        assert!(name.len() <= NAME && name.capacity() == NAME, "{name}");
    }
}
