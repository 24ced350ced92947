//! Freshness (RFC 9111 §4.2): explicit lifetimes (max-age, s-maxage, Expires − Date), their
//! invalid and duplicate forms, Age, and heuristic freshness from Last-Modified. A fresh entry is
//! served without contacting the origin; a stale one (without stale-* permission) is not.

use super::{Case, aged, case, get, ok};
use crate::scripted::{Answer, asctime_date, http_date, rfc850_date};

/// A response whose freshness the case is about, and a second answer with another body: a step
/// that reaches the origin again gets `v2`.
fn fresh_then_stale(name: &'static str, clause: &'static str, first: Answer, fresh: bool) -> Case {
    let c = case(name, clause)
        .answer(first)
        .answer(ok("no-store", "v2"))
        .step(get().status(200).miss().body("v1"));
    if fresh {
        c.step(get().status(200).hit().body("v1"))
    } else {
        c.step(get().status(200).miss().body("v2"))
    }
}

fn with(status: u16, fields: &[(&str, &str)]) -> Answer {
    let mut a = Answer::new(status);
    for (n, v) in fields {
        a = a.h(n, v);
    }
    a.body("v1")
}

/// Heuristic freshness: `status` with only `Last-Modified` ten days ago (10 % = a day).
fn heuristic(name: &'static str, status: u16, fresh: bool) -> Case {
    let lm = http_date(-10 * 86_400);
    let first = with(status, &[("Date", "{now}"), ("Last-Modified", &lm)]);
    // A 204 has no body.
    let body = if status == 204 { "" } else { "v1" };
    let c = case(name, "RFC 9111 §4.2.2")
        .answer(first)
        .answer(ok("no-store", "v2"))
        .step(get().status(status).miss().body(body));
    if fresh {
        c.note("heuristic freshness is a MAY; established shared caches (Squid, Apache httpd, Fastly) apply 10 % of the Last-Modified age to heuristically cacheable statuses")
            .step(get().status(status).hit().body(body))
    } else {
        c.step(get().status(200).miss().body("v2"))
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        fresh_then_stale("max_age_fresh", "RFC 9111 §4.2.1", ok("max-age=100", "v1"), true),
        fresh_then_stale("max_age_zero_is_stale", "RFC 9111 §4.2.1", ok("max-age=0", "v1"), false),
        fresh_then_stale("s_maxage_over_max_age", "RFC 9111 §5.2.2.10", ok("max-age=0, s-maxage=100", "v1"), true),
        fresh_then_stale("s_maxage_zero_over_max_age", "RFC 9111 §5.2.2.10", ok("max-age=100, s-maxage=0", "v1"), false),
        fresh_then_stale(
            "expires_minus_date",
            "RFC 9111 §4.2.1",
            with(200, &[("Date", "{now}"), ("Expires", "{date:+100}")]),
            true,
        ),
        fresh_then_stale(
            "expires_in_the_past",
            "RFC 9111 §4.2.1",
            with(200, &[("Date", "{now}"), ("Expires", "{date:-100}")]),
            false,
        ),
        // Lifetime = Expires − Date = 100 s, but the answer is already 200 s old.
        fresh_then_stale(
            "expires_relative_to_an_old_date",
            "RFC 9111 §4.2.1, §4.2.3",
            with(200, &[("Date", "{date:-200}"), ("Expires", "{date:-100}")]),
            false,
        ),
        fresh_then_stale(
            "expires_without_date",
            "RFC 9111 §4.2.1; RFC 9110 §6.6.1 (no Date: the time received)",
            with(200, &[("Expires", "{date:+100}")]),
            true,
        ),
        fresh_then_stale(
            "expires_zero_is_stale",
            "RFC 9111 §5.3 (invalid, esp. \"0\", is in the past)",
            with(200, &[("Date", "{now}"), ("Expires", "0")]),
            false,
        ),
        fresh_then_stale(
            "expires_garbage_is_stale",
            "RFC 9111 §5.3",
            with(200, &[("Date", "{now}"), ("Expires", "soon")]),
            false,
        ),
        fresh_then_stale(
            "expires_lower_case_gmt_is_accepted",
            "RFC 9110 §5.6.7 (recipients parse HTTP-date robustly); RFC 9111 §5.3",
            with(200, &[("Date", "{now}"), ("Expires", &http_date(100).replace("GMT", "gmt"))]),
            true,
        )
        .note("the grammar says \"GMT\"; established caches accept the zone in any case, and so does this one"),
        fresh_then_stale(
            "expires_rfc850",
            "RFC 9110 §5.6.7 (recipients MUST accept the obsolete formats)",
            with(200, &[("Date", "{now}"), ("Expires", &rfc850_date(100))]),
            true,
        ),
        fresh_then_stale(
            "expires_asctime",
            "RFC 9110 §5.6.7 (recipients MUST accept the obsolete formats)",
            with(200, &[("Date", "{now}"), ("Expires", &asctime_date(100))]),
            true,
        ),
        fresh_then_stale(
            "max_age_over_past_expires",
            "RFC 9111 §5.3 (max-age wins over Expires)",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=100"), ("Expires", "{date:-100}")]),
            true,
        ),
        fresh_then_stale(
            "max_age_zero_over_future_expires",
            "RFC 9111 §5.3",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=0"), ("Expires", "{date:+100}")]),
            false,
        ),
        // Either the first occurrence is used or the response is stale: both say stale here.
        fresh_then_stale("duplicate_max_age_same_line", "RFC 9111 §4.2.1", ok("max-age=0, max-age=100", "v1"), false),
        fresh_then_stale(
            "duplicate_max_age_separate_lines",
            "RFC 9111 §4.2.1",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=0"), ("Cache-Control", "max-age=100")]),
            false,
        ),
        fresh_then_stale("max_age_with_spaces_is_invalid", "RFC 9111 §5.2 (directive = token [\"=\" ...], no BWS)", ok("max-age = 100", "v1"), false),
        fresh_then_stale("max_age_trailing_letters", "RFC 9111 §1.2.2 (delta-seconds = 1*DIGIT)", ok("max-age=100a", "v1"), false),
        fresh_then_stale("max_age_decimal", "RFC 9111 §1.2.2", ok("max-age=100.5", "v1"), false),
        fresh_then_stale("max_age_negative", "RFC 9111 §1.2.2", ok("max-age=-100", "v1"), false),
        fresh_then_stale("max_age_quoted", "RFC 9111 §5.2 (recipients parse both token and quoted-string arguments)", ok("max-age=\"100\"", "v1"), true)
            .note("senders MUST NOT quote max-age (§5.2.2.1), but §5.2's grammar lets a recipient accept it; Squid and Varnish do"),
        fresh_then_stale("max_age_huge", "RFC 9111 §1.2.2 (overflow → 2^31)", ok("max-age=99999999999999999999", "v1"), true),
        fresh_then_stale("max_age_2_pow_31", "RFC 9111 §1.2.2", ok("max-age=2147483648", "v1"), true),
        fresh_then_stale("max_age_upper_case_directive", "RFC 9111 §5.2 (directive names are case-insensitive)", ok("MAX-AGE=100", "v1"), true),
        fresh_then_stale("unknown_directive_ignored", "RFC 9111 §5.2.3", ok("max-age=100, x-whatever=\"a,b\"", "v1"), true),
        fresh_then_stale(
            "age_reduces_freshness",
            "RFC 9111 §4.2.3",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=100"), ("Age", "150")]),
            false,
        ),
        fresh_then_stale(
            "age_within_lifetime",
            "RFC 9111 §4.2.3",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=100"), ("Age", "50")]),
            true,
        ),
        fresh_then_stale(
            "age_invalid_is_ignored",
            "RFC 9111 §5.1 (Age = delta-seconds)",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=100"), ("Age", "abc")]),
            true,
        )
        .note("the RFC does not say what an invalid Age means; ignoring it (age from Date) is what nginx and Squid do"),
        fresh_then_stale(
            "age_with_parameters_is_ignored",
            "RFC 9111 §5.1 (an invalid Age value: a cache SHOULD ignore the field)",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=100"), ("Age", "150;foo=bar")]),
            true,
        ),
        fresh_then_stale("old_date_is_stale", "RFC 9111 §4.2.3 (apparent age from Date)", aged(100, "max-age=50", "v1"), false),
        fresh_then_stale("old_date_within_lifetime", "RFC 9111 §4.2.3", aged(20, "max-age=100", "v1"), true),
        heuristic("heuristic_200", 200, true),
        heuristic("heuristic_204", 204, true),
        heuristic("heuristic_404", 404, true),
        heuristic("heuristic_405", 405, true),
        heuristic("heuristic_410", 410, true),
        heuristic("heuristic_414", 414, true),
        heuristic("heuristic_501", 501, true),
        heuristic("no_heuristic_302", 302, false),
        heuristic("no_heuristic_201", 201, false),
        heuristic("no_heuristic_500", 500, false),
        fresh_then_stale(
            "heuristic_recent_last_modified_is_stale",
            "RFC 9111 §4.2.2 (10 % of a zero interval)",
            with(200, &[("Date", "{now}"), ("Last-Modified", "{now}")]),
            false,
        ),
        fresh_then_stale(
            "no_heuristic_with_explicit_max_age_zero",
            "RFC 9111 §4.2.2 (heuristics only without explicit expiration)",
            with(200, &[("Date", "{now}"), ("Cache-Control", "max-age=0"), ("Last-Modified", &http_date(-10 * 86_400))]),
            false,
        ),
    ]
}
