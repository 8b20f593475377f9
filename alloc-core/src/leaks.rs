//! Leak assertions for tests: record every block the current thread
//! allocates inside a scope, and list the ones still live at its end.
//!
//! The Rust counterpart of checking `sys.getrefcount(obj) == 2` after a
//! connection closes: run the code, drop what it returned, and ask which of
//! its blocks are still alive and where they were allocated.
//!
//! ```no_run
//! use std::cell::RefCell;
//! use std::rc::{Rc, Weak};
//!
//! // In a test crate whose global allocator is alloc_core::EpochAlloc.
//! struct Connection { handler: RefCell<Option<Handler>> }
//! struct Handler { conn: Weak<Connection> } // `Rc<Connection>` here leaks both
//!
//! alloc_core::assert_no_leaks(|| {
//!     let conn = Rc::new(Connection { handler: RefCell::new(None) });
//!     *conn.handler.borrow_mut() = Some(Handler { conn: Rc::downgrade(&conn) });
//! });
//! ```
//!
//! # What a scope sees
//! - **Only the current thread's allocations**, made between the start and
//!   the end of the scope. Two tests running in parallel in one process (the
//!   normal test harness) each see their own blocks only.
//! - **Blocks allocated by threads the scope spawns are not recorded.** Join
//!   them inside the scope and, to check their blocks too, run their bodies
//!   in scopes of their own.
//! - A block allocated in the scope and freed anywhere (any thread, any
//!   time before the end) is not a survivor. A block allocated before the
//!   scope and resized inside it is not recorded. Scopes nest: an outer
//!   scope also sees the survivors of the scopes inside it.
//! - **What the scope's code leaves behind on purpose is a survivor too**:
//!   a value returned from the closure of [`track`], a thread-local or a
//!   `OnceLock` initialised for the first time, a buffer of `stdout`. Run
//!   the code once before the scope to warm such things up.
//! - Every allocation in a scope captures its call stack (a few
//!   microseconds each), so keep scopes to test-sized work. A scope holds at
//!   most the sampled-block table's capacity of live blocks (about 114,000
//!   across the process); beyond that [`Survivors::missed`] says how many
//!   were not recorded.
//! - **Async code on a multi-threaded runtime** moves between threads at
//!   each `.await`: use [`track_future`] (or [`assert_no_leaks_future`]),
//!   which follows the future to every thread that polls it.
//! - A scope needs `EpochAlloc` as the global allocator and a counter slot
//!   for the thread (every thread has one, up to [`crate::MAX_THREAD_SLOTS`]
//!   at once); otherwise [`Survivors::unavailable`] is set and
//!   [`assert_no_leaks`] fails rather than pass without looking.

// The parts: `scope` opens and closes a scope on the current thread and
// says what a realloc inside one records; `survivors` lists a scope's live
// records, symbolised; `future` follows a future across the threads that
// poll it. A scope's state lives in its thread's slot (`slot::ScopeState`:
// how many are open, the numbering of their records), which the sampler
// reads: inside a scope every allocation is recorded, with weight 1, its
// sequence number and its slot as owner (`sampler::path::on_alloc`).
mod future;
pub(crate) mod scope;
mod survivors;

pub use future::{assert_no_leaks_future, track_future, TrackFuture};
pub use scope::LeakScope;
pub use survivors::{SurvivingBlock, Survivors};

/// Runs `f` in a [`LeakScope`] and returns its result with the blocks it
/// allocated on this thread that are still live, the result's own blocks
/// included.
pub fn track<R>(f: impl FnOnce() -> R) -> (R, Survivors) {
    let scope = LeakScope::begin();
    let r = f();
    (r, scope.finish())
}

/// Runs `f` in a [`LeakScope`] and panics, listing each surviving block's
/// size and symbolised call site, if anything it allocated on this thread
/// is still live when it returns.
#[track_caller]
pub fn assert_no_leaks(f: impl FnOnce()) {
    let ((), survivors) = track(f);
    if !survivors.is_empty() {
        panic!("leak check failed: {survivors}");
    }
}
