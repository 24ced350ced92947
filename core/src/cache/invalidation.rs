//! Invalidation after an unsafe request (RFC 9111 §4.4): which stored URIs a successful write
//! makes stale.

use super::message::HeaderList;
use super::uri::AbsoluteUri;

/// True for the safe methods (RFC 9110 §9.2.1). Any other method, including one the cache does
/// not know, is treated as unsafe, as §4.4 requires.
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// The URIs to invalidate after the origin answered `status` + `headers` to a `method` request
/// for `target` (an absolute URI).
///
/// §4.4: a non-error status (2xx or 3xx) to an unsafe method invalidates the target URI, and a
/// cache MAY invalidate the URIs in `Location` and `Content-Location`; we do, but only those with
/// the target's origin ("a cache MUST NOT trigger an invalidation … if the origin … differs",
/// which stops a response from purging another site's entries). References are resolved against
/// the target. Results are absolute URIs normalised for use as keys (lower-case scheme and host,
/// no default port, no user info, no fragment, empty path as `/`), deduplicated, target first. A target that does not parse is returned as given, minus its fragment: the
/// mandatory invalidation never depends on our parser.
pub fn invalidations(method: &str, status: u16, target: &str, headers: &HeaderList) -> Vec<String> {
    if is_safe_method(method) || !(200..=399).contains(&status) {
        return Vec::new();
    }
    let Some(base) = AbsoluteUri::parse(target) else {
        return vec![target.split('#').next().unwrap_or("").to_owned()];
    };
    let mut out = vec![base.to_string()];
    for name in ["location", "content-location"] {
        let Some(value) = headers.get(name) else {
            continue;
        };
        if let Some(uri) = base.resolve(&value).filter(|u| u.same_origin(&base)) {
            let uri = uri.to_string();
            if !out.contains(&uri) {
                out.push(uri);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_table() {
        let target = "https://shop.example/api/orders?x=1#frag";
        let h = |pairs: &[(&str, &str)]| pairs.iter().copied().collect::<HeaderList>();
        let t = "https://shop.example/api/orders?x=1";
        #[rustfmt::skip]
        let cases: Vec<(&str, u16, HeaderList, Vec<&str>, &str)> = vec![
            ("POST", 201, h(&[]), vec![t], "§4.4: unsafe + 2xx → the target URI"),
            ("GET", 200, h(&[]), vec![], "safe methods invalidate nothing"),
            ("HEAD", 200, h(&[]), vec![], "safe"),
            ("OPTIONS", 200, h(&[]), vec![], "safe"),
            ("PUT", 500, h(&[]), vec![], "§4.4: only non-error statuses"),
            ("DELETE", 404, h(&[]), vec![], "4xx is an error"),
            ("DELETE", 303, h(&[]), vec![t], "3xx is not"),
            ("PURGE", 200, h(&[]), vec![t], "§4.4: methods of unknown safety are unsafe"),
            ("post", 200, h(&[]), vec![t], "RFC 9110 §9.1: 'post' is an unknown method"),
            ("POST", 201, h(&[("Location", "/api/orders/7"), ("Content-Location", "7/summary")]),
                vec![t, "https://shop.example/api/orders/7", "https://shop.example/api/7/summary"],
                "§4.4: same-origin Location and Content-Location, resolved against the target"),
            ("PATCH", 200, h(&[("Location", "https://evil.example/api/orders")]), vec![t], "§4.4: another origin is never invalidated"),
            ("PATCH", 200, h(&[("Location", "http://shop.example/api/orders")]), vec![t], "another scheme is another origin"),
            ("PUT", 200, h(&[("Content-Location", "https://SHOP.example:443/api/orders?x=1")]), vec![t], "duplicates collapse after normalisation"),
            ("PUT", 200, h(&[("Location", "mailto:a@b")]), vec![t], "no authority: ignored"),
        ];
        for (method, status, headers, want, rule) in cases {
            assert_eq!(
                invalidations(method, status, target, &headers),
                want,
                "{rule}"
            );
        }
        assert_eq!(
            invalidations("POST", 200, "/relative#x", &HeaderList::new()),
            ["/relative"],
            "an unparsable target is still invalidated"
        );
    }
}
