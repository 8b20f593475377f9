//! The leak patterns of the original write-up, one module each, with the
//! leaky and the fixed variant side by side.
//!
//! | pattern | leaky | fixed | true figure (leaky, 64-bit) |
//! |---|---|---|---|
//! | [`global_list`] | every connection is pushed on a process-wide list and never removed | a guard whose `Drop` removes it | 1136 bytes, 2 blocks |
//! | [`cycle`] | `Connection` ⇄ `ConnectionHandler` hold each other with `Arc` | the handler's back reference is `Weak` | 1024 bytes, 4 blocks |
//! | [`logger_registry`] | a logger per connection, created by name in a global registry | one logger with the peer as a field | about 686 bytes, 4.17 blocks (624 exact + B-tree nodes) |
//! | [`none`] | no leak: a bounded cache that fills, then holds (`plateau`) | the same | 0 per cycle |
//!
//! Each pattern allocates what it keeps in its own module, so the call site
//! that a report names is in that module's file. What the server itself
//! allocates per connection (`crate::server`) is freed when the connection
//! ends, in every variant.
//!
//! A pattern's process-wide containers are created by `init`, before the
//! soak's first snapshot. A container that grows later (a `Vec` pushed on)
//! grows by `realloc`, which moves the block to the epoch in which it grew
//! (alloc-core's rule), so its growth counts too, in steps: the leaky
//! `global_list` holds about 8 bytes per connection in its list on top of
//! the per-connection objects.

pub mod cycle;
pub mod global_list;
pub mod logger_registry;
pub mod none;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Which leak pattern the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pattern {
    /// Connections registered in a process-wide list.
    GlobalList,
    /// A strong reference cycle between a connection and its handler.
    Cycle,
    /// A per-connection logger kept by a global registry.
    LoggerRegistry,
    /// No leak: a bounded cache (the report says `plateau`).
    None,
}

impl Pattern {
    /// Every pattern, in the demo's order.
    pub const ALL: [Pattern; 4] = [
        Pattern::GlobalList,
        Pattern::Cycle,
        Pattern::LoggerRegistry,
        Pattern::None,
    ];

    /// The pattern's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::GlobalList => "global-list",
            Pattern::Cycle => "cycle",
            Pattern::LoggerRegistry => "logger-registry",
            Pattern::None => "none",
        }
    }

    /// The variants worth running: `none` has no leak to fix, so its one run
    /// is its `fixed` variant (both variants are the same bounded cache).
    pub fn variants(self) -> &'static [Variant] {
        match self {
            Pattern::None => &[Variant::Fixed],
            _ => &[Variant::Leaky, Variant::Fixed],
        }
    }

    /// The source file of the pattern's module, as the symboliser names it
    /// (relative to the workspace root).
    pub fn source_file(self) -> &'static str {
        match self {
            Pattern::GlobalList => "demo-server/src/patterns/global_list.rs",
            Pattern::Cycle => "demo-server/src/patterns/cycle.rs",
            Pattern::LoggerRegistry => "demo-server/src/patterns/logger_registry.rs",
            Pattern::None => "demo-server/src/patterns/none.rs",
        }
    }

    /// The bytes and blocks one connection leaks in the leaky variant (the
    /// figure in the module's docs), or `None` for `none`.
    pub fn true_leak_per_connection(self) -> Option<(f64, f64)> {
        match self {
            Pattern::GlobalList => Some(global_list::LEAK_PER_CONNECTION),
            Pattern::Cycle => Some(cycle::LEAK_PER_CONNECTION),
            Pattern::LoggerRegistry => Some(logger_registry::LEAK_PER_CONNECTION),
            Pattern::None => None,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The leaky or the fixed variant of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The pattern as the write-up found it.
    Leaky,
    /// The pattern with the write-up's fix.
    Fixed,
}

impl Variant {
    /// `leaky` or `fixed`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Leaky => "leaky",
            Variant::Fixed => "fixed",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server knows about a new connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnInfo {
    /// A number unique in this process, from 1.
    pub(crate) id: u64,
    /// The client's address.
    pub(crate) peer: SocketAddr,
}

/// What a pattern holds for one connection; the server drops it when the
/// connection ends, however it ends.
pub(crate) trait ConnectionState {
    /// Called with each request line the server answers.
    fn on_request(&mut self, command: &str);
}

/// Creates the pattern's process-wide state. Called once, before the first
/// connection.
pub(crate) fn init(pattern: Pattern) {
    match pattern {
        Pattern::GlobalList => global_list::init(),
        Pattern::Cycle => {}
        Pattern::LoggerRegistry => logger_registry::init(),
        Pattern::None => none::init(),
    }
}

/// The pattern's state for a new connection.
pub(crate) fn open(pattern: Pattern, variant: Variant, info: ConnInfo) -> Box<dyn ConnectionState> {
    let leaky = variant == Variant::Leaky;
    match pattern {
        Pattern::GlobalList => global_list::open(leaky, info),
        Pattern::Cycle => cycle::open(leaky, info),
        Pattern::LoggerRegistry => logger_registry::open(leaky, info),
        Pattern::None => none::open(info),
    }
}

/// What the patterns' per-connection objects keep of their requests: how
/// many, and the latest in a buffer whose capacity is fixed when it is made
/// ([`append_bounded`]).
pub(crate) struct Journal {
    count: AtomicU64,
    latest: Mutex<Vec<u8>>,
}

impl Journal {
    /// A journal over `buf`, which the caller allocates
    /// (`Vec::with_capacity`) so that the block is born in the pattern's own
    /// module, its call site.
    pub(crate) fn new(buf: Vec<u8>) -> Self {
        Journal {
            count: AtomicU64::new(0),
            latest: Mutex::new(buf),
        }
    }

    /// Counts one entry and appends its `parts`, each on a line of its own.
    pub(crate) fn record(&self, parts: &[&str]) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut buf) = self.latest.lock() {
            for part in parts {
                append_bounded(&mut buf, part);
            }
        }
    }
}

/// Appends `text` and a newline to `buf` without ever growing it past its
/// capacity (starting over when full), so a buffer's size is fixed when it
/// is created and a pattern's per-connection bytes do not depend on what
/// clients send.
pub(crate) fn append_bounded(buf: &mut Vec<u8>, text: &str) {
    let need = text.len() + 1;
    if need > buf.capacity() {
        return;
    }
    if buf.len() + need > buf.capacity() {
        buf.clear();
    }
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'\n');
}
