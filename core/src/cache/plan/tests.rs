//! The cache stage's ladder, rung by rung: every bypass reason in its order, each lookup outcome
//! to its plan, the follower's and the failed origin's choices, and the warm window's edge.

use std::time::Duration;

use super::*;
use crate::cache::date::format_http_date;
use crate::cache::lookup::{Miss, Revalidate};
use crate::policy::{KeyRules, Tier, Ttl};

const T0: u64 = 1_700_000_000;

fn at(offset: u64) -> Timestamp {
    Timestamp::from_secs(T0 + offset)
}

fn h(pairs: &[(&str, &str)]) -> HeaderList {
    pairs.iter().copied().collect()
}

/// A route with the defaults the policy parser gives, in `mode`, sharing with token holders or
/// not, with or without tiers.
pub(super) fn route(mode: Mode, authenticated: Authenticated, tiers: bool) -> RoutePolicy {
    RoutePolicy {
        prefix: "/api/".into(),
        mode,
        ttl: Ttl {
            floor: 0,
            ceiling: (mode == Mode::Force).then_some(60),
        },
        stale_while_revalidate: 0,
        stale_if_error: 0,
        tiers: if tiers {
            vec![Tier::Memory, Tier::CacheApi]
        } else {
            Vec::new()
        },
        key: KeyRules {
            headers: vec!["accept".into()],
            ..KeyRules::default()
        },
        authenticated,
        forward: None,
        bypass_cookie: false,
        error_ttl_ceiling: crate::policy::DEFAULT_ERROR_TTL_CEILING,
    }
}

/// An entry stored at T0 from a `GET` with `Accept: text/html`, answered with `Date: T0`, these
/// fields and `Vary: accept`.
fn entry(fields: &[(&str, &str)], opts: &CacheOptions) -> Entry {
    let mut resp = h(fields);
    resp.push("Date", format_http_date(at(0)));
    resp.push("Vary", "accept");
    let req = h(&[("Accept", "text/html")]);
    Entry::store(
        &RequestHead::new("GET", &req),
        200,
        &resp,
        at(0),
        at(0),
        opts,
    )
    .expect("storable")
}

/// An honor-mode route keyed on `Accept`, whose [`options`] store [`entry`]'s responses.
fn keyed() -> RoutePolicy {
    route(Mode::Honor, Authenticated::Bypass, true)
}

#[test]
fn gate_table() {
    use Authenticated::{Bypass as Private, Shared};
    use BypassReason::{Authenticated as User, Credentials, NoTier, Policy};
    use Gate::{Bypass, NextStage, Tiers};
    use Mode::{Bypass as Off, Force, Honor};
    // (mode, authenticated, bypass_cookie, tiers, method, verified user, Cookie) -> gate, why.
    // An Authorization the edge did not verify is not a fact the gate reads: it goes to the
    // tiers, where RFC 9111 §3.5 decides storing.
    #[rustfmt::skip]
    let cases = [
        (Honor, Private, false, true, "POST", false, false, NextStage, "only GET and HEAD"),
        (Off, Private, true, true, "DELETE", true, true, NextStage, "the method before anything"),
        (Honor, Private, false, true, "GET", false, false, Tiers, "anonymous"),
        (Force, Private, false, true, "HEAD", false, false, Tiers, "HEAD too"),
        (Off, Private, false, true, "GET", false, false, Bypass(Policy), "mode bypass"),
        (Off, Shared, true, false, "GET", true, true, Bypass(Policy), "policy first"),
        (Honor, Private, false, true, "GET", true, false, Bypass(User), "a verified user on an authenticated = bypass route"),
        (Honor, Private, true, false, "GET", true, true, Bypass(User), "authenticated before credentials"),
        (Honor, Shared, false, true, "GET", true, false, Tiers, "a settled token is no credential"),
        (Honor, Private, false, true, "GET", false, true, Tiers, "a Cookie goes to the tiers: RFC 9111 §3.5 decides storing"),
        (Honor, Shared, false, true, "GET", true, true, Tiers, "a shared user with a Cookie too"),
        (Honor, Private, true, true, "HEAD", false, true, Bypass(Credentials), "bypass_cookie: a Cookie bypasses"),
        (Honor, Shared, true, true, "GET", true, true, Bypass(Credentials), "bypass_cookie, shared user"),
        (Honor, Private, true, false, "GET", false, true, Bypass(Credentials), "credentials before no tier"),
        (Honor, Private, true, true, "GET", false, false, Tiers, "bypass_cookie without a Cookie"),
        (Honor, Private, false, false, "GET", false, false, Bypass(NoTier), "no tier"),
        (Honor, Shared, false, false, "GET", true, false, Bypass(NoTier), "a shared user, no tier"),
    ];
    for (mode, auth, bypass_cookie, tiers, method, verified_user, cookie, want, why) in cases {
        let facts = RequestFacts {
            method,
            verified_user,
            cookie,
        };
        let route = RoutePolicy {
            bypass_cookie,
            ..route(mode, auth, tiers)
        };
        assert_eq!(gate(&route, &facts), want, "{why}: {facts:?}");
    }
}

