//! Range requests on a stored full response (RFC 9110 §14, RFC 9111 §3.4, §4.3.2): a fresh
//! stored 200 of a 10-byte body answers byte ranges itself (206 with Content-Range), an
//! unsatisfiable range with 416 and `bytes */10`, an unknown unit or a failed If-Range with the
//! whole 200; a Range on a miss reaches the origin and its 206 is relayed but not taken for the
//! whole representation.

use super::{Case, aged, case, get, ok};
use crate::scripted::http_date;

const BODY: &str = "0123456789";
const RANGE_NOTE: &str = "a server MAY ignore Range (RFC 9110 §14.2); established shared caches (nginx, Varnish, Cloudflare, Fastly) answer ranges of a stored full response themselves";

/// A fresh full answer stored first, then `range` from the cache.
fn ranged(name: &'static str, range: &str, content_range: &str, part: &str) -> Case {
    case(name, "RFC 9110 §14.2, §15.3.7; RFC 9111 §4")
        .note(RANGE_NOTE)
        .answer(ok("max-age=100", BODY).h("ETag", "\"r1\""))
        .step(get().status(200).miss().body(BODY))
        .step(
            get()
                .h("Range", range)
                .status(206)
                .hit()
                .field("content-range", content_range)
                .field("content-length", &part.len().to_string())
                .body(part),
        )
}

fn stored_then(
    name: &'static str,
    clause: &'static str,
    first: crate::scripted::Answer,
    then: super::Step,
) -> Case {
    case(name, clause)
        .answer(first)
        .step(get().status(200).miss().body(BODY))
        .step(then)
}

pub fn cases() -> Vec<Case> {
    let lm = http_date(-86_400);
    vec![
        ranged("first_five_bytes", "bytes=0-4", "bytes 0-4/10", "01234"),
        ranged("open_ended", "bytes=5-", "bytes 5-9/10", "56789"),
        ranged("suffix", "bytes=-3", "bytes 7-9/10", "789"),
        ranged("single_byte", "bytes=0-0", "bytes 0-0/10", "0"),
        ranged("last_past_the_end_is_clamped", "bytes=2-100", "bytes 2-9/10", "23456789"),
        stored_then(
            "unsatisfiable_is_416",
            "RFC 9110 §14.2, §15.5.17",
            ok("max-age=100", BODY),
            get().h("Range", "bytes=20-").status(416).hit().field("content-range", "bytes */10"),
        )
        .note(RANGE_NOTE),
        stored_then(
            "multiple_ranges_whole_or_partial",
            "RFC 9110 §14.2 (MAY ignore, or coalesce, or multipart)",
            ok("max-age=100", BODY),
            get().h("Range", "bytes=0-1,3-4").statuses(&[200, 206]).hit().body_if(200, super::Body::Is(BODY.as_bytes().to_vec())),
        )
        .note("200 with the whole body or a 206 (multipart or coalesced) are both accepted; the origin is not needed"),
        stored_then(
            "unknown_unit_gets_the_whole",
            "RFC 9110 §14.2 (an unknown range unit is ignored)",
            ok("max-age=100", BODY),
            get().h("Range", "items=0-4").status(200).hit().body(BODY).absent("content-range"),
        ),
        stored_then(
            "invalid_range_gets_the_whole",
            "RFC 9110 §14.2 (an invalid ranges-specifier is ignored)",
            ok("max-age=100", BODY),
            get().h("Range", "bytes=4-1").statuses(&[200, 416]).hit().body_if(200, super::Body::Is(BODY.as_bytes().to_vec())),
        )
        .note("bytes=4-1 is invalid (last < first): ignoring it (200) is the RFC's rule; 416 is tolerated as some servers do"),
        stored_then(
            "if_range_matching_etag",
            "RFC 9110 §13.1.5",
            ok("max-age=100", BODY).h("ETag", "\"r2\""),
            get().h("Range", "bytes=0-4").h("If-Range", "\"r2\"").status(206).hit().body("01234"),
        )
        .note(RANGE_NOTE),
        stored_then(
            "if_range_other_etag_gets_the_whole",
            "RFC 9110 §13.1.5",
            ok("max-age=100", BODY).h("ETag", "\"r3\""),
            get().h("Range", "bytes=0-4").h("If-Range", "\"other\"").status(200).hit().body(BODY),
        ),
        stored_then(
            "if_range_weak_etag_gets_the_whole",
            "RFC 9110 §13.1.5 (If-Range uses the strong comparison)",
            ok("max-age=100", BODY).h("ETag", "W/\"r4\""),
            get().h("Range", "bytes=0-4").h("If-Range", "W/\"r4\"").status(200).hit().body(BODY),
        ),
        stored_then(
            "if_range_matching_date",
            "RFC 9110 §13.1.5 (a strong Last-Modified: a second or more before Date)",
            ok("max-age=100", BODY).h("Last-Modified", &lm),
            get().h("Range", "bytes=0-4").h("If-Range", &lm).status(206).hit().body("01234"),
        )
        .note(RANGE_NOTE),
        case("range_on_a_miss", "RFC 9111 §3.4 (a 206 is not the whole representation)")
            .note("forwarding the Range (rather than fetching the whole) is the brief's choice; either way the next full GET must not get the part")
            .answer(super::answer(206, "max-age=100", "01234").h("Content-Range", "bytes 0-4/10").h("ETag", "\"r5\""))
            .answer(ok("max-age=100", BODY).h("ETag", "\"r5\""))
            .step(get().h("Range", "bytes=0-4").status(206).miss().sent("range", "bytes=0-4").field("content-range", "bytes 0-4/10").body("01234"))
            .step(get().status(200).miss().body(BODY)),
        case("range_on_a_stale_entry", "RFC 9111 §4.3 (validate, then answer the range)")
            .answer(aged(100, "max-age=50", BODY).h("ETag", "\"r6\""))
            .answer(super::answer(304, "max-age=100", "").h("ETag", "\"r6\""))
            .step(get().status(200).miss().body(BODY))
            .step(get().h("Range", "bytes=0-4").statuses(&[200, 206]).miss().body_if(206, super::Body::Is(b"01234".to_vec())).body_if(200, super::Body::Is(BODY.as_bytes().to_vec())))
            .note("after a 304 the cache answers from its entry: a 206 of it, or the whole 200 (RFC 9110 §14.2 MAY ignore)"),
    ]
}
