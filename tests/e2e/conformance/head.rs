//! HEAD (RFC 9110 §9.3.2, RFC 9111 §4.3.5): a stored GET answers HEAD without a body and without
//! the origin; a HEAD miss is forwarded and does not become the stored answer to GET; a HEAD 200
//! whose validator matches the stored response updates the stored header fields.

use super::{Body, Case, aged, case, get, head, ok};

pub fn cases() -> Vec<Case> {
    vec![
        case("head_on_a_stored_get", "RFC 9111 §4; RFC 9110 §9.3.2")
            .answer(ok("max-age=100", "v1").h("ETag", "\"h1\""))
            .step(get().status(200).miss().body("v1"))
            .step(head().status(200).hit().field("etag", "\"h1\"").empty_body()),
        case("head_on_a_miss_is_forwarded", "RFC 9110 §9.3.2")
            .note("a cache MAY fill with a GET instead of the HEAD; either way the client gets no body")
            .answer(ok("max-age=100", "v1"))
            .step(head().status(200).miss().empty_body()),
        case("head_answer_not_used_for_get", "RFC 9111 §4 (a HEAD response has no content to serve a GET)")
            .answer(ok("max-age=100", "v1"))
            .answer(ok("max-age=100", "v2"))
            .step(head().status(200).miss().sent_line("HEAD ").empty_body())
            .step(get().status(200).miss().body("v2")),
        case("head_updates_the_stored_fields", "RFC 9111 §4.3.5")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"h2\"").h("X-Version", "1"))
            // A HEAD answer advertises the length a GET would have (RFC 9110 §8.6): the script's
            // body sets Content-Length; the scripted origin sends no body to a HEAD.
            .answer(ok("max-age=100", "v1").h("ETag", "\"h2\"").h("X-Version", "2"))
            .answer(ok("no-store", "v3"))
            .step(get().status(200).miss().field("x-version", "1"))
            .step(head().status(200).miss().field("x-version", "2"))
            .step(get().status(200).hit().field("x-version", "2").body("v1")),
        case("get_hit_keeps_content_length", "RFC 9110 §8.6")
            .answer(ok("max-age=100", "0123456789"))
            .step(get().status(200).miss())
            .step(get().status(200).hit().field("content-length", "10").body("0123456789")),
        case("head_hit_keeps_content_length", "RFC 9110 §8.6 (HEAD may send the Content-Length a GET would)")
            .answer(ok("max-age=100", "0123456789"))
            .step(get().status(200).miss())
            .step(head().status(200).hit().body_is(Body::Empty).field_is("content-length", super::Field::Not("0".into()))),
    ]
}