#[test]
fn bypass_reasons_keep_their_cache_status_details() {
    let details = [
        BypassReason::Policy,
        BypassReason::Authenticated,
        BypassReason::Credentials,
        BypassReason::NoTier,
    ]
    .map(|r| r.as_str());
    assert_eq!(
        details,
        ["policy", "authenticated", "credentials", "no-tier"]
    );
    assert_eq!(Gate::Bypass(BypassReason::Policy).as_str(), "bypass");
}

#[test]
fn a_verified_users_authorization_never_reaches_the_tiers() {
    let sent = [
        ("Accept", "text/html"),
        ("authorization", "Bearer t"),
        ("AUTHORIZATION", "Bearer u"),
    ];
    let verified = shared_request_headers(sent, true);
    assert_eq!(verified, h(&[("Accept", "text/html")]));
    let anonymous = shared_request_headers(sent, false);
    assert_eq!(anonymous.len(), 3, "only a settled token is dropped");
}

#[test]
fn options_follow_the_route() {
    let mut honor = route(Mode::Honor, Authenticated::Bypass, true);
    honor.ttl = Ttl {
        floor: 10,
        ceiling: Some(600),
    };
    honor.stale_while_revalidate = 30;
    honor.stale_if_error = 300;
    let o = options(&honor);
    assert_eq!(
        (o.min_lifetime, o.max_lifetime, o.force),
        (10, Some(600), false)
    );
    assert_eq!((o.stale_while_revalidate, o.stale_if_error), (30, 300));
    assert_eq!(
        o.error_max_lifetime, 60,
        "error_ttl_ceiling feeds error_max_lifetime"
    );
    let short_errors = RoutePolicy {
        error_ttl_ceiling: 5,
        ..honor.clone()
    };
    assert_eq!(options(&short_errors).error_max_lifetime, 5);
    assert!(
        o.cookie_is_credential && !o.store_set_cookie,
        "defaults kept"
    );
    let force = route(Mode::Force, Authenticated::Bypass, true);
    let o = options(&force);
    assert_eq!(
        (o.min_lifetime, o.max_lifetime, o.force),
        (60, Some(60), true),
        "force: the ceiling is the lifetime"
    );
}

/// (stored, method, request fields, seconds after T0, plan, why)
type PlanRow<'a> = (
    Option<&'a Entry>,
    &'a str,
    Vec<(&'a str, &'a str)>,
    u64,
    Plan,
    &'a str,
);

