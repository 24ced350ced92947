//! Intake: the first stage of the edge. Decides whether a request is well-formed enough to go
//! further, who is asking, and which part of the system answers it.
//!
//! Everything here is a pure function of the request's parts; the edge adapter only extracts them.

use std::net::IpAddr;

/// Size limits applied before anything else runs. Defaults sit well inside Cloudflare's own
/// limits (16 KiB URL, 32 KiB headers) so that the edge, not the platform, gives the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_url_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Methods the edge lets through. `TRACE` and `CONNECT` are refused: TRACE echoes headers
/// (cross-site tracing) and CONNECT makes no sense for a web application.
pub const ALLOWED_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Why a request was refused at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    MethodNotAllowed(String),
    UrlTooLong { len: usize, max: usize },
    TooManyHeaders { count: usize, max: usize },
    HeadersTooLarge { len: usize, max: usize },
    BodyTooLarge { len: u64, max: u64 },
    BadContentLength,
    BadPath(PathError),
}

impl Rejection {
    /// The HTTP status: the specific one where HTTP defines it, else 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed(_) => 405,
            Self::UrlTooLong { .. } => 414,
            Self::TooManyHeaders { .. } | Self::HeadersTooLarge { .. } => 431,
            Self::BodyTooLarge { .. } => 413,
            Self::BadContentLength | Self::BadPath(_) => 400,
        }
    }

    /// The problem `type` slug.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::UrlTooLong { .. } => "url-too-long",
            Self::TooManyHeaders { .. } | Self::HeadersTooLarge { .. } => "headers-too-large",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::BadContentLength => "bad-content-length",
            Self::BadPath(_) => "bad-path",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::UrlTooLong { .. } => "URL too long",
            Self::TooManyHeaders { .. } | Self::HeadersTooLarge { .. } => {
                "Request headers too large"
            }
            Self::BodyTooLarge { .. } => "Request body too large",
            Self::BadContentLength => "Invalid Content-Length",
            Self::BadPath(_) => "Invalid request path",
        }
    }

    /// A sentence for the client saying exactly what was wrong.
    pub fn detail(&self) -> String {
        match self {
            Self::MethodNotAllowed(m) => format!(
                "method {m:?} is not accepted; allowed: {}",
                ALLOWED_METHODS.join(", ")
            ),
            Self::UrlTooLong { len, max } => format!("the URL is {len} bytes; the limit is {max}"),
            Self::TooManyHeaders { count, max } => {
                format!("{count} request headers; the limit is {max}")
            }
            Self::HeadersTooLarge { len, max } => {
                format!("request headers total {len} bytes; the limit is {max}")
            }
            Self::BodyTooLarge { len, max } => {
                format!("the body is {len} bytes; the limit is {max}")
            }
            Self::BadContentLength => "Content-Length must be a single decimal number".into(),
            Self::BadPath(e) => format!("the path {}", e.as_str()),
        }
    }
}

/// The parts of a request intake looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The full URL as received.
    pub url: &'a str,
    /// The path component, still percent-encoded.
    pub raw_path: &'a str,
    /// Number of header fields and their total size (names + values).
    pub header_count: usize,
    pub header_bytes: usize,
    pub content_length: Option<&'a str>,
}

/// Checks a request head against `limits`; on success returns the decoded, normalised path.
pub fn check(head: &RequestHead<'_>, limits: &Limits) -> Result<String, Rejection> {
    if !ALLOWED_METHODS.contains(&head.method) {
        return Err(Rejection::MethodNotAllowed(head.method.to_owned()));
    }
    if head.url.len() > limits.max_url_bytes {
        return Err(Rejection::UrlTooLong {
            len: head.url.len(),
            max: limits.max_url_bytes,
        });
    }
    if head.header_count > limits.max_headers {
        return Err(Rejection::TooManyHeaders {
            count: head.header_count,
            max: limits.max_headers,
        });
    }
    if head.header_bytes > limits.max_header_bytes {
        return Err(Rejection::HeadersTooLarge {
            len: head.header_bytes,
            max: limits.max_header_bytes,
        });
    }
    if let Some(len) = head.content_length {
        let len: u64 = len
            .trim()
            .parse()
            .ok()
            .filter(|_| len.trim().bytes().all(|b| b.is_ascii_digit()))
            .ok_or(Rejection::BadContentLength)?;
        if len > limits.max_body_bytes {
            return Err(Rejection::BodyTooLarge {
                len,
                max: limits.max_body_bytes,
            });
        }
    }
    normalize_path(head.raw_path).map_err(Rejection::BadPath)
}

