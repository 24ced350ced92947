//! Header names the edge and origin agree on, and the hop-by-hop set neither may forward.

/// Correlates one request across the edge, the origin and their logs.
pub const REQUEST_ID: &str = "x-request-id";
/// W3C Trace Context.
pub const TRACEPARENT: &str = "traceparent";
/// Per-stage timings for the browser's devtools.
pub const SERVER_TIMING: &str = "server-timing";
/// The client address as Cloudflare saw it; the only trusted source of the client IP.
pub const CF_CONNECTING_IP: &str = "cf-connecting-ip";
/// Who the edge decided the caller is, for the origin. Only the edge sets it: a client's own
/// value is always removed, so the origin may trust it as long as only the edge can reach it.
pub const PRINCIPAL: &str = "breakwater-principal";

/// The tags a cached response is stored under, and on a write's answer the tags the edge purges
/// because of it: Cloudflare's header, its value written by [`crate::purge::format_tags`] and
/// read by [`crate::purge::parse_tags`].
pub const CACHE_TAG: &str = "cache-tag";

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy must neither
/// forward nor store them. `Connection` may name more; [`is_hop_by_hop`] covers the fixed set.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// True for a header that must not cross the proxy. `connection_tokens` is the request's or
/// response's `Connection` header value, whose listed names are hop-by-hop too.
pub fn is_hop_by_hop(name: &str, connection_tokens: Option<&str>) -> bool {
    let name = name.trim();
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
        || connection_tokens.is_some_and(|tokens| {
            tokens
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_set_and_connection_listed_names_are_hop_by_hop() {
        assert!(is_hop_by_hop("Transfer-Encoding", None));
        assert!(is_hop_by_hop("x-secret", Some("keep-alive, X-Secret")));
        assert!(!is_hop_by_hop("content-type", Some("keep-alive")));
        assert!(!is_hop_by_hop("x-request-id", None));
    }
}