#[test]
fn plan_table() {
    use Plan::*;
    let keyed = keyed();
    let opts = options(&keyed);
    let fresh = entry(&[("Cache-Control", "max-age=60")], &opts);
    let swr = entry(
        &[("Cache-Control", "max-age=60, stale-while-revalidate=30")],
        &opts,
    );
    let html = [("Accept", "text/html")];
    let stale = Lookup::Revalidate(Revalidate::Stale);
    #[rustfmt::skip]
    let cases: Vec<PlanRow> = vec![
        (None, "GET", vec![], 0, Fill(Lookup::Miss(Miss::NotStored)), "nothing stored: fill"),
        (None, "HEAD", vec![], 0, Forward, "nothing stored, HEAD: forward"),
        (None, "GET", vec![("Cache-Control", "only-if-cached")], 0, OnlyIfCached, "nothing stored, only-if-cached"),
        (Some(&fresh), "GET", html.to_vec(), 59, Serve { detail: None, refresh: false }, "fresh"),
        (Some(&fresh), "HEAD", html.to_vec(), 0, Serve { detail: None, refresh: false }, "a stored GET answers HEAD"),
        (Some(&swr), "GET", html.to_vec(), 61, Serve { detail: Some("stale-while-revalidate"), refresh: true }, "within swr: serve and refresh"),
        (Some(&fresh), "GET", vec![html[0], ("Cache-Control", "max-stale=10")], 65, Serve { detail: Some("stale-allowed"), refresh: false }, "max-stale"),
        (Some(&fresh), "GET", html.to_vec(), 60, Fill(stale), "stale: fill, conditionally"),
        (Some(&fresh), "HEAD", html.to_vec(), 60, Forward, "stale, HEAD: forward"),
        (Some(&fresh), "GET", vec![html[0], ("Cache-Control", "only-if-cached")], 60, OnlyIfCached, "stale, only-if-cached"),
        (Some(&fresh), "GET", vec![html[0], ("Cache-Control", "no-cache")], 0, Fill(Lookup::Revalidate(Revalidate::RequestNoCache)), "the client asked to revalidate"),
        (Some(&fresh), "GET", vec![("Accept", "application/json")], 0, Fill(Lookup::Miss(Miss::VaryMismatch)), "another variant"),
        (None, "GET", vec![("Range", "bytes=0-4")], 0, Forward, "RFC 9110 §14.2: a range with nothing stored goes as sent"),
        (None, "GET", vec![("If-None-Match", "abc")], 0, Forward, "RFC 9110 §13.1: a conditional with nothing stored goes as sent"),
        (None, "GET", vec![("If-Modified-Since", "Thu, 01 Jan 2015 00:00:00 GMT")], 0, Forward, "RFC 9110 §13.1.3"),
        (Some(&fresh), "GET", vec![html[0], ("Range", "bytes=0-4")], 0, Serve { detail: None, refresh: false }, "a fresh entry answers a range"),
        (Some(&fresh), "GET", vec![html[0], ("Range", "bytes=0-4")], 60, Fill(stale), "stale: fill the whole, then answer the range"),
        (Some(&fresh), "GET", vec![html[0], ("If-None-Match", "\"x\"")], 60, Fill(stale), "stale: revalidate, then answer the conditional"),
    ];
    for (stored, method, fields, offset, want, why) in cases {
        let headers = h(&fields);
        let request = RequestHead::new(method, &headers);
        let got = plan(stored, &request, at(offset), &opts);
        assert_eq!(got, want, "{why}");
        assert_eq!(got.as_str(), want.as_str());
    }
}

#[test]
fn a_fill_asks_for_the_whole_representation() {
    #[rustfmt::skip]
    let cases = [
        ("Range", true), ("if-range", true), ("If-None-Match", true), ("If-Modified-Since", true),
        ("If-Match", true), ("If-Unmodified-Since", true), ("Accept", false), ("Accept-Language", false),
        ("X-Custom", false),
    ];
    for (name, dropped) in cases {
        assert_eq!(fill_drops(name), dropped, "{name}");
    }
}

#[test]
fn a_follower_serves_only_what_lookup_serves() {
    let keyed = keyed();
    let opts = options(&keyed);
    let fresh = entry(&[("Cache-Control", "max-age=60")], &opts);
    let html = h(&[("Accept", "text/html")]);
    let request = RequestHead::new("GET", &html);
    let cases = [
        (None, 0, AfterWait::CollapseFailed),
        (Some(&fresh), 10, AfterWait::Collapsed),
        (Some(&fresh), 60, AfterWait::CollapseFailed),
    ];
    for (found, offset, want) in cases {
        assert_eq!(after_wait(found, &request, at(offset), &opts), want);
    }
    assert_eq!(AfterWait::CollapseFailed.as_str(), "collapse-failed");
}

