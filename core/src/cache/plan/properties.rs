//! Property tests of the cache stage's ladder: credentials never reach a shared tier, whatever
//! the route; the plan serves exactly what [`lookup()`] serves and never sends an
//! `only-if-cached` request to the origin; a stored response stands in for the origin only when
//! [`on_origin_error`] allows; and warming, once due, stays due. Failures persist to
//! `properties.regressions` beside this file (check it in).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::tests::route;
use super::*;
use crate::cache::date::format_http_date;
use crate::cache::lookup::{OnOriginError, is_origin_error, on_origin_error};

const T0: u64 = 1_700_000_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Honor), Just(Mode::Force), Just(Mode::Bypass)]
}

fn authenticated() -> impl Strategy<Value = Authenticated> {
    prop_oneof![Just(Authenticated::Bypass), Just(Authenticated::Shared)]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("GET"),
        4 => Just("HEAD"),
        1 => Just("POST"),
        1 => Just("get"),
        1 => Just("OPTIONS"),
    ]
}

/// A response `Cache-Control` from the directives that decide serving and standing in.
fn response_cc() -> impl Strategy<Value = String> {
    (
        prop::option::of(0u32..120),
        prop::option::of(0u32..60),
        prop::option::of(0u32..120),
        any::<[bool; 2]>(),
    )
        .prop_map(|(max_age, swr, sie, [must, no_cache])| {
            [
                max_age.map(|v| format!("max-age={v}")),
                swr.map(|v| format!("stale-while-revalidate={v}")),
                sie.map(|v| format!("stale-if-error={v}")),
                must.then(|| "must-revalidate".to_owned()),
                no_cache.then(|| "no-cache".to_owned()),
                Some("public".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        })
}

/// A request `Cache-Control` from the request directives.
fn request_cc() -> impl Strategy<Value = String> {
    (
        prop::option::of(0u32..200),
        prop::option::of(prop::option::of(0u32..100)),
        prop::option::of(0u32..100),
        any::<[bool; 2]>(),
    )
        .prop_map(|(max_age, max_stale, sie, [no_cache, only])| {
            [
                max_age.map(|v| format!("max-age={v}")),
                max_stale.map(|v| v.map_or("max-stale".to_owned(), |v| format!("max-stale={v}"))),
                sie.map(|v| format!("stale-if-error={v}")),
                no_cache.then(|| "no-cache".to_owned()),
                only.then(|| "only-if-cached".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        })
}

/// What the tiers found: nothing, or an entry stored at T0 for `Accept: a` (`Vary: accept`).
fn found(opts: CacheOptions<'static>) -> impl Strategy<Value = Option<Entry>> {
    prop::option::of(response_cc()).prop_map(move |cc| {
        cc.map(|cc| {
            let resp: HeaderList = [
                ("Cache-Control", cc),
                ("Vary", "accept".into()),
                ("Date", format_http_date(Timestamp::from_secs(T0))),
            ]
            .into_iter()
            .collect();
            let req: HeaderList = [("Accept", "a")].into_iter().collect();
            let t = Timestamp::from_secs(T0);
            Entry::store(&RequestHead::new("GET", &req), 200, &resp, t, t, &opts)
                .expect("public responses are storable")
        })
    })
}

/// The route options every entry is stored and read under, with grants.
fn opts(swr: u64, sie: u64) -> CacheOptions<'static> {
    CacheOptions {
        stale_while_revalidate: swr,
        stale_if_error: sie,
        ..CacheOptions::default()
    }
}

/// A stored entry, a request for it (this variant or another), and a time after T0.
fn case() -> impl Strategy<Value = (CacheOptions<'static>, Option<Entry>, HeaderList, u64)> {
    (0u64..60, 0u64..120).prop_flat_map(|(swr, sie)| {
        let opts = opts(swr, sie);
        (
            Just(opts),
            found(opts),
            (prop_oneof![Just("a"), Just("b")], request_cc()).prop_map(|(accept, cc)| {
                [("Accept", accept.to_owned()), ("Cache-Control", cc)]
                    .into_iter()
                    .collect::<HeaderList>()
            }),
            0u64..400,
        )
    })
}

proptest! {
    #![proptest_config(config())]

    /// A request with `Cookie` never reads or fills a shared tier on a route with
    /// `bypass_cookie`; nor does a verified user on a route that does not share; anything but
    /// `GET` and `HEAD` is the next stage's.
    #[test]
    fn credentials_never_reach_a_shared_tier_the_route_keeps_them_from(
        mode in mode(),
        shared in authenticated(),
        tiers in any::<bool>(),
        method in method(),
        [verified_user, cookie, bypass_cookie] in any::<[bool; 3]>(),
    ) {
        let route = RoutePolicy { bypass_cookie, ..route(mode, shared, tiers) };
        let facts = RequestFacts { method, verified_user, cookie };
        let got = gate(&route, &facts);
        let cacheable = method == "GET" || method == "HEAD";
        prop_assert_eq!(got == Gate::NextStage, !cacheable);
        if got == Gate::Tiers {
            prop_assert!(!(cookie && bypass_cookie));
            prop_assert!(mode != Mode::Bypass && tiers);
            prop_assert!(!verified_user || shared == Authenticated::Shared);
        }
    }

    /// The plan serves a stored response exactly when `lookup` says it may, refreshes exactly
    /// within `stale-while-revalidate`, never sends `only-if-cached` or a `HEAD` on to fill.
    #[test]
    fn the_plan_serves_exactly_what_lookup_serves(
        (opts, stored, headers, offset) in case(),
        head in any::<bool>(),
    ) {
        let method = if head { "HEAD" } else { "GET" };
        let request = RequestHead::new(method, &headers);
        let now = Timestamp::from_secs(T0 + offset);
        let decision = match &stored {
            Some(entry) => lookup(entry, &request, now, &opts),
            None => lookup_miss(&request),
        };
        let got = plan(stored.as_ref(), &request, now, &opts);
        match got {
            Plan::Serve { detail, refresh } => {
                prop_assert!(decision.serves_stored());
                prop_assert_eq!(detail.is_none(), decision == Lookup::Fresh);
                prop_assert_eq!(refresh, decision == Lookup::StaleWhileRevalidate);
            }
            Plan::Fill(why) => {
                prop_assert!(!decision.serves_stored() && !head);
                prop_assert!(stored.is_some() || !headers.contains("range"), "a range with nothing stored is forwarded");
                prop_assert_eq!(why, decision);
            }
            Plan::OnlyIfCached | Plan::Forward => prop_assert!(!decision.serves_stored()),
        }
        let only_if_cached = headers.get("cache-control").is_some_and(|cc| cc.contains("only-if-cached"));
        if only_if_cached {
            prop_assert!(matches!(got, Plan::Serve { .. } | Plan::OnlyIfCached), "{:?}", got);
        }
        prop_assert_eq!(
            after_wait(stored.as_ref(), &request, now, &opts) == AfterWait::Collapsed,
            decision.serves_stored()
        );
    }

    /// The stored response stands in only for a failed origin and only when `on_origin_error`
    /// allows; a working origin's answer is always used, and no answer is never "used".
    #[test]
    fn a_stored_response_stands_in_only_where_allowed(
        (opts, stored, headers, offset) in case(),
        reply in prop_oneof![
            Just(FromOrigin::NoAnswer),
            prop_oneof![Just(200u16), Just(304), Just(404), 500..505u16].prop_map(FromOrigin::Answered),
        ],
    ) {
        let request = RequestHead::new("GET", &headers);
        let now = Timestamp::from_secs(T0 + offset);
        let got = after_origin(reply, stored.as_ref(), &request, now, &opts);
        let failed = match reply {
            FromOrigin::Answered(status) => is_origin_error(status),
            FromOrigin::NoAnswer => true,
        };
        match got {
            AfterOrigin::ServeStored { detail } => {
                prop_assert!(failed);
                let entry = stored.as_ref().expect("something stood in");
                let allowed = on_origin_error(entry, &request, now, &opts);
                prop_assert!(matches!(allowed, OnOriginError::ServeFresh | OnOriginError::ServeStale));
                prop_assert_eq!(detail == "stale-if-error", allowed == OnOriginError::ServeStale);
            }
            AfterOrigin::UseAnswer => prop_assert!(matches!(reply, FromOrigin::Answered(_))),
            AfterOrigin::Fail => prop_assert_eq!(reply, FromOrigin::NoAnswer),
        }
        if !failed {
            prop_assert_eq!(got, AfterOrigin::UseAnswer);
        }
    }

    /// Once a warm path is due for a refresh, it stays due as time passes without one.
    #[test]
    fn warming_once_due_stays_due(
        (opts, stored, _headers, offset) in case(),
        later in 0u64..1_000,
    ) {
        let now = Timestamp::from_secs(T0 + offset);
        let then = Timestamp::from_secs(T0 + offset + later);
        if warm(stored.as_ref(), now, &opts).needs_refresh() {
            prop_assert!(warm(stored.as_ref(), then, &opts).needs_refresh());
        }
    }
}
