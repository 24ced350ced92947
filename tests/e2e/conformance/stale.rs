//! Stale answers and origin errors (RFC 9111 §4.2.4, §4.3.3, §5.2.2.2; RFC 5861 §4): a stale
//! entry is served when the origin fails only if stale-if-error (the origin's or the client's)
//! allows it, never under must-revalidate or proxy-revalidate; a closed connection is answered
//! promptly (well within the 1500 ms origin timeout) with the stale entry or a 502; without
//! permission the origin's 5xx is relayed.

use super::{Body, Case, aged, case, get};
use crate::scripted::Answer;

fn error(status: u16) -> Answer {
    Answer::new(status)
        .h("Date", "{now}")
        .h("Cache-Control", "no-store")
        .body("origin-error")
}

fn closed() -> Answer {
    Answer::new(200).close_without_answer()
}

const STALE_SERVED: &str = "RFC 5861 §4";

pub fn cases() -> Vec<Case> {
    vec![
        case("stale_if_error_on_503", STALE_SERVED)
            .answer(aged(10, "max-age=1, stale-if-error=60", "v1"))
            .answer(error(503))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).miss().body("v1")),
        case("stale_if_error_on_500", STALE_SERVED)
            .answer(aged(10, "max-age=1, stale-if-error=60", "v1"))
            .answer(error(500))
            .step(get().status(200).miss())
            .step(get().status(200).miss().body("v1")),
        case("stale_if_error_on_a_closed_connection", "RFC 5861 §4; RFC 9111 §4.2.4 (disconnected)")
            .answer(aged(10, "max-age=1, stale-if-error=60", "v1"))
            .answer(closed())
            .step(get().status(200).miss())
            .step(get().status(200).miss().body("v1").within_ms(1000)),
        case("closed_connection_without_permission_is_502", "RFC 9110 §15.6.3; RFC 9111 §4.2.4")
            .note("§4.2.4 lets a disconnected cache serve stale (MAY); this edge only serves stale with stale-if-error, as Fastly and Cloudflare by default")
            .answer(aged(10, "max-age=1", "v1"))
            .answer(closed())
            .step(get().status(200).miss())
            .step(get().status(502).miss().body_is(Body::Lacks("v1".into())).within_ms(1000)),
        case("closed_connection_on_a_miss_is_502", "RFC 9110 §15.6.3")
            .answer(closed())
            .step(get().status(502).miss().within_ms(1000)),
        case("stale_if_error_window_passed", "RFC 5861 §4 (only within the window)")
            .answer(aged(100, "max-age=1, stale-if-error=10", "v1"))
            .answer(error(503))
            .step(get().status(200).miss())
            .step(get().status(503).miss().body("origin-error")),
        case("no_permission_relays_the_5xx", "RFC 9111 §4.2.4, §4.3.3")
            .answer(aged(10, "max-age=1", "v1"))
            .answer(error(503))
            .step(get().status(200).miss())
            .step(get().status(503).miss().body("origin-error")),
        case("client_stale_if_error", "RFC 5861 §4 (the request directive)")
            .answer(aged(10, "max-age=1", "v1"))
            .answer(error(503))
            .step(get().status(200).miss())
            .step(get().h("Cache-Control", "stale-if-error=60").status(200).miss().body("v1")),
        case("must_revalidate_no_stale_on_error", "RFC 9111 §5.2.2.2 (MUST NOT serve stale; 504 if unreachable)")
            .answer(aged(10, "max-age=1, must-revalidate", "v1"))
            .answer(closed())
            .step(get().status(200).miss())
            .step(get().statuses(&[502, 504]).miss().body_is(Body::Lacks("v1".into())).within_ms(1000)),
        case("must_revalidate_overrides_stale_if_error", "RFC 9111 §5.2.2.2; RFC 5861 §4 (must-revalidate wins)")
            .answer(aged(10, "max-age=1, must-revalidate, stale-if-error=60", "v1"))
            .answer(error(503))
            .step(get().status(200).miss())
            .step(get().statuses(&[502, 503, 504]).miss().body_is(Body::Lacks("v1".into()))),
        case("proxy_revalidate_no_stale_on_error", "RFC 9111 §5.2.2.8")
            .answer(aged(10, "max-age=1, proxy-revalidate, stale-if-error=60", "v1"))
            .answer(error(503))
            .step(get().status(200).miss())
            .step(get().statuses(&[502, 503, 504]).miss().body_is(Body::Lacks("v1".into()))),
        case("no_cache_always_revalidated", "RFC 9111 §5.2.2.4")
            .answer(super::ok("no-cache, max-age=100", "v1").h("ETag", "\"n1\""))
            .answer(Answer::new(304).h("Date", "{now}").h("ETag", "\"n1\"").h("Cache-Control", "no-cache, max-age=100"))
            .step(get().status(200).miss())
            .step(get().status(200).origin_count(1).body("v1"))
            .step(get().status(200).origin_count(1).body("v1"))
            .step(get().status(200).origin_count(1).body("v1")),
        case("stale_entry_refreshed_by_200", "RFC 9111 §4.3.3")
            .answer(aged(10, "max-age=1, stale-if-error=60", "v1"))
            .answer(super::ok("max-age=100", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).miss().body("v2"))
            .step(get().status(200).hit().body("v2")),
    ]
}
