//! Where an HTTP/1.1 response ends in the bytes read so far, so that the
//! next request of a kept-alive connection can follow it: the head
//! (`httparse`), then a body of `Content-Length` bytes, a chunked body, no
//! body (`HEAD`, 1xx, 204, 304), or one that ends when the server closes.

/// What the bytes read so far hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Not yet a whole response.
    Incomplete,
    /// A whole response of `len` bytes with this status; `close`: the
    /// server said `Connection: close` (or spoke HTTP/1.0 without
    /// keep-alive), so the connection cannot carry another request.
    Complete {
        status: u16,
        len: usize,
        close: bool,
    },
    /// A head whose body runs until the server closes (no length given).
    UntilClose { status: u16 },
}

/// The most header lines a response may have.
const MAX_HEADERS: usize = 64;

/// Frames the response at the start of `buf` to a request of `method`.
pub(crate) fn frame(buf: &[u8], method: &str) -> Result<Framing, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Framing::Incomplete),
        Err(e) => return Err(format!("not an HTTP response: {e}")),
    };
    let status = head.code.unwrap_or(0);
    let mut close = head.version == Some(0);
    let (mut length, mut chunked) = (None, false);
    for h in head.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("Content-Length {value:?} is not a number"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    let body = &buf[head_len..];
    let complete = |body_len: usize| Framing::Complete {
        status,
        len: head_len + body_len,
        close,
    };
    if (100..200).contains(&status) {
        return Err(format!("informational status {status} (not supported)"));
    }
    if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
        return Ok(complete(0));
    }
    if chunked {
        return Ok(chunked_len(body)?.map_or(Framing::Incomplete, complete));
    }
    match length {
        Some(n) if body.len() >= n => Ok(complete(n)),
        Some(_) => Ok(Framing::Incomplete),
        None => Ok(Framing::UntilClose { status }),
    }
}

/// The length of a whole chunked body at the start of `body`, trailers
/// included; `None` while it is incomplete.
fn chunked_len(body: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&body[at..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&body[at..at + eol]).unwrap_or("");
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| format!("chunk size {size:?} is not hexadecimal"))?;
        at += eol + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let Some(eol) = find_crlf(&body[at..]) else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        let end = at.checked_add(size).and_then(|e| e.checked_add(2));
        match end {
            Some(end) if body.len() >= end => {
                if &body[end - 2..end] != b"\r\n" {
                    return Err("a chunk does not end with CRLF".to_string());
                }
                at = end;
            }
            Some(_) => return Ok(None),
            None => return Err("chunk size overflows".to_string()),
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::{frame, Framing};

    #[test]
    fn lengths_chunks_and_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let whole = Framing::Complete {
            status: 200,
            len: r.len(),
            close: false,
        };
        assert_eq!(frame(r, "GET"), Ok(whole));
        // Every prefix is incomplete; extra bytes are not part of it.
        for cut in 0..r.len() {
            assert_eq!(frame(&r[..cut], "GET"), Ok(Framing::Incomplete), "{cut}");
        }
        let mut more = r.to_vec();
        more.extend_from_slice(b"HTTP/1.1");
        assert_eq!(frame(&more, "GET"), Ok(whole));

        let c = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        let chunked = Framing::Complete {
            status: 201,
            len: c.len(),
            close: true,
        };
        assert_eq!(frame(c, "POST"), Ok(chunked));
        for cut in 0..c.len() {
            assert_eq!(frame(&c[..cut], "POST"), Ok(Framing::Incomplete), "{cut}");
        }

        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        assert!(
            matches!(frame(head, "HEAD"), Ok(Framing::Complete { len, .. }) if len == head.len())
        );
        let old = b"HTTP/1.0 200 OK\r\n\r\nbody";
        assert_eq!(frame(old, "GET"), Ok(Framing::UntilClose { status: 200 }));
        let kept = b"HTTP/1.0 404 No\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            frame(kept, "GET"),
            Ok(Framing::Complete {
                status: 404,
                close: false,
                ..
            })
        ));

        assert!(frame(b"SSH-2.0-OpenSSH\r\n\r\n", "GET").is_err());
        assert!(frame(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "GET").is_err());
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(frame(bad, "GET").is_err());
        let long = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(frame(long, "GET").is_err());
    }
}
