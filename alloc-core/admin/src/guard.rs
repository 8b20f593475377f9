//! Who may ask: the checks every request passes before its route runs.
//!
//! - **Host** (the endpoint's own port only): a browser that a web page
//!   points at a name resolving to 127.0.0.1 (DNS rebinding) sends that
//!   name. The endpoint answers only a `Host` that is a loopback name or
//!   address, or its own address; a request without `Host` (HTTP/1.0, raw
//!   clients) is not a browser's and passes.
//! - **Cross-site requests**: a page on another origin can make a browser
//!   send a form (`POST /epoch`) or a simple `GET`. A request whose
//!   `Sec-Fetch-Site` is neither `same-origin` nor `none`, or whose `Origin`
//!   is not the origin the request was sent to (`http://` or `https://` and
//!   its `Host`), is refused.
//! - **Token** (optional, [`crate::Admin::token`] or
//!   [`crate::TOKEN_ENV`]): every request carries it as `Authorization:
//!   Bearer TOKEN`, or as `token=TOKEN` in the query (for `go tool pprof`);
//!   the parameter is taken out of the query before the route reads it.

use crate::message::{Request, Response};
use std::net::{IpAddr, SocketAddr};

/// What [`admit`] checks.
pub(crate) struct Policy {
    /// The token every request must carry, if any.
    pub(crate) token: Option<String>,
    /// The endpoint's own address, when it serves its own port (the `Host`
    /// check); `None` when mounted in the program's server, which decides
    /// which names it answers to.
    pub(crate) own: Option<SocketAddr>,
}

/// Refuses a request that fails a check (403, or 401 without the token);
/// takes the token out of the query of one that passes.
pub(crate) fn admit(policy: &Policy, req: &mut Request) -> Result<(), Response> {
    let g = &req.guard;
    if let Some(own) = policy.own {
        if let Some(host) = g.host.as_deref() {
            if !local_authority(host, own) {
                return Err(Response::text(
                    403,
                    format!(
                        "Host '{}' is not this endpoint: only loopback names are answered\n",
                        printable(host)
                    ),
                ));
            }
        }
    }
    if let Some(site) = g.fetch_site.as_deref() {
        if !matches!(site, "same-origin" | "none") {
            return Err(Response::text(
                403,
                format!(
                    "cross-site request refused (Sec-Fetch-Site: {})\n",
                    printable(site)
                ),
            ));
        }
    }
    if let Some(origin) = g.origin.as_deref() {
        let same = g.host.as_deref().is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        });
        if !same {
            return Err(Response::text(
                403,
                format!(
                    "cross-origin request refused (Origin: {})\n",
                    printable(origin)
                ),
            ));
        }
    }
    let query_token = take_token(&mut req.query);
    if let Some(token) = policy.token.as_deref() {
        let bearer = req
            .guard
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim);
        let given = bearer.or(query_token.as_deref());
        if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
            return Err(Response::text(
                401,
                "this endpoint requires its token (Authorization: Bearer TOKEN, or \
                 token=TOKEN in the query)\n",
            ));
        }
    }
    Ok(())
}

/// Whether `authority` (a `Host` value: a name or address, maybe a port)
/// names this machine's loopback or `own` address.
fn local_authority(authority: &str, own: SocketAddr) -> bool {
    let host = match authority.strip_prefix('[') {
        // `[::1]:7171` or `[::1]`.
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => inside,
            _ => return false,
        },
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(name, _port)| name),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == own.ip(),
        Err(_) => false,
    }
}

/// Removes every `token=` parameter from `query`; returns the last value.
fn take_token(query: &mut Option<String>) -> Option<String> {
    let q = query.as_deref()?;
    if !q.split('&').any(|p| p.starts_with("token=")) {
        return None;
    }
    let mut token = None;
    let rest: Vec<&str> = q
        .split('&')
        .filter(|p| match p.strip_prefix("token=") {
            Some(v) => {
                token = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    *query = if rest.iter().all(|p| p.is_empty()) {
        None
    } else {
        Some(rest.join("&"))
    };
    token
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn printable(s: &str) -> String {
    s.chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> SocketAddr {
        "127.0.0.1:7171".parse().unwrap()
    }

    #[test]
    fn loopback_names_and_the_own_address_are_local() {
        for h in [
            "127.0.0.1:7171",
            "127.0.0.1",
            "localhost:7171",
            "LOCALHOST",
            "[::1]:7171",
            "[::1]",
            "127.8.9.10:80",
        ] {
            assert!(local_authority(h, own()), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:7171",
            "10.0.0.1:7171",
            "[::1]x",
            "localhost.evil.example",
            "",
        ] {
            assert!(!local_authority(h, own()), "{h}");
        }
        let public: SocketAddr = "192.0.2.7:9000".parse().unwrap();
        assert!(local_authority("192.0.2.7:9000", public));
    }

    #[test]
    fn the_token_leaves_the_query() {
        let mut q = Some("cycles=5&token=abc".to_string());
        assert_eq!(take_token(&mut q).as_deref(), Some("abc"));
        assert_eq!(q.as_deref(), Some("cycles=5"));
        let mut q = Some("token=abc".to_string());
        assert_eq!(take_token(&mut q).as_deref(), Some("abc"));
        assert_eq!(q, None);
        let mut q = Some("cycles=5".to_string());
        assert_eq!(take_token(&mut q), None);
        assert_eq!(q.as_deref(), Some("cycles=5"));
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
