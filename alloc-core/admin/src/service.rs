//! The routes as a handler over the `http` crate's request and response
//! types, to mount in a server the program already runs (hyper, axum,
//! tonic's HTTP side...), next to or instead of the endpoint's own port.

use std::sync::Arc;

use crate::message::{Guard, Request, Response};
use crate::State;

/// The admin routes, detached from any port: [`AdminRoutes::handle`]
/// answers one request. Made by [`crate::Admin::routes`]; cheap to clone.
#[derive(Clone)]
pub struct AdminRoutes {
    pub(crate) state: Arc<State>,
}

impl std::fmt::Debug for AdminRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRoutes").finish_non_exhaustive()
    }
}

/// The largest request body [`AdminRoutes::handle`] is meant for (as on the
/// endpoint's own port); a mounting server should refuse larger ones.
pub const MAX_BODY: usize = 1024 * 1024;

impl AdminRoutes {
    /// Answers one request whose URI path is relative to where the routes
    /// are mounted (`/snapshot`, `/metrics`, `/debug/pprof/heap`...), as
    /// the endpoint's own port does. Runs inside `alloc_core::untracked`:
    /// what it allocates, the response included, is the tool's.
    #[must_use]
    pub fn handle<B: AsRef<[u8]>>(&self, req: &http::Request<B>) -> http::Response<Vec<u8>> {
        alloc_core::untracked(|| {
            let header = |name: http::header::HeaderName| {
                req.headers()
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            };
            let mut request = Request {
                method: req.method().as_str().to_string(),
                path: req.uri().path().to_string(),
                query: req.uri().query().map(str::to_string),
                body: req.body().as_ref().to_vec(),
                guard: Guard {
                    host: header(http::header::HOST),
                    origin: header(http::header::ORIGIN),
                    fetch_site: header(http::header::HeaderName::from_static("sec-fetch-site")),
                    authorization: header(http::header::AUTHORIZATION),
                },
            };
            let head_only = request.method == "HEAD";
            let answer = match crate::guard::admit(&self.state.guard, &mut request) {
                Ok(()) => crate::routes::route(&request, &self.state),
                Err(refused) => refused,
            };
            to_http(answer, head_only)
        })
    }
}

fn to_http(r: Response, head_only: bool) -> http::Response<Vec<u8>> {
    let mut builder = http::Response::builder()
        .status(r.status)
        .header(http::header::CONTENT_TYPE, r.content_type);
    if let Some(allow) = r.allow {
        builder = builder.header(http::header::ALLOW, allow);
    }
    let body = if head_only { Vec::new() } else { r.body };
    // The status is one of the routes' own codes and the headers are
    // static strings: building cannot fail; answer 500 if it ever does.
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = http::Response::new(Vec::new());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
