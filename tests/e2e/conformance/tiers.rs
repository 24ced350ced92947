//! The same requirements on a route whose entries also go to the Cache API (`/cx/`): a lower
//! tier must not change what is reused, stored or refused, nor lose variants or validators.

use super::{Case, aged, case, get, ok};
use crate::scripted::Answer;

pub fn cases() -> Vec<Case> {
    vec![
        case("max_age_fresh", "RFC 9111 §4.2.1")
            .tiers()
            .answer(ok("max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).hit().body("v1")),
        case("stale_not_reused", "RFC 9111 §4.2")
            .tiers()
            .answer(aged(100, "max-age=50", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss().body("v1"))
            .step(get().status(200).miss().body("v2")),
        case("no_store_not_stored", "RFC 9111 §5.2.2.5")
            .tiers()
            .answer(ok("no-store, max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss())
            .step(get().status(200).miss().body("v2")),
        case("private_not_stored", "RFC 9111 §5.2.2.7")
            .tiers()
            .answer(ok("private, max-age=100", "v1"))
            .answer(ok("no-store", "v2"))
            .step(get().status(200).miss())
            .step(get().status(200).miss().body("v2")),
        case("variants_side_by_side", "RFC 9111 §4.1")
            .tiers()
            .answer(ok("max-age=100", "lang={req:accept-language}").h("Vary", "Accept-Language"))
            .step(
                get()
                    .h("Accept-Language", "en")
                    .status(200)
                    .miss()
                    .body("lang=en"),
            )
            .step(
                get()
                    .h("Accept-Language", "fr")
                    .status(200)
                    .miss()
                    .body("lang=fr"),
            )
            .step(
                get()
                    .h("Accept-Language", "en")
                    .status(200)
                    .hit()
                    .body("lang=en"),
            )
            .step(
                get()
                    .h("Accept-Language", "fr")
                    .status(200)
                    .hit()
                    .body("lang=fr"),
            ),
        case("revalidated_with_etag", "RFC 9111 §4.3.1, §4.3.4")
            .tiers()
            .answer(aged(100, "max-age=50", "v1").h("ETag", "\"t1\""))
            .answer(
                Answer::new(304)
                    .h("Date", "{now}")
                    .h("ETag", "\"t1\"")
                    .h("Cache-Control", "max-age=100"),
            )
            .step(get().status(200).miss())
            .step(
                get()
                    .status(200)
                    .origin_count(1)
                    .sent("if-none-match", "\"t1\"")
                    .body("v1"),
            )
            .step(get().status(200).hit().body("v1")),
        case("status_404_stored", "RFC 9111 §3")
            .tiers()
            .answer(super::answer(404, "max-age=100", "gone"))
            .step(get().status(404).miss())
            .step(get().status(404).hit().body("gone")),
        case("s_maxage_over_max_age", "RFC 9111 §5.2.2.10")
            .tiers()
            .answer(ok("max-age=0, s-maxage=100", "v1"))
            .step(get().status(200).miss())
            .step(get().status(200).hit().body("v1")),
    ]
}
