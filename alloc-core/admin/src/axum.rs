//! Mounting the admin routes in an axum service (feature `axum`):
//! [`AdminRoutes::into_router`] gives a `Router` to `nest`, and
//! [`CountingListener`] counts the service's open connections for the
//! soak's quiescence wait. See `examples/axum_service.rs`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{AdminRoutes, ConnectionGuard, Connections, MAX_BODY};

impl AdminRoutes {
    /// The routes as an axum `Router`, to `nest` under a prefix of the
    /// service's own router (`app.nest("/admin", routes.into_router())`).
    /// Each request is served inside `alloc_core::untracked_future`: what
    /// answering it allocates is the tool's, on whichever of the service's
    /// worker threads polls it.
    pub fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let serve = move |req: Request| {
            let routes = self.clone();
            alloc_core::untracked_future(async move { routes.serve(req).await })
        };
        Router::new()
            .route("/", any(serve.clone()))
            .route("/{*rest}", any(serve))
    }

    async fn serve(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            let mut r = Response::new(Body::from(format!(
                "request body larger than {MAX_BODY} bytes\n"
            )));
            *r.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
            return r;
        };
        self.handle(&http::Request::from_parts(parts, bytes))
            .map(Body::from)
    }
}

/// An axum listener that counts its open connections: each accepted
/// connection holds a [`ConnectionGuard`] until hyper drops it. Serve with
/// `axum::serve(CountingListener::new(listener, connections.clone()), app)`
/// and give `connections` to [`crate::Admin::connections`].
#[derive(Debug)]
pub struct CountingListener<L> {
    inner: L,
    connections: Connections,
}

impl<L> CountingListener<L> {
    /// Counts the connections `inner` accepts in `connections`.
    pub fn new(inner: L, connections: Connections) -> Self {
        CountingListener { inner, connections }
    }
}

impl<L> axum::serve::Listener for CountingListener<L>
where
    L: axum::serve::Listener,
{
    type Io = Counted<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        let guard = self.connections.open();
        (Counted { io, _guard: guard }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection of a [`CountingListener`]: the inner connection and its
/// place in the count.
#[derive(Debug)]
pub struct Counted<I> {
    io: I,
    _guard: ConnectionGuard,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
