//! Per-cycle templating of what a cycle sends, so that requests vary:
//! `{cycle}` is the cycle's number (0, 1, 2, ... across the soak, warm-up
//! included), `{key}` a 16-hex-digit key drawn from it (splitmix64: distinct
//! per cycle, the same in every run), `{{` and `}}` literal braces.

/// `template` with its placeholders filled in for cycle `n`.
#[must_use]
pub fn render(template: &[u8], n: u64) -> Vec<u8> {
    if !template.contains(&b'{') && !template.contains(&b'}') {
        return template.to_vec();
    }
    let mut out = Vec::with_capacity(template.len() + 16);
    let mut i = 0;
    while i < template.len() {
        let rest = &template[i..];
        if rest.starts_with(b"{{") || rest.starts_with(b"}}") {
            out.push(rest[0]);
            i += 2;
        } else if rest.starts_with(b"{cycle}") {
            out.extend_from_slice(n.to_string().as_bytes());
            i += 7;
        } else if rest.starts_with(b"{key}") {
            out.extend_from_slice(format!("{:016x}", key(n)).as_bytes());
            i += 5;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

/// Checks that `template` uses only the known placeholders.
pub fn validate(template: &str) -> Result<(), crate::SoakError> {
    let stripped = template
        .replace("{{", "")
        .replace("}}", "")
        .replace("{cycle}", "")
        .replace("{key}", "");
    match stripped.find(['{', '}']) {
        Some(at) => Err(crate::SoakError::Options(format!(
            "unknown placeholder near {:?} (known: {{cycle}}, {{key}}; {{{{ and }}}} for braces)",
            &stripped[at..(at + 12).min(stripped.len())]
        ))),
        None => Ok(()),
    }
}

/// splitmix64 of `n`: a bijection of `u64`, so no two cycles share a key
/// (why this is not the workspace's generator, `fastrand`, whose first draw
/// from a seed is not proven one-to-one). The admin client's retry jitter
/// draws from it too.
pub(crate) fn key(n: u64) -> u64 {
    let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::{render, validate};

    fn check(template: &str, n: u64, expected: &str) {
        assert_eq!(
            String::from_utf8(render(template.as_bytes(), n)).unwrap(),
            expected
        );
    }

    #[test]
    fn placeholders_are_filled_per_cycle() {
        check("GET /users/{cycle} HTTP/1.1", 42, "GET /users/42 HTTP/1.1");
        check("set k{cycle} v{cycle}\n", 7, "set k7 v7\n");
        check("{{\"id\":{cycle}}}", 3, "{\"id\":3}");
        check("plain", 9, "plain");
        let a = render(b"{key}", 1);
        let b = render(b"{key}", 2);
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert_eq!(a, render(b"{key}", 1), "the same in every run");
        assert!(validate("/a/{cycle}/{key}?x={{y}}").is_ok());
        assert!(validate("/a/{cycles}").is_err());
        assert!(validate("/a/{").is_err());
    }
}
