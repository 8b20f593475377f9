//! `none`: no leak, but a bounded cache. Each connection stores an entry
//! (its peer and a 512-byte value) in a direct-mapped cache of
//! [`SLOTS`] slots, replacing the entry that held the slot. The cache fills
//! during the first 256 connections and then holds: survivors rise and stop,
//! which the report must call `plateau`, not `leak`.
//!
//! There is nothing to fix, so both variants are this same cache; the demo
//! runs it once, as `fixed`.
//!
//! **True figure: 0 bytes per cycle** once full; the plateau is 256 ×
//! (64 + 512) = 147,456 bytes in 512 blocks (64-bit).

use super::{append_bounded, ConnInfo, ConnectionState};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

/// Slots of the cache.
pub const SLOTS: usize = 256;
/// Capacity of an entry's value.
const VALUE: usize = 512;

/// One cached entry.
pub struct Entry {
    #[allow(dead_code)] // what a cache lookup would compare
    key: u64,
    #[allow(dead_code)]
    peer: SocketAddr,
    value: Vec<u8>,
}

/// The cache: `SLOTS` slots, created by [`init`].
static CACHE: Mutex<Vec<Option<Box<Entry>>>> = Mutex::new(Vec::new());

fn cache() -> MutexGuard<'static, Vec<Option<Box<Entry>>>> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the cache's slots (before the first snapshot of a soak).
pub(crate) fn init() {
    let mut c = cache();
    c.clear();
    c.resize_with(SLOTS, || None);
}

/// Entries in the cache now.
pub fn cached_now() -> usize {
    cache().iter().filter(|e| e.is_some()).count()
}

/// A connection's handle on its slot.
struct Cached {
    slot: usize,
    key: u64,
}

impl ConnectionState for Cached {
    fn on_request(&mut self, command: &str) {
        let mut c = cache();
        if let Some(Some(e)) = c.get_mut(self.slot) {
            if e.key == self.key {
                append_bounded(&mut e.value, command);
            }
        }
    }
}

/// Caches an entry for a new connection, evicting the slot's old one.
pub(crate) fn open(info: ConnInfo) -> Box<dyn ConnectionState> {
    let slot = (info.id % SLOTS as u64) as usize;
    let entry = Box::new(Entry {
        key: info.id,
        peer: info.peer,
        value: Vec::with_capacity(VALUE),
    });
    let mut c = cache();
    if let Some(s) = c.get_mut(slot) {
        // The evicted entry is freed here, after the lock is taken.
        *s = Some(entry);
    }
    Box::new(Cached { slot, key: info.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_plateau_is_the_layout() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }
}
