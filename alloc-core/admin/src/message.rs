//! What a route is given and gives back, whichever way the request came
//! (the endpoint's own acceptor, `http.rs`, or a router's service,
//! `service.rs`): [`Request`] (with the [`Guard`] headers) and
//! [`Response`].

/// One parsed request: only what the routes need.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    /// The body, as long as `Content-Length` said (at most the `MAX_BODY` of `http.rs`).
    pub(crate) body: Vec<u8>,
    /// The headers the endpoint's checks read (`guard.rs`).
    pub(crate) guard: Guard,
}

/// The request headers that say who is asking: each at most once.
#[derive(Default)]
pub(crate) struct Guard {
    pub(crate) host: Option<String>,
    pub(crate) origin: Option<String>,
    pub(crate) fetch_site: Option<String>,
    pub(crate) authorization: Option<String>,
}

/// One response; every response closes its connection.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// `Allow` for 405 answers.
    pub(crate) allow: Option<&'static str>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type,
            body,
            allow: None,
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    pub(crate) fn json(body: String) -> Self {
        Response::new(200, "application/json", body.into_bytes())
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
