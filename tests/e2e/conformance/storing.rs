//! Storing and reuse (RFC 9111 §3, §3.5, §4, §5.2): which responses a shared cache may store
//! (any final status with explicit freshness; not no-store, private, 206 to a full request, POST),
//! which request directives change that (no-store, no-cache, max-age, min-fresh, only-if-cached),
//! and credentials: Authorization (§3.5) and, by judgement, Cookie and Set-Cookie.

use super::{Case, answer, case, get, ok, step};
use crate::scripted::{Answer, Length, http_date};

/// `status` with `max-age=100` is stored and reused.
fn stored_status(name: &'static str, status: u16) -> Case {
    let mut first = answer(status, "max-age=100", "v1");
    if (300..400).contains(&status) {
        first = first.h("Location", "/elsewhere");
    }
    let body = if status == 204 { "" } else { "v1" };
    case(
        name,
        "RFC 9111 §3 (any final status with explicit freshness)",
    )
    .answer(first)
    .answer(ok("no-store", "v2"))
    .step(get().status(status).miss().body(body))
    .step(get().status(status).hit().body(body))
}

/// Stored (the second plain request is a hit) or not (it reaches the origin).
fn stores(name: &'static str, clause: &'static str, first: Answer, stored: bool) -> Case {
    let c = case(name, clause)
        .answer(first)
        .answer(ok("no-store", "v2"))
        .step(get().status(200).miss().body("v1"));
    if stored {
        c.step(get().status(200).hit().body("v1"))
    } else {
        c.step(get().status(200).miss().body("v2"))
    }
}

/// The fill is made by a request carrying `header`; the next plain request shows whether the
/// answer was stored.
fn filled_with(
    name: &'static str,
    clause: &'static str,
    header: (&str, &str),
    cc: &str,
    stored: bool,
) -> Case {
    let c = case(name, clause)
        .answer(ok(cc, "v1"))
        .answer(ok("no-store", "v2"))
        .step(get().h(header.0, header.1).status(200).miss().body("v1"));
    if stored {
        c.step(get().status(200).hit().body("v1"))
    } else {
        c.step(get().status(200).miss().body("v2"))
    }
}

const COOKIE_NOTE: &str = "RFC 9111 says nothing of Cookie; like Fastly's and Cloudflare's defaults, an answer to a request with a Cookie is shared only when the origin says so (public, s-maxage, must-revalidate), as §3.5 asks for Authorization";

