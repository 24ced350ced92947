//! Header names the edge and origin agree on, the hop-by-hop set neither may forward, and the
//! routing overrides the edge never passes on from a client.

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

/// True when `value` is a valid field value (RFC 9110 §5.5): visible characters, obs-text,
/// spaces and tabs, no other control character. A recipient must reject or repair one that is
/// not; an edge that relayed it as-is would hand its client a message the client cannot parse.
pub fn is_field_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c == '\t' || (c >= ' ' && c != '\u{7f}'))
}

/// Request headers that some server or framework reads as a routing override: another path,
/// method, host, scheme, port or client address than the request line and the connection say.
/// A client must never set them at the origin. A cache keys on the method, the URL and a few
/// headers, not on these, so one request carrying an override could have an origin answer for
/// another resource, method or host stored under an innocent key and served to everyone (cache
/// poisoning through unkeyed inputs); and on private requests they let a client forge what the
/// edge vouches for. The edge sets its own `X-Forwarded-Host` after the rules.
///
/// Exact names, each with the software that honours it:
pub const ROUTING_OVERRIDES: [&str; 14] = [
    // Rewrite the path: IIS URL Rewrite, Symfony and Laravel (`X-Original-URL`,
    // `X-Rewrite-URL`), nginx `auth_request` setups and some frameworks (`X-Original-URI`).
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    // Rewrite the method, so a cached `GET` runs as a `POST` or `DELETE` at the origin: Rails,
    // Express `method-override`, ASP.NET Web API, Symfony, Google APIs.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
    // RFC 7239: host, proto, for and by in one header, read by many reverse-proxy aware stacks.
    "forwarded",
    // Rewrite the host (absolute links, redirects, tenant selection, password-reset links).
    "x-host",
    "x-original-host",
    "x-http-host-override",
    // Rewrite the scheme (redirect loops to https, `http://` links): ASP.NET, Rack, Django.
    "front-end-https",
    "x-url-scheme",
    // The client address, which the origin takes from `Breakwater-Principal`, never from the
    // client.
    "x-real-ip",
];

/// Every `X-Forwarded-*` header (`-For`, `-Host`, `-Proto`, `-Port`, `-Prefix`, `-Server`,
/// `-Scheme`, `-Ssl`, `-Uri`, `-Path`, ...) is a proxy's statement about the request; from a
/// client it is a forgery of one, so the whole family is an override.
pub const FORWARDED_PREFIX: &str = "x-forwarded-";

/// True for a request header the edge drops from every client request it forwards: one of
/// [`ROUTING_OVERRIDES`], or any `X-Forwarded-*` ([`FORWARDED_PREFIX`]). Case-insensitive.
pub fn is_routing_override(name: &str) -> bool {
    let name = name.trim();
    ROUTING_OVERRIDES
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
        || name
            .get(..FORWARDED_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(FORWARDED_PREFIX))
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

    #[test]
    fn routing_overrides_are_recognised_in_any_case() {
        // (header, why it must not reach the origin from a client)
        let table = [
            ("X-Original-URL", "path rewrite (IIS, Symfony, Laravel)"),
            ("X-Rewrite-URL", "path rewrite (IIS, Symfony)"),
            ("X-Original-URI", "path rewrite (nginx auth_request setups)"),
            (
                "X-HTTP-Method-Override",
                "method override (Rails, Express, Google APIs)",
            ),
            ("X-HTTP-Method", "method override (ASP.NET, Symfony)"),
            ("X-Method-Override", "method override (ASP.NET Web API)"),
            ("X-Original-Method", "method override (rewrite setups)"),
            ("Forwarded", "RFC 7239 host, proto and client"),
            ("X-Host", "host override"),
            ("X-Original-Host", "host override"),
            ("X-HTTP-Host-Override", "host override"),
            ("Front-End-Https", "scheme override (ASP.NET)"),
            ("X-Url-Scheme", "scheme override"),
            ("X-Real-IP", "client address override"),
            ("X-Forwarded-Host", "host override"),
            ("X-Forwarded-Proto", "scheme override"),
            ("X-Forwarded-Scheme", "scheme override"),
            ("X-Forwarded-Ssl", "scheme override"),
            ("X-Forwarded-For", "client address override"),
            ("X-Forwarded-Port", "port override (absolute links)"),
            (
                "X-Forwarded-Prefix",
                "path prefix override (Spring, ASP.NET)",
            ),
            ("X-Forwarded-Server", "host override"),
            ("x-forwarded-uri", "path override (Traefik forward-auth)"),
        ];
        for (name, why) in table {
            assert!(is_routing_override(name), "{name}: {why}");
            assert!(is_routing_override(&name.to_ascii_uppercase()), "{name}");
        }
        for name in ROUTING_OVERRIDES {
            assert!(
                table.iter().any(|(t, _)| t.eq_ignore_ascii_case(name)),
                "{name} has no row saying why"
            );
        }
    }

    #[test]
    fn ordinary_and_edge_headers_are_not_overrides() {
        for name in [
            "accept",
            "accept-language",
            "range",
            "if-none-match",
            "authorization",
            "x-request-id",
            "traceparent",
            "breakwater-principal",
            "x-forwarded",
            "x-forward-for",
            "x-hostname",
            "forwarded-for",
            "cf-connecting-ip",
        ] {
            assert!(!is_routing_override(name), "{name}");
        }
    }

    #[test]
    fn field_values_per_rfc9110_5_5() {
        #[rustfmt::skip]
        let cases = [
            ("text/html; charset=utf-8", true), ("a\tb", true), ("", true), ("caf\u{e9}", true),
            ("a\u{1}b", false), ("a\rb", false), ("a\nb", false), ("a\0b", false), ("a\u{7f}", false),
        ];
        for (value, valid) in cases {
            assert_eq!(is_field_value(value), valid, "{value:?}");
        }
    }
}
