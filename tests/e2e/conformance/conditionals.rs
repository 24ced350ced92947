//! Validation (RFC 9111 §4.3) and conditional requests (RFC 9110 §13): a stale entry is
//! revalidated with its validators, a 304 freshens and updates it (§4.3.4), a 304 that selects
//! nothing leads to a full fetch; a client's own conditional is answered from a fresh entry
//! (§4.3.2) with the weak comparison If-None-Match uses, If-Modified-Since is ignored beside
//! If-None-Match, and a revalidation answered 304 never ends in a 5xx.

use super::{Case, Field, aged, case, get, ok};
use crate::scripted::{Answer, Length, http_date};

fn not_modified(etag: Option<&str>) -> Answer {
    let a = Answer::new(304)
        .h("Date", "{now}")
        .h("Cache-Control", "max-age=100");
    match etag {
        Some(e) => a.h("ETag", e),
        None => a,
    }
}

/// A fresh stored answer with `etag`, then a client conditional.
fn client_inm(
    name: &'static str,
    clause: &'static str,
    etag: &str,
    inm: &str,
    statuses: &[u16],
) -> Case {
    case(name, clause)
        .answer(ok("max-age=100", "v1").h("ETag", etag))
        .answer(ok("no-store", "v2"))
        .step(get().status(200).miss().body("v1"))
        .step(
            get()
                .h("If-None-Match", inm)
                .statuses(statuses)
                .hit()
                .body_if(304, super::Body::Empty)
                .body_if(200, super::Body::Is(b"v1".to_vec())),
        )
}