/// What is wrong with a path. Each of these is a known traversal or confusion technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    DotSegment,
    EmptySegment,
    EncodedSeparator,
    ControlCharacter,
    BadPercentEncoding,
    DoubleEncoding,
    InvalidUtf8,
}

impl PathError {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotAbsolute => "must start with '/'",
            Self::DotSegment => "contains a '.' or '..' segment",
            Self::EmptySegment => "contains an empty segment ('//')",
            Self::EncodedSeparator => "contains an encoded or backslash path separator",
            Self::ControlCharacter => "contains a NUL or control character",
            Self::BadPercentEncoding => "contains a malformed percent-encoding",
            Self::DoubleEncoding => "contains an encoded '%' (double encoding)",
            Self::InvalidUtf8 => "does not decode to valid UTF-8",
        }
    }
}

/// Decodes a percent-encoded path and refuses anything that could name a different file than it
/// appears to: dot segments (encoded or not), encoded or backslash separators, NUL and controls,
/// double encoding, overlong or otherwise invalid UTF-8 (`%c0%ae`), and empty segments.
///
/// The result is the canonical path used for every later lookup.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let byte = if b == b'%' {
            // Two hex digits and nothing else (RFC 3986 §2.1): `from_str_radix` alone would
            // also take a sign, reading `%+1` as byte 1.
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .ok_or(PathError::BadPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadPercentEncoding)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadPercentEncoding)?;
            i += 3;
            match v {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                b'%' => return Err(PathError::DoubleEncoding),
                _ => v,
            }
        } else {
            i += 1;
            b
        };
        if byte == b'\\' {
            return Err(PathError::EncodedSeparator);
        }
        if byte < 0x20 || byte == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        decoded.push(byte);
    }
    let path = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Err(PathError::DotSegment),
            // A trailing slash is an empty last segment and is allowed; `//` is not.
            "" if n != last => return Err(PathError::EmptySegment),
            _ => {}
        }
    }
    Ok(path)
}

/// Splits an absolute URL as the runtime received it into its raw path and query (with `?`),
/// without the URL parser's dot-segment resolution, so intake judges what the client sent.
pub fn split_raw_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let from_path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let without_fragment = from_path.split('#').next().unwrap_or(from_path);
    match without_fragment.find('?') {
        Some(q) => without_fragment.split_at(q),
        None => (without_fragment, ""),
    }
}

/// Which part of the system answers a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The versioned static front end.
    Assets,
    /// Proxied to the origin.
    Origin,
}

impl Route {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Assets => "assets",
            Self::Origin => "origin",
        }
    }

    /// Routes `path` to the origin when it falls under one of `origin_prefixes` (`/api/` also
    /// claims `/api` itself), else to the static assets.
    pub fn for_path(path: &str, origin_prefixes: &[String]) -> Self {
        let under = |prefix: &String| {
            path.starts_with(prefix.as_str())
                || prefix.strip_suffix('/').is_some_and(|bare| path == bare)
        };
        if origin_prefixes.iter().any(under) {
            Self::Origin
        } else {
            Self::Assets
        }
    }
}

/// Longest token subject taken as a principal; the origin's `user:<id>` is far shorter.
pub const MAX_SUBJECT_LEN: usize = 128;

/// Who is asking: a verified access token's subject, else a configured API key, else the client
/// address Cloudflare reports. `X-Forwarded-For` is consulted only when the admission policy says
/// a trusted proxy sets it: any client can send one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The subject of a verified access token (the origin writes `user:<id>`); see
    /// [`Principal::user`].
    User(String),
    /// A configured API key (by its hash, never the key itself) and the plan it belongs to.
    ApiKey {
        id: String,
        plan: String,
    },
    Ip(IpAddr),
    /// No trustworthy identity (the header is missing or malformed).
    Anonymous,
}