#[test]
fn after_origin_table() {
    use AfterOrigin::*;
    use FromOrigin::*;
    let keyed = keyed();
    let opts = options(&keyed);
    let plain = entry(&[("Cache-Control", "max-age=60")], &opts);
    let sie = entry(&[("Cache-Control", "max-age=60, stale-if-error=60")], &opts);
    let must = entry(
        &[(
            "Cache-Control",
            "max-age=60, stale-if-error=60, must-revalidate",
        )],
        &opts,
    );
    let html = h(&[("Accept", "text/html")]);
    let other = h(&[("Accept", "application/json")]);
    let stand_in = |detail| ServeStored { detail };
    // (origin, stored, request headers, seconds after T0) -> outcome, why
    #[rustfmt::skip]
    let cases = [
        (Answered(200), Some(&plain), &html, 70, UseAnswer, "a fresh answer"),
        (Answered(304), Some(&plain), &html, 70, UseAnswer, "a 304 updates the entry"),
        (Answered(404), Some(&sie), &html, 70, UseAnswer, "a 404 is no origin failure"),
        (Answered(500), None, &html, 0, UseAnswer, "nothing to stand in: relay the error"),
        (NoAnswer, None, &html, 0, Fail, "nothing to stand in, no answer"),
        (Answered(502), Some(&plain), &html, 10, stand_in("origin-error"), "still fresh"),
        (NoAnswer, Some(&plain), &html, 10, stand_in("origin-error"), "still fresh, no answer"),
        (Answered(503), Some(&sie), &html, 110, stand_in("stale-if-error"), "within stale-if-error"),
        (NoAnswer, Some(&sie), &html, 119, stand_in("stale-if-error"), "within stale-if-error, no answer"),
        (Answered(504), Some(&sie), &html, 120, UseAnswer, "past stale-if-error: relay"),
        (NoAnswer, Some(&sie), &html, 120, Fail, "past stale-if-error: fail"),
        (NoAnswer, Some(&must), &html, 70, Fail, "must-revalidate forbids stale"),
        (NoAnswer, Some(&plain), &other, 10, Fail, "another variant never stands in"),
    ];
    for (reply, stored, headers, offset, want, why) in cases {
        let request = RequestHead::new("GET", headers);
        let got = after_origin(reply, stored, &request, at(offset), &opts);
        assert_eq!(got, want, "{why}");
    }
    assert_eq!(Fail.as_str(), "fail");
}

#[test]
fn single_flight_waits_on_the_origin_timeout() {
    let t = flight_timeouts(Duration::from_secs(10));
    assert_eq!(
        (t.max_leader_age_ms, t.max_follower_wait_ms),
        (11_000, 10_000)
    );
    let t = flight_timeouts(Duration::MAX);
    assert_eq!(
        (t.max_leader_age_ms, t.max_follower_wait_ms),
        (u64::MAX, u64::MAX)
    );
}

#[test]
fn only_a_declared_large_body_is_relayed_unread() {
    let max = MAX_BODY.to_string();
    let over = (MAX_BODY + 1).to_string();
    let cases = [
        (None, true, "unsized: read up to the limit"),
        (Some("0"), true, "empty"),
        (Some(max.as_str()), true, "at the limit"),
        (Some(over.as_str()), false, "over"),
        (Some("12ab"), true, "unparsable: read up to the limit"),
    ];
    for (length, want, why) in cases {
        let headers = match length {
            Some(l) => h(&[("Content-Length", l)]),
            None => HeaderList::new(),
        };
        assert_eq!(body_fits(&headers), want, "{why}");
    }
    assert_eq!(TOO_LARGE, "too-large");
}

#[test]
fn warm_refreshes_within_the_window() {
    let opts = CacheOptions::default();
    let none = HeaderList::new();
    let resp = h(&[
        ("Cache-Control", "max-age=600"),
        ("Date", &format_http_date(at(0))),
    ]);
    let stored = Entry::store(
        &RequestHead::new("GET", &none),
        200,
        &resp,
        at(0),
        at(0),
        &opts,
    )
    .unwrap();
    let fresh_for = |left: u64| at(600 - left);
    let cases = [
        (None, at(0), Warm::Missing),
        (Some(&stored), at(0), Warm::Fresh),
        (Some(&stored), fresh_for(WARM_AHEAD_SECS + 1), Warm::Fresh),
        (
            Some(&stored),
            fresh_for(WARM_AHEAD_SECS),
            Warm::ExpiringSoon,
        ),
        (Some(&stored), at(10_000), Warm::ExpiringSoon),
    ];
    for (found, now, want) in cases {
        let got = warm(found, now, &opts);
        assert_eq!(got, want, "{now:?}");
        assert_eq!(got.needs_refresh(), want != Warm::Fresh, "{}", got.as_str());
    }
    assert!(warms(&route(Mode::Honor, Authenticated::Bypass, true)));
    assert!(!warms(&route(Mode::Bypass, Authenticated::Bypass, true)));
}