pub fn cases() -> Vec<Case> {
    vec![
        stored_status("status_404_stored", 404),
        stored_status("status_410_stored", 410),
        stored_status("status_500_stored", 500),
        stored_status("status_503_stored", 503),
        stored_status("status_204_stored", 204),
        stored_status("status_301_stored", 301),
        stored_status("status_302_stored", 302),
        stored_status("status_307_stored", 307),
        stored_status("status_308_stored", 308),
        stored_status("status_400_stored", 400),
        stored_status("status_403_stored", 403),
        stored_status("status_203_stored", 203),
        stores("unsized_body_stored", "RFC 9112 §6.3 (a body delimited by closing the connection is whole)", ok("max-age=100", "v1").length(Length::None), true),
        stores(
            "unsized_heuristic_stored",
            "RFC 9111 §4.2.2 (an origin that sends no Content-Length)",
            Answer::new(200)
                .h("Date", "{now}")
                .h("Last-Modified", &http_date(-864_000))
                .body("v1")
                .length(Length::None),
            true,
        ),
        case("unsized_body_over_the_limit_relayed_whole", "RFC 9111 §3 (a cache MAY decline to store); RFC 9112 §6.3")
            .note("the edge buffers at most 1 MiB to store; a longer unsized body is relayed whole, unstored")
            .answer(ok("max-age=100", &"x".repeat(1024 * 1024 + 10)).length(Length::None))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body(&"x".repeat(1024 * 1024 + 10)))
            .step(get().status(200).miss().body("v2")),
        stores("no_store_not_stored", "RFC 9111 §5.2.2.5", ok("no-store, max-age=100", "v1"), false),
        stores("private_not_stored", "RFC 9111 §5.2.2.7 (a shared cache MUST NOT store)", ok("private, max-age=100", "v1"), false),
        stores("private_upper_case_not_stored", "RFC 9111 §5.2 (case-insensitive), §5.2.2.7", ok("PRIVATE, max-age=100", "v1"), false),
        case("private_field_stored_without_it", "RFC 9111 §5.2.2.7 (qualified private)")
            .note("the qualified form lets a shared cache store the rest (MAY); the row expects that, and the named field gone")
            .answer(ok("private=\"x-secret\", max-age=100", "v1").h("X-Secret", "s3cr3t").h("X-Public", "p"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).hit().body("v1").absent("x-secret").field("x-public", "p")),
        case("no_cache_stored_but_revalidated", "RFC 9111 §5.2.2.4")
            .answer(ok("no-cache, max-age=100", "v1").h("ETag", "\"nc1\""))
            .answer(Answer::new(304).h("Date", "{now}").h("ETag", "\"nc1\"").h("Cache-Control", "no-cache, max-age=100"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).origin_count(1).sent("if-none-match", "\"nc1\"").body("v1")),
        stores("no_cache_without_validator_refetched", "RFC 9111 §5.2.2.4", ok("no-cache, max-age=100", "v1"), false),
        stores("set_cookie_not_stored", "RFC 9111 §7.3 (judgement)", ok("max-age=100", "v1").h("Set-Cookie", "session=abc"), false)
            .note("RFC 9111 lets a cache store Set-Cookie answers; established shared caches (Varnish builtin, Fastly, Cloudflare, Akamai) do not store them without an explicit override, and this edge must not hand one client's cookie to another"),
        stores("must_understand_no_store_200_stored", "RFC 9111 §5.2.2.3 (understood status: no-store ignored)", ok("must-understand, no-store, max-age=100", "v1"), true),
        case("must_understand_unknown_status_not_stored", "RFC 9111 §5.2.2.3 (status not understood: no-store applies)")
            .answer(answer(299, "must-understand, no-store, max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(299).miss().body("v1"))
            .step(get().status(200).miss().body("v2")),
        stores("vary_star_not_reused", "RFC 9111 §4.1 (Vary: * never matches)", ok("max-age=100", "v1").h("Vary", "*"), false),
        case("partial_206_not_served_for_a_full_request", "RFC 9111 §3.3, §3.4")
            .answer(
                answer(206, "max-age=100", "01234")
                    .h("Content-Range", "bytes 0-4/10")
                    .h("ETag", "\"p1\""),
            )
            .answer(ok("max-age=100", "0123456789").h("ETag", "\"p1\""))
            .step(get().status(206).miss())
            .step(get().status(200).miss().body("0123456789")),
        filled_with("request_no_store_not_stored", "RFC 9111 §5.2.1.5", ("Cache-Control", "no-store"), "max-age=100", false),
        case("request_no_cache_revalidates", "RFC 9111 §5.2.1.4")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("max-age=100", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Cache-Control", "no-cache").status(200).miss().body("v2")),
        case("request_max_age_zero_revalidates", "RFC 9111 §5.2.1.1")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("max-age=100", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Cache-Control", "max-age=0").status(200).miss().body("v2")),
        case("request_min_fresh_beyond_lifetime", "RFC 9111 §5.2.1.3")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("max-age=100", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Cache-Control", "min-fresh=1000").status(200).miss().body("v2")),
        case("only_if_cached_miss_is_504", "RFC 9111 §5.2.1.7 (SHOULD 504)")
            .answer(ok("max-age=100", "v1"))
            .step(get().h("Cache-Control", "only-if-cached").status(504).hit()),
        case("only_if_cached_hit", "RFC 9111 §5.2.1.7")
            .answer(ok("max-age=100", "v1"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Cache-Control", "only-if-cached").status(200).hit().body("v1")),
        case("post_not_stored", "RFC 9111 §3 (POST needs explicit freshness and Content-Location)")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(step("POST").send_body("x").status(200).miss().sent_line("POST "))
            .step(get().status(200).miss().body("v2")),
        case("post_invalidates_the_stored_get", "RFC 9111 §4.4")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("no-store", "posted"))
            .answer(ok("max-age=100", "v3"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).hit().body("v1"))
            .step(step("POST").send_body("x").status(200).miss().body("posted"))
            .step(get().status(200).miss().body("v3")),
        case("delete_invalidates_the_stored_get", "RFC 9111 §4.4")
            .answer(ok("max-age=100", "v1"))
            .answer(answer(204, "no-store", ""))
            .answer(ok("max-age=100", "v3"))
            .step(get().status(200).miss().body("v1"))
            .step(step("DELETE").status(204).miss())
            .step(get().status(200).miss().body("v3")),
        filled_with("authorization_not_stored", "RFC 9111 §3.5", ("Authorization", "Bearer a"), "max-age=100", false),
        filled_with("authorization_public_stored", "RFC 9111 §3.5", ("Authorization", "Bearer a"), "public, max-age=100", true),
        filled_with("authorization_s_maxage_stored", "RFC 9111 §3.5", ("Authorization", "Bearer a"), "s-maxage=100", true),
        filled_with("authorization_must_revalidate_stored", "RFC 9111 §3.5", ("Authorization", "Bearer a"), "must-revalidate, max-age=100", true),
        case("authorization_request_does_not_read_plain_entry", "RFC 9111 §3.5")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Authorization", "Bearer a").status(200).miss().body("v2")),
        case("authorization_request_reads_public_entry", "RFC 9111 §3.5")
            .answer(ok("public, max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Authorization", "Bearer a").status(200).hit().body("v1")),
        case("cookie_request_reads_public_entry", "RFC 9111 §4 (Cookie is not a reason to bypass)")
            .note(COOKIE_NOTE)
            .answer(ok("public, max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().h("Cookie", "session=1").status(200).hit().body("v1")),
        filled_with("cookie_fill_not_stored", "RFC 9111 §3 (judgement)", ("Cookie", "session=1"), "max-age=100", false)
            .note(COOKIE_NOTE),
        filled_with("cookie_fill_public_stored", "RFC 9111 §3 (judgement)", ("Cookie", "session=1"), "public, max-age=100", true)
            .note(COOKIE_NOTE),
        filled_with("cookie_fill_s_maxage_stored", "RFC 9111 §3 (judgement)", ("Cookie", "session=1"), "s-maxage=100", true)
            .note(COOKIE_NOTE),
        filled_with("cookie_fill_must_revalidate_stored", "RFC 9111 §3 (judgement)", ("Cookie", "session=1"), "must-revalidate, max-age=100", true)
            .note(COOKIE_NOTE),
        case("hit_carries_age", "RFC 9111 §5.1 (a cache MUST send Age on a stored answer)")
            .answer(ok("max-age=100", "v1").h("Age", "30"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).hit().present("age").body("v1")),
        case("hit_keeps_origin_fields", "RFC 9111 §3.1 (store the header section)")
            .answer(ok("max-age=100", "v1").h("X-Custom", "kept").h("Content-Type", "text/x-conformance"))
            .step(get().status(200).miss())
            .step(get().status(200).hit().field("x-custom", "kept").field("content-type", "text/x-conformance")),
        case("hit_drops_hop_by_hop_fields", "RFC 9111 §3.1 (Connection-named fields are not stored)")
            .answer(ok("max-age=100", "v1").h("Connection", "x-hop-field").h("X-Hop-Field", "1"))
            .step(get().status(200).miss().absent("x-hop-field"))
            .step(get().status(200).hit().absent("x-hop-field")),
    ]
}
