//! Leak assertions that follow a future across the threads it is polled on.
//!
//! See [`track_future`] for how and what it records.

use super::scope::{LeakScope, Span};
use super::survivors::{survivors_of, Survivors};
use crate::sampled_table;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering::Relaxed;
use core::task::{Context, Poll};
use std::fmt;

/// A future wrapped by [`track_future`]; resolves to the inner future's
/// output and its [`Survivors`].
#[must_use = "futures do nothing unless polled"]
pub struct TrackFuture<F> {
    // Boxed so that it can be polled through `Pin` without unsafe
    // projection; the box is allocated before tracking begins.
    inner: Pin<Box<F>>,
    /// The stretches of record sequence its polls covered, merged where a
    /// poll continues the one before on the same thread.
    spans: Vec<Span>,
    /// A poll ran on a thread that could not record.
    blind: bool,
    dropped_at_start: u64,
}

impl<F> fmt::Debug for TrackFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackFuture")
            .field("spans", &self.spans.len())
            .field("blind", &self.blind)
            .finish_non_exhaustive()
    }
}

/// Wraps `fut` so that every block allocated while it is polled, on
/// whichever thread polls it, is recorded; it resolves to `fut`'s output
/// and the recorded blocks still live when `fut` completes.
///
/// A [`LeakScope`] belongs to one thread, but a task of a multi-threaded
/// runtime (tokio's default under `#[tokio::test(flavor = "multi_thread")]`,
/// and every server) moves between worker threads at each `.await`. A
/// [`TrackFuture`] opens a scope on the polling thread for the length of
/// each `poll` and remembers which stretch of that thread's record sequence
/// the poll covered; when the future completes, the records
/// still live in any of its spans are its survivors. Whatever the worker,
/// what the future's own code allocates is recorded, and nothing that other
/// tasks allocate between its polls is.
///
/// What a tracked future sees, beyond [the rules of a scope](crate::leaks):
/// - the blocks allocated *while it is polled*: by its own code, by the
///   futures it awaits (they are polled inside its poll), and by the
///   runtime on its behalf during the poll (a task it spawns, a timer
///   entry). A task it spawns runs as a task of its own, outside the
///   tracking: wrap that future too to check it;
/// - the output is a survivor, as the result of [`track`](super::track)
///   is: drop it before asking, or account for it;
/// - the runtime's lazily made buffers (a worker's first timer, the first
///   blocking thread) are survivors of the first future that causes them:
///   run the work once untracked first, as with any scope.
///
/// ```no_run
/// # async fn serve_one() -> Vec<u8> { Vec::new() }
/// # async fn example() {
/// // On a multi-threaded runtime, in a crate whose global allocator is
/// // alloc_core::EpochAlloc:
/// let (reply, survivors) = alloc_core::track_future(async {
///     let reply = serve_one().await;
///     reply.len()
/// })
/// .await;
/// assert!(survivors.is_empty(), "{survivors}");
/// # let _ = reply;
/// # }
/// ```
pub fn track_future<F: Future>(fut: F) -> TrackFuture<F> {
    TrackFuture {
        inner: Box::pin(fut),
        spans: Vec::new(),
        blind: false,
        dropped_at_start: sampled_table::DROPPED_FULL.load(Relaxed),
    }
}

/// Awaits `fut` in a [`track_future`] and panics, listing each surviving
/// block's size and call site, if anything allocated while it was polled
/// (on any thread) is still live when it completes.
pub async fn assert_no_leaks_future<F: Future<Output = ()>>(fut: F) {
    let ((), survivors) = track_future(fut).await;
    if !survivors.is_empty() {
        panic!("leak check failed: {survivors}");
    }
}

impl<F: Future> Future for TrackFuture<F> {
    type Output = (F::Output, Survivors);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let scope = LeakScope::begin();
        let polled = this.inner.as_mut().poll(cx);
        match scope.end_span() {
            // The bookkeeping is the tool's, not the future's (nor an
            // enclosing scope's).
            Some(span) => crate::untracked(|| push_span(&mut this.spans, span)),
            None => this.blind = true,
        }
        let Poll::Ready(out) = polled else {
            return Poll::Pending;
        };
        let survivors = if this.blind {
            Survivors {
                blocks: Vec::new(),
                missed: 0,
                unavailable: true,
            }
        } else {
            let spans = &this.spans;
            survivors_of(this.dropped_at_start, |r| {
                spans
                    .iter()
                    .any(|s| s.owner == r.owner && (s.first..s.end).contains(&r.seq))
            })
        };
        Poll::Ready((out, survivors))
    }
}

/// Adds `span`, extending the last span of the same slot when it continues
/// it (nothing else recorded on that thread in between), and dropping it
/// when it covered nothing.
fn push_span(spans: &mut Vec<Span>, span: Span) {
    if span.first == span.end {
        return;
    }
    if let Some(last) = spans.iter_mut().rev().find(|s| s.owner == span.owner) {
        if last.end == span.first {
            last.end = span.end;
            return;
        }
    }
    spans.push(span);
}

#[cfg(test)]
mod tests {
    use super::{push_span, Span};

    #[test]
    fn spans_merge_when_they_continue_on_one_slot() {
        let span = |owner, first, end| Span { owner, first, end };
        let mut spans = Vec::new();
        push_span(&mut spans, span(1, 0, 3));
        push_span(&mut spans, span(2, 10, 12));
        push_span(&mut spans, span(1, 3, 5)); // continues slot 1
        push_span(&mut spans, span(2, 12, 12)); // empty
        push_span(&mut spans, span(2, 14, 15)); // another scope ran between
        assert_eq!(spans, vec![span(1, 0, 5), span(2, 10, 12), span(2, 14, 15)]);
    }
}
