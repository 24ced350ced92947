//! Just enough of RFC 3986 for invalidation: parse an absolute `http(s)` URI, resolve a
//! reference (`Location`, `Content-Location`) against it (§5.2), and compare origins
//! (RFC 9110 §4.3.1). Hand-written because the core has no URL dependency and needs only this;
//! the edge's `url` crate lives on the other side of the wasm boundary.

/// An absolute URI with an authority, normalised for comparison: lower-case scheme and host, the
/// default port dropped, no user info, no fragment, and an empty path written `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AbsoluteUri {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
}

/// A URI reference split into its five components (RFC 3986 §3, Appendix B).
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split(reference: &str) -> Parts<'_> {
    let reference = reference.split('#').next().unwrap_or("");
    let (rest, query) = match reference.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (reference, None),
    };
    // A scheme ends at the first ':' that comes before any '/'.
    let (scheme, rest) = match rest.find(':') {
        Some(i)
            if !rest[..i].contains('/')
                && rest[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                && rest[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (Some(&rest[..i]), &rest[i + 1..])
        }
        _ => (None, rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    Parts {
        scheme,
        authority,
        path,
        query,
    }
}

impl AbsoluteUri {
    /// Parses an absolute URI with an authority; `None` for anything else.
    pub(crate) fn parse(uri: &str) -> Option<Self> {
        let p = split(uri.trim());
        Self::build(
            p.scheme?,
            p.authority?,
            &remove_dot_segments(p.path),
            p.query,
        )
    }

    fn build(scheme: &str, authority: &str, path: &str, query: Option<&str>) -> Option<Self> {
        let scheme = scheme.to_ascii_lowercase();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        // An IPv6 literal is bracketed; a port follows the last ':' after it.
        let (host, port) = match host_port.rfind(':') {
            Some(i) if !host_port[i..].contains(']') => (&host_port[..i], &host_port[i + 1..]),
            _ => (host_port, ""),
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '\\') {
            return None;
        }
        let port = match port {
            "" => None,
            p => Some(p.parse::<u16>().ok()?),
        };
        let default = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        Some(Self {
            port: port.filter(|p| Some(*p) != default),
            scheme,
            host: host.to_ascii_lowercase(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            query: query.map(str::to_owned),
        })
    }

    /// Resolves `reference` against this URI (RFC 3986 §5.2.2); `None` if the result has no
    /// authority (e.g. `mailto:`) or is malformed.
    pub(crate) fn resolve(&self, reference: &str) -> Option<Self> {
        let r = split(reference.trim());
        if let Some(scheme) = r.scheme {
            return Self::build(scheme, r.authority?, &remove_dot_segments(r.path), r.query);
        }
        if let Some(authority) = r.authority {
            return Self::build(
                &self.scheme,
                authority,
                &remove_dot_segments(r.path),
                r.query,
            );
        }
        let (path, query) = if r.path.is_empty() {
            (self.path.clone(), r.query.or(self.query.as_deref()))
        } else if r.path.starts_with('/') {
            (remove_dot_segments(r.path), r.query)
        } else {
            // §5.2.3 merge: the base path up to its last '/', then the reference.
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            (remove_dot_segments(&format!("{dir}{}", r.path)), r.query)
        };
        let mut out = self.clone();
        out.path = if path.is_empty() { "/".into() } else { path };
        out.query = query.map(str::to_owned);
        Some(out)
    }

    /// Same scheme, host and port (RFC 9110 §4.3.1).
    pub(crate) fn same_origin(&self, other: &Self) -> bool {
        (&self.scheme, &self.host, self.port) == (&other.scheme, &other.host, other.port)
    }
}

impl std::fmt::Display for AbsoluteUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// RFC 3986 §5.2.4: `.` segments vanish, `..` removes the previous segment (never above root).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." && out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push(""); // a trailing dot segment leaves a directory: "/a/." → "/a/"
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if path.starts_with('/') && !joined.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_per_rfc3986_5_4() {
        // The normal and abnormal examples of RFC 3986 §5.4 that have an authority.
        let base = AbsoluteUri::parse("http://a/b/c/d;p?q").unwrap();
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("HTTPS://Other:443/x", "https://other/x"),
        ];
        for (reference, want) in cases {
            assert_eq!(
                base.resolve(reference).map(|u| u.to_string()).as_deref(),
                Some(want),
                "{reference:?}"
            );
        }
        assert_eq!(base.resolve("mailto:x@y"), None, "no authority");
    }

    #[test]
    fn origins() {
        let a = AbsoluteUri::parse("https://Shop.example:443/a").unwrap();
        for (other, same) in [
            ("https://shop.example/b", true),
            ("https://user@shop.example/b", true),
            ("http://shop.example/b", false),
            ("https://shop.example:8443/b", false),
            ("https://evil.example/b", false),
        ] {
            assert_eq!(
                a.same_origin(&AbsoluteUri::parse(other).unwrap()),
                same,
                "{other}"
            );
        }
        assert_eq!(
            AbsoluteUri::parse("http://[::1]:8080")
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://[::1]:8080/")
        );
        assert_eq!(AbsoluteUri::parse("/relative"), None);
        assert_eq!(AbsoluteUri::parse("http://host:99999/"), None);
    }
}