pub fn cases() -> Vec<Case> {
    let lm = http_date(-86_400);
    vec![
        case("stale_etag_sends_if_none_match", "RFC 9111 §4.3.1")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"e1\""))
            .answer(not_modified(Some("\"e1\"")))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).origin_count(1).sent("if-none-match", "\"e1\"").body("v1")),
        case("not_modified_updates_stored_fields", "RFC 9111 §4.3.4")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"e2\"").h("X-Version", "1"))
            .answer(not_modified(Some("\"e2\"")).h("X-Version", "2"))
            .step(get().status(200).miss().field("x-version", "1"))
            .step(get().status(200).origin_count(1).field("x-version", "2").body("v1"))
            .step(get().status(200).hit().field("x-version", "2").body("v1")),
        case("stale_last_modified_sends_if_modified_since", "RFC 9111 §4.3.1, §4.3.4")
            .answer(aged(100, "max-age=50", "v1").h("Last-Modified", &lm))
            .answer(not_modified(None).h("Last-Modified", &lm))
            .step(get().status(200).miss())
            .step(get().status(200).origin_count(1).sent("if-modified-since", &lm).not_sent("if-none-match").body("v1"))
            .step(get().status(200).hit().body("v1")),
        // §4.3.4 selects a stored response for a validator-less 304 only if it lacks validators
        // too: this one has an ETag, so nothing is selected and the cache needs the whole answer.
        case("not_modified_without_validators_selects_nothing", "RFC 9111 §4.3.4")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"e3\""))
            .answer(not_modified(None))
            .answer(ok("max-age=100", "v3").h("ETag", "\"e3b\""))
            .step(get().status(200).miss())
            .step(get().status(200).origin_count(2).sent("if-none-match", "\"e3\"").body("v3"))
            .step(get().status(200).hit().body("v3")),
        case("not_modified_other_etag_refetches", "RFC 9111 §4.3.4 (a 304 selecting nothing updates nothing)")
            .note("with nothing selected the cache cannot answer from storage; it repeats the request unconditionally (or forwards an error): this row expects the refetch")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"e4\""))
            .answer(not_modified(Some("\"other\"")))
            .answer(ok("max-age=100", "v3").h("ETag", "\"e4b\""))
            .step(get().status(200).miss())
            .step(get().status(200).origin_count(2).sent("if-none-match", "\"e4\"").body("v3")),
        case("revalidation_200_replaces", "RFC 9111 §4.3.3")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"e5\""))
            .answer(ok("max-age=100", "v2").h("ETag", "\"e5b\""))
            .step(get().status(200).miss())
            .step(get().status(200).origin_count(1).body("v2"))
            .step(get().status(200).hit().body("v2").field("etag", "\"e5b\"")),
        case("revalidation_304_never_5xx", "RFC 9111 §4.3.3, §4.3.4; RFC 9110 §8.6 (a 304's Content-Length is the representation's)")
            .answer(aged(100, "max-age=50", "0123456789").h("ETag", "\"e6\""))
            .answer(not_modified(Some("\"e6\"")).length(Length::Claim(10)))
            .step(get().status(200).miss())
            .step(get().status(200).origin_count(1).body("0123456789"))
            .step(get().status(200).hit().body("0123456789")),
        case("client_inm_matches_fresh_entry", "RFC 9111 §4.3.2; RFC 9110 §15.4.5")
            .answer(ok("max-age=100", "v1").h("ETag", "\"c1\""))
            .step(get().status(200).miss())
            .step(
                get()
                    .h("If-None-Match", "\"c1\"")
                    .status(304)
                    .hit()
                    .field("etag", "\"c1\"")
                    .present("cache-control")
                    .present("date")
                    .empty_body(),
            ),
        client_inm("client_inm_other_etag_gets_200", "RFC 9110 §13.1.2", "\"c2\"", "\"zz\"", &[200]),
        client_inm("client_inm_list_matches", "RFC 9110 §13.1.2", "\"c3\"", "\"zz\", \"c3\"", &[304]),
        client_inm("client_inm_star_matches", "RFC 9110 §13.1.2 (* matches any current representation)", "\"c4\"", "*", &[304]),
        client_inm("weak_stored_weak_client", "RFC 9110 §8.8.3.2 (If-None-Match uses the weak comparison)", "W/\"c5\"", "W/\"c5\"", &[304]),
        client_inm("weak_stored_strong_client", "RFC 9110 §8.8.3.2, §13.1.2", "W/\"c6\"", "\"c6\"", &[304]),
        client_inm("strong_stored_weak_client", "RFC 9110 §8.8.3.2, §13.1.2", "\"c7\"", "W/\"c7\"", &[304]),
        client_inm("lower_case_weak_prefix", "RFC 9110 §8.8.3 (W/ is case-sensitive: w/\"x\" is not an entity-tag)", "w/\"c8\"", "w/\"c8\"", &[200, 304])
            .note("an invalid stored ETag: comparing it as an opaque string (304) or not at all (200) are both defensible; never the origin, never a 5xx"),
        client_inm("weak_prefix_without_slash", "RFC 9110 §8.8.3", "W\"c9\"", "W\"c9\"", &[200, 304])
            .note("invalid entity-tag: 200 or 304 accepted, never the origin, never a 5xx"),
        client_inm("unquoted_etag", "RFC 9110 §8.8.3", "abcdef", "abcdef", &[200, 304])
            .note("invalid entity-tag (unquoted): 200 or 304 accepted, never the origin, never a 5xx"),
        case("ims_ignored_with_inm", "RFC 9110 §13.1.3 (IMS is ignored when If-None-Match is present)")
            .answer(ok("max-age=100", "v1").h("ETag", "\"c10\"").h("Last-Modified", &lm))
            .step(get().status(200).miss())
            .step(get().h("If-None-Match", "\"zz\"").h("If-Modified-Since", &http_date(0)).status(200).hit().body("v1")),
        case("ims_later_than_last_modified", "RFC 9111 §4.3.2; RFC 9110 §13.1.3")
            .answer(ok("max-age=100", "v1").h("Last-Modified", &lm))
            .step(get().status(200).miss())
            .step(get().h("If-Modified-Since", &http_date(-60)).status(304).hit().empty_body()),
        case("ims_earlier_than_last_modified", "RFC 9110 §13.1.3")
            .answer(ok("max-age=100", "v1").h("Last-Modified", &lm))
            .step(get().status(200).miss())
            .step(get().h("If-Modified-Since", &http_date(-2 * 86_400)).status(200).hit().body("v1")),
        case("ims_invalid_date_ignored", "RFC 9110 §13.1.3 (an invalid date: ignore the field)")
            .answer(ok("max-age=100", "v1").h("Last-Modified", &lm))
            .step(get().status(200).miss())
            .step(get().h("If-Modified-Since", "yesterday").status(200).hit().body("v1")),
        case("client_conditional_on_miss_relays_304", "RFC 9111 §4.3.2 (a conditional the cache cannot answer goes to the origin)")
            .answer(not_modified(Some("\"c11\"")))
            .step(get().h("If-None-Match", "\"c11\"").status(304).miss().sent("if-none-match", "\"c11\"").empty_body()),
        case("stale_entry_client_inm_revalidates", "RFC 9111 §4.3.2 (a stale entry is validated first)")
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"c12\""))
            .answer(not_modified(Some("\"c12\"")))
            .step(get().status(200).miss())
            .step(get().h("If-None-Match", "\"c12\"").status(304).origin_count(1).sent_is("if-none-match", Field::Contains("\"c12\"".into()))),
    ]
}
