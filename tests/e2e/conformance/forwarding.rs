//! What the origin receives on a fill (RFC 9110 §7.6, §7.6.1, §7.6.3), read from the heads the
//! scripted origin recorded: end-to-end fields reach it as the client sent them; hop-by-hop and
//! Connection-named fields do not; routing and override fields a client could use to poison the
//! cache (X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, X-Forwarded-*) are not passed on
//! as sent. The poisoning row fills the cache with X-Forwarded-Host: evil.example while the origin
//! echoes that field into its body; a clean request afterwards must not see it.

use super::{Case, Field, case, get, ok, step};

const ECHO: &str = "xfh={req:x-forwarded-host}";

/// A single fill carrying `header`; the origin must receive `want` for `field`.
fn fill(
    name: &'static str,
    clause: &'static str,
    header: (&str, &str),
    field: &str,
    want: Field,
) -> Case {
    case(name, clause).answer(ok("max-age=100", "v1")).step(
        get()
            .h(header.0, header.1)
            .status(200)
            .miss()
            .sent_is(field, want),
    )
}

fn reaches(name: &'static str, header: (&str, &str)) -> Case {
    let field = header.0.to_ascii_lowercase();
    fill(
        name,
        "RFC 9110 §7.6 (an intermediary forwards end-to-end fields)",
        header,
        &field,
        Field::Is(header.1.to_owned()),
    )
}

fn not_as_sent(name: &'static str, header: (&str, &str)) -> Case {
    let field = header.0.to_ascii_lowercase();
    fill(
        name,
        "RFC 9111 §7.1 (cache poisoning); RFC 9110 §7.6",
        header,
        &field,
        Field::Not(header.1.to_owned()),
    )
    .note("these fields are not hop-by-hop in RFC 9110, but a shared cache that keys without them must not let a client steer the origin with them (the web cache poisoning class)")
}

pub fn cases() -> Vec<Case> {
    vec![
        reaches("accept_reaches_origin", ("Accept", "application/json")),
        reaches("accept_language_reaches_origin", ("Accept-Language", "de-CH")),
        reaches("user_agent_reaches_origin", ("User-Agent", "conformance/1")),
        reaches("x_custom_reaches_origin", ("X-Custom", "1")),
        reaches("range_reaches_origin", ("Range", "bytes=0-4"))
            .note("a cache MAY fetch the whole representation instead (RFC 9111 §3.4); forwarding Range on a miss is what nginx and Varnish (without slicing) do"),
        reaches("if_none_match_reaches_origin", ("If-None-Match", "\"abc\"")),
        reaches("unquoted_if_none_match_unchanged", ("If-None-Match", "abc")),
        reaches("if_modified_since_reaches_origin", ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")),
        reaches("if_match_reaches_origin", ("If-Match", "\"abc\"")),
        reaches("authorization_reaches_origin", ("Authorization", "Bearer conformance")),
        reaches("cookie_reaches_origin", ("Cookie", "session=1")),
        case("query_reaches_origin", "RFC 9110 §7.1 (the target URI is forwarded)")
            .answer(ok("max-age=100", "v1"))
            .step(get().query("?b=2&a=1").status(200).miss().sent_line("GET /c/w/query_reaches_origin?b=2&a=1 ")),
        case("post_reaches_origin_with_its_fields", "RFC 9110 §7.6, §9.3.3")
            .answer(ok("no-store", "posted"))
            .step(
                step("POST")
                    .h("Content-Type", "application/x-conformance")
                    .send_body("payload")
                    .status(200)
                    .miss()
                    .sent_line("POST ")
                    .sent("content-type", "application/x-conformance")
                    .sent("content-length", "7"),
            ),
        fill(
            "connection_named_field_not_forwarded",
            "RFC 9110 §7.6.1 (remove fields named by Connection)",
            ("Connection", "x-hop"),
            "connection",
            Field::Not("x-hop".into()),
        ),
        fill("keep_alive_not_forwarded", "RFC 9110 §7.6.1 (hop-by-hop)", ("Keep-Alive", "timeout=5"), "keep-alive", Field::Not("timeout=5".into())),
        fill("proxy_connection_not_forwarded", "RFC 9110 §7.6.1 (Proxy-Connection)", ("Proxy-Connection", "keep-alive"), "proxy-connection", Field::Absent),
        fill("te_not_forwarded", "RFC 9110 §7.6.1, §10.1.4 (TE is hop-by-hop)", ("TE", "trailers, deflate"), "te", Field::Not("trailers, deflate".into())),
        not_as_sent("x_original_url_not_forwarded", ("X-Original-URL", "/admin")),
        not_as_sent("x_rewrite_url_not_forwarded", ("X-Rewrite-URL", "/admin")),
        not_as_sent("x_http_method_override_not_forwarded", ("X-HTTP-Method-Override", "DELETE")),
        not_as_sent("x_forwarded_for_not_as_sent", ("X-Forwarded-For", "203.0.113.9")),
        fill(
            "x_forwarded_host_is_the_edge_host",
            "RFC 9111 §7.1; RFC 7239 §5.3 (the host the edge received)",
            ("X-Forwarded-Host", "evil.example"),
            "x-forwarded-host",
            Field::Is("{edge_host}".into()),
        ),
        case("x_forwarded_host_poisoning", "RFC 9111 §7.1 (cache poisoning)")
            .answer(ok("max-age=100", ECHO))
            .step(get().h("X-Forwarded-Host", "evil.example").status(200))
            .step(get().status(200).body_is(super::Body::Lacks("evil.example".into()))),
        case("via_sent", "RFC 9110 §7.6.3 (a gateway MUST send Via in each inbound request)")
            .answer(ok("max-age=100", "v1"))
            .step(get().status(200).miss().sent_is("via", Field::Present)),
        case("max_forwards_untouched_on_get", "RFC 9110 §7.6.2 (Max-Forwards concerns TRACE and OPTIONS only)")
            .answer(ok("max-age=100", "v1"))
            .step(get().h("Max-Forwards", "5").status(200).miss().sent("max-forwards", "5")),
    ]
}
