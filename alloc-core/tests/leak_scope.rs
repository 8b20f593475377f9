//! Leak assertions in ordinary unit tests, under the normal (parallel) test
//! harness: `assert_no_leaks` catches an `Rc` cycle between a connection and
//! its handler and passes once the back edge is `Weak`; parallel tests see
//! only their own blocks; threads spawned inside a scope and blocks freed on
//! other threads are handled as documented.
//!
//! The only setup a test crate needs is the global allocator below.

use alloc_core::{assert_no_leaks, track, EpochAlloc, LeakScope};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Barrier;

#[global_allocator]
static GLOBAL: EpochAlloc<alloc_core::Jemalloc> = EpochAlloc::new(alloc_core::Jemalloc);

/// The write-up's server, leaky: the handler holds its connection strongly.
mod leaky {
    use super::*;

    pub(crate) struct Connection {
        pub(crate) peer: String,
        pub(crate) handler: RefCell<Option<Handler>>,
    }

    pub(crate) struct Handler {
        pub(crate) conn: Rc<Connection>,
        pub(crate) buffer: Vec<u8>,
    }

    pub(crate) fn serve(peer: &str) {
        let conn = Rc::new(Connection {
            peer: peer.to_string(),
            handler: RefCell::new(None),
        });
        let handler = Handler {
            conn: Rc::clone(&conn),
            buffer: vec![0; 512],
        };
        *conn.handler.borrow_mut() = Some(handler);
        assert_eq!(conn.handler.borrow().as_ref().unwrap().buffer.len(), 512);
        assert_eq!(conn.handler.borrow().as_ref().unwrap().conn.peer, conn.peer);
    }
}

/// The same, fixed: the back edge is `Weak`.
mod fixed {
    use super::*;

    pub(crate) struct Connection {
        pub(crate) peer: String,
        pub(crate) handler: RefCell<Option<Handler>>,
    }

    pub(crate) struct Handler {
        pub(crate) conn: Weak<Connection>,
        pub(crate) buffer: Vec<u8>,
    }

    pub(crate) fn serve(peer: &str) {
        let conn = Rc::new(Connection {
            peer: peer.to_string(),
            handler: RefCell::new(None),
        });
        let handler = Handler {
            conn: Rc::downgrade(&conn),
            buffer: vec![0; 512],
        };
        *conn.handler.borrow_mut() = Some(handler);
        assert_eq!(conn.handler.borrow().as_ref().unwrap().buffer.len(), 512);
        let back = conn.handler.borrow().as_ref().unwrap().conn.upgrade();
        assert_eq!(back.unwrap().peer, conn.peer);
    }
}

#[test]
fn an_rc_cycle_is_caught_with_its_sites() {
    let ((), survivors) = track(|| leaky::serve("10.0.0.7:4242"));
    // The Rc allocation (connection + handler inline), the peer string and
    // the handler's buffer.
    assert_eq!(survivors.blocks.len(), 3, "{survivors}");
    assert!(survivors.bytes() >= 512 + "10.0.0.7:4242".len());
    for (site, _, _) in survivors.by_site() {
        assert!(site.contains("leak_scope.rs:"), "site {site}");
        assert!(site.contains("leaky::serve"), "site {site}");
    }
    let failure = std::panic::catch_unwind(|| assert_no_leaks(|| leaky::serve("peer")))
        .expect_err("assert_no_leaks must fail on a cycle");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("leak check failed"), "{message}");
    assert!(message.contains("3 block(s)"), "{message}");
    assert!(message.contains("leak_scope.rs:"), "{message}");
}

#[test]
fn the_weak_back_edge_passes() {
    assert_no_leaks(|| fixed::serve("10.0.0.7:4242"));
    for i in 0..100 {
        assert_no_leaks(|| fixed::serve(&format!("peer-{i}")));
    }
}

/// Leaks exactly `n` blocks of an unusual size per call.
fn leak_some(n: usize) {
    for _ in 0..n {
        std::mem::forget(vec![1u8; 4321]);
    }
}

#[test]
fn parallel_scopes_see_only_their_own_blocks() {
    // Four threads at once, synchronised so that their scopes overlap: each
    // leaks a different number of blocks and must see exactly its own. A
    // wrong count is kept, not asserted at once: a thread that panicked
    // would leave the others waiting at the barrier for ever.
    let barrier = Barrier::new(4);
    let wrong: Vec<String> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4usize)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut wrong = Vec::new();
                    for round in 0..25 {
                        barrier.wait();
                        let ((), found) = track(|| {
                            leak_some(t);
                            let noise: Vec<String> = (0..50).map(|i| i.to_string()).collect();
                            drop(noise);
                        });
                        barrier.wait();
                        let own = found.blocks.iter().all(|b| b.size == 4321);
                        if found.blocks.len() != t || !own {
                            wrong.push(format!("thread {t}, round {round}: {found}"));
                        }
                    }
                    wrong
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|h| h.join().expect("a scope thread panicked"))
            .collect()
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs beside the other tests of this file under the harness's threads.
#[test]
fn a_test_that_allocates_a_lot_and_leaks_nothing() {
    for _ in 0..20 {
        assert_no_leaks(|| {
            let v: Vec<Vec<u8>> = (0..200).map(|i| vec![0; i]).collect();
            drop(v);
        });
    }
}

#[test]
fn blocks_of_spawned_threads_are_not_recorded() {
    let ((), found) = track(|| {
        std::thread::spawn(|| std::mem::forget(Box::new([7u64; 9])))
            .join()
            .unwrap();
    });
    assert!(
        found.blocks.iter().all(|b| b.size != 72),
        "a spawned thread's block was recorded: {found}"
    );
}

#[test]
fn a_block_freed_on_another_thread_is_not_a_survivor() {
    let ((), found) = track(|| {
        let block = vec![3u8; 999];
        std::thread::spawn(move || drop(block)).join().unwrap();
    });
    assert!(found.blocks.iter().all(|b| b.size != 999), "{found}");
}

#[test]
fn the_returned_value_is_a_survivor_and_scopes_nest() {
    let outer = LeakScope::begin();
    let (kept, inner) = track(|| vec![5u8; 777]);
    assert_eq!(inner.blocks.len(), 1);
    assert_eq!(inner.blocks[0].size, 777);
    std::mem::forget(vec![6u8; 555]);
    let outer = outer.finish();
    let sizes: Vec<usize> = outer.blocks.iter().map(|b| b.size).collect();
    assert!(sizes.contains(&777) && sizes.contains(&555), "{outer}");
    drop(kept);
}