impl Principal {
    /// From the `CF-Connecting-IP` header.
    pub fn from_connecting_ip(header: Option<&str>) -> Self {
        header
            .and_then(|h| h.trim().parse().ok())
            .map_or(Self::Anonymous, Self::Ip)
    }

    /// The principal for a known API key.
    pub fn api_key(key: &str, plan: impl Into<String>) -> Self {
        Self::ApiKey {
            id: crate::hash::fnv1a_128_hex(key),
            plan: plan.into(),
        }
    }

    /// The principal for a verified token's subject: 1 to [`MAX_SUBJECT_LEN`] visible ASCII
    /// characters, and not in another principal's namespace (`ip:`, `ip6:`, `key:`, `guest:`,
    /// `anonymous`), so no subject can share a bucket or idempotency scope with an address or a
    /// key. `None` otherwise.
    pub fn user(subject: &str) -> Option<Self> {
        let reserved = ["ip:", "ip6:", "key:", crate::guest::PRINCIPAL_PREFIX]
            .iter()
            .any(|prefix| subject.starts_with(prefix))
            || subject == "anonymous";
        let valid = (1..=MAX_SUBJECT_LEN).contains(&subject.len())
            && subject.bytes().all(|b| b.is_ascii_graphic())
            && !reserved;
        valid.then(|| Self::User(subject.to_owned()))
    }

    /// The key a limiter groups by. IPv6 clients get a whole /64 from their provider, so one
    /// client rotating addresses inside it must count as one.
    pub fn key(&self) -> String {
        match self {
            Self::Ip(IpAddr::V4(v4)) => format!("ip:{v4}"),
            Self::Ip(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Self::ApiKey { id, .. } => format!("key:{id}"),
            Self::User(subject) => subject.clone(),
            Self::Anonymous => "anonymous".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(raw_path: &str) -> RequestHead<'_> {
        RequestHead {
            method: "GET",
            url: raw_path,
            raw_path,
            header_count: 3,
            header_bytes: 100,
            content_length: None,
        }
    }

    #[test]
    fn traversal_payloads_are_refused() {
        let cases = [
            ("/../etc/passwd", PathError::DotSegment),
            ("/static/%2e%2e/secret", PathError::DotSegment),
            ("/%2E%2E/x", PathError::DotSegment),
            ("/a/./b", PathError::DotSegment),
            ("/a/..", PathError::DotSegment),
            ("/..%2fetc", PathError::EncodedSeparator),
            ("/..%5c..%5cwin.ini", PathError::EncodedSeparator),
            ("/a\\b", PathError::EncodedSeparator),
            ("/index.html%00.png", PathError::ControlCharacter),
            ("/a%0d%0aX", PathError::ControlCharacter),
            ("/%c0%ae%c0%ae/x", PathError::InvalidUtf8),
            ("/%252e%252e/x", PathError::DoubleEncoding),
            ("/a%2", PathError::BadPercentEncoding),
            ("/a%zz", PathError::BadPercentEncoding),
            // Found by the fuzzer (fuzz target `intake`): a sign is no hex digit.
            ("/a%+1", PathError::BadPercentEncoding),
            ("/%+f/x", PathError::BadPercentEncoding),
            ("/%-1", PathError::BadPercentEncoding),
            ("//etc/passwd", PathError::EmptySegment),
            ("c:/windows", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw), Err(want), "path {raw:?}");
        }
    }

    #[test]
    fn ordinary_paths_decode() {
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("/css/app.css").unwrap(), "/css/app.css");
        assert_eq!(normalize_path("/api/products/").unwrap(), "/api/products/");
        assert_eq!(normalize_path("/caf%C3%A9").unwrap(), "/café");
        assert_eq!(
            normalize_path("/a..b/.well-known").unwrap(),
            "/a..b/.well-known"
        );
    }

