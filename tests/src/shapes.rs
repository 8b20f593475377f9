//! Leak shapes that more than one test soaks (`leak_cases.rs` for their
//! verdicts, `retention_causes.rs` for their causes): each call leaks one
//! cycle's worth and returns the lines of this file that allocated it, so
//! that a test finds its sites as `shapes.rs:LINE` ([`FILE`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::mpsc;

/// The short name a site label gives this file.
pub const FILE: &str = "shapes.rs";

/// Bytes of the heap block behind an `Rc<T>` or `Arc<T>` (two counts and
/// the value; `T` aligned to at most 8).
pub const fn rc_block<T>() -> usize {
    2 * size_of::<usize>() + size_of::<T>()
}

/// A connection that owns its handler.
pub struct RcConn {
    #[allow(dead_code)]
    id: u64,
    handler: RefCell<Option<Rc<Handler>>>,
}

/// A handler that holds its connection back: the cycle.
pub struct Handler {
    #[allow(dead_code)] // the back edge that makes the cycle
    conn: Rc<RcConn>,
    #[allow(dead_code)]
    state: [u64; 12],
}

/// A `RcConn` and its `Handler` holding each other by `Rc`, then dropped
/// by their owner: the lines that made the connection and the handler.
#[inline(never)]
pub fn rc_cycle(cycle: u32) -> [u32; 2] {
    let c = RcConn {
        id: u64::from(cycle),
        handler: RefCell::new(None),
    };
    #[rustfmt::skip]
    let (conn_line, conn) = (line!(), Rc::new(c));
    let h = Handler {
        conn: Rc::clone(&conn),
        state: [0; 12],
    };
    #[rustfmt::skip]
    let (handler_line, handler) = (line!(), Rc::new(h));
    *conn.handler.borrow_mut() = Some(handler);
    drop(conn);
    [conn_line, handler_line]
}

/// The worker of [`keep_on_worker`]: its jobs and its answers.
struct Worker {
    jobs: mpsc::Sender<u32>,
    done: mpsc::Receiver<u32>,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// The line in the worker that keeps a block per job.
static WORKER_LINE: AtomicU32 = AtomicU32::new(0);

/// Bytes the worker keeps per job (one boxed `[u64; 6]`).
pub const WORKER_BYTES: usize = 48;

/// One boxed block per job: the leak is a heap block per cycle, not bytes
/// in the list's buffer.
#[allow(clippy::vec_box)]
#[inline(never)]
fn worker_keep(kept: &mut Vec<Box<[u64; 6]>>, job: u32) {
    let (line, block) = (line!(), Box::new([u64::from(job); 6]));
    WORKER_LINE.store(line, Relaxed);
    kept.push(block);
}

/// Sends `cycle` to a worker thread (started at the first call) that keeps
/// one block per job in a `Vec` local to it, and waits for it: the line
/// that allocated the block.
#[inline(never)]
pub fn keep_on_worker(cycle: u32) -> u32 {
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.get_or_insert_with(|| {
            let (jobs, rx) = mpsc::channel::<u32>();
            let (tx, done) = mpsc::channel::<u32>();
            std::thread::spawn(move || {
                #[allow(clippy::vec_box)] // one heap block per job
                let mut kept: Vec<Box<[u64; 6]>> = Vec::new();
                while let Ok(job) = rx.recv() {
                    worker_keep(&mut kept, job);
                    if tx.send(job).is_err() {
                        break;
                    }
                }
            });
            Worker { jobs, done }
        });
        w.jobs.send(cycle).unwrap();
        assert_eq!(w.done.recv().unwrap(), cycle);
    });
    WORKER_LINE.load(Relaxed)
}