    #[test]
    fn limits_map_to_their_statuses() {
        let limits = Limits::default();
        let mut h = head("/");
        h.method = "TRACE";
        assert_eq!(check(&h, &limits).unwrap_err().status(), 405);
        let long = format!("/{}", "a".repeat(9000));
        assert_eq!(check(&head(&long), &limits).unwrap_err().status(), 414);
        let mut h = head("/");
        h.header_bytes = 40_000;
        assert_eq!(check(&h, &limits).unwrap_err().status(), 431);
        h = head("/");
        h.header_count = 101;
        assert_eq!(check(&h, &limits).unwrap_err().status(), 431);
        h = head("/");
        h.content_length = Some("2000000");
        assert_eq!(check(&h, &limits).unwrap_err().status(), 413);
        for bad in ["-1", "1,1", "+5", "", "0x10"] {
            h.content_length = Some(bad);
            assert_eq!(
                check(&h, &limits),
                Err(Rejection::BadContentLength),
                "{bad:?}"
            );
        }
        h.content_length = Some("1024");
        assert_eq!(check(&h, &limits).unwrap(), "/");
    }

    #[test]
    fn every_rejection_explains_itself() {
        let r = Rejection::BadPath(PathError::DotSegment);
        assert_eq!(r.status(), 400);
        assert_eq!(r.detail(), "the path contains a '.' or '..' segment");
    }

    #[test]
    fn raw_url_split_keeps_what_the_client_sent() {
        assert_eq!(
            split_raw_url("http://h:1/a/../b?x=1#f"),
            ("/a/../b", "?x=1")
        );
        assert_eq!(split_raw_url("https://h"), ("/", ""));
        assert_eq!(split_raw_url("http://h/%2e%2e/x"), ("/%2e%2e/x", ""));
        assert_eq!(split_raw_url("http://h/p#frag?no"), ("/p", ""));
    }

    #[test]
    fn routes_by_prefix() {
        let prefixes = vec!["/api/".to_owned()];
        assert_eq!(Route::for_path("/api/products", &prefixes), Route::Origin);
        assert_eq!(Route::for_path("/api", &prefixes), Route::Origin);
        assert_eq!(Route::for_path("/apiary", &prefixes), Route::Assets);
        assert_eq!(Route::for_path("/", &prefixes), Route::Assets);
    }

    #[test]
    fn a_token_subject_is_a_principal_only_if_short_visible_and_not_reserved() {
        assert_eq!(
            Principal::user("user:42").map(|p| p.key()),
            Some("user:42".to_owned())
        );
        let long = "u".repeat(MAX_SUBJECT_LEN + 1);
        for bad in [
            "",
            "user 42",
            "user:\u{e9}",
            "user:\n",
            long.as_str(),
            "ip:203.0.113.9",
            "ip6:2001:db8::/64",
            "key:abc",
            "guest:0123",
            "anonymous",
        ] {
            assert_eq!(Principal::user(bad), None, "{bad:?}");
        }
        assert!(Principal::user(&long[1..]).is_some());
    }

    #[test]
    fn principal_ignores_garbage_and_groups_ipv6_by_64() {
        assert_eq!(
            Principal::from_connecting_ip(Some("203.0.113.9")).key(),
            "ip:203.0.113.9"
        );
        assert_eq!(
            Principal::from_connecting_ip(Some("not an ip")),
            Principal::Anonymous
        );
        assert_eq!(Principal::from_connecting_ip(None).key(), "anonymous");
        let a = Principal::from_connecting_ip(Some("2001:db8:1:2:aaaa::1")).key();
        let b = Principal::from_connecting_ip(Some("2001:db8:1:2:ffff::9")).key();
        assert_eq!(a, b);
        assert_eq!(a, "ip6:2001:db8:1:2::/64");
    }

    proptest! {
        /// Whatever comes in, an accepted path can never climb out of the root or smuggle a
        /// separator or NUL past the check.
        #[test]
        fn accepted_paths_are_canonical(raw in "/[a-zA-Z0-9%./\\\\_-]{0,40}") {
            if let Ok(path) = normalize_path(&raw) {
                prop_assert!(path.starts_with('/'));
                prop_assert!(!path.contains('\0') && !path.contains('\\'));
                prop_assert!(!path.contains("//"));
                prop_assert!(path.split('/').all(|s| s != "." && s != ".."));
                // Canonical: normalising the result again is the identity, unless it holds a
                // literal '%' that came from nowhere (impossible: '%25' is refused).
                prop_assert!(!path.contains('%'));
                prop_assert_eq!(normalize_path(&path), Ok(path.clone()));
            }
        }
    }
}
