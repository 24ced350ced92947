//! Property tests of the cache semantics: total parsers, monotonic freshness, bounded stale
//! serving, sane ages, and the T-CA-07 rule that only the origin refreshes an entry. Failures
//! persist to `properties.regressions` beside this file (check it in).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::*;

const T0: u64 = 1_700_000_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

/// Header-ish strings: heavy on the delimiters the parsers care about.
fn field() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,60}", "[a-zA-Z0-9\\-=\",;:/?()*.@ \t\\\\]{0,60}",]
}

/// A response `Cache-Control` assembled from the directives that matter for serving.
fn response_cc() -> impl Strategy<Value = String> {
    (
        prop::option::of(0u32..120),
        prop::option::of(0u32..120),
        prop::option::of(0u32..60),
        prop::option::of(0u32..120),
        any::<[bool; 3]>(),
    )
        .prop_map(|(max_age, s_maxage, swr, sie, [must, no_cache, bad])| {
            [
                max_age.map(|v| format!("max-age={v}")),
                s_maxage.map(|v| format!("s-maxage={v}")),
                swr.map(|v| format!("stale-while-revalidate={v}")),
                sie.map(|v| format!("stale-if-error={v}")),
                must.then(|| "must-revalidate".to_owned()),
                no_cache.then(|| "no-cache".to_owned()),
                bad.then(|| "max-age=oops".to_owned()),
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
        prop::option::of(0u32..60),
        prop::option::of(0u32..100),
        any::<[bool; 2]>(),
    )
        .prop_map(|(max_age, max_stale, min_fresh, sie, [no_cache, only])| {
            [
                max_age.map(|v| format!("max-age={v}")),
                max_stale.map(|v| v.map_or("max-stale".to_owned(), |v| format!("max-stale={v}"))),
                min_fresh.map(|v| format!("min-fresh={v}")),
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

/// An entry stored at T0 + `delay`, sent at T0, with `Date` up to a minute off and an `Age`.
fn entry() -> impl Strategy<Value = Entry> {
    (
        response_cc(),
        0u64..5,
        -60i64..60,
        prop::option::of(0u64..100),
    )
        .prop_map(|(cc, delay, skew, age)| {
            let mut resp: HeaderList = [("Cache-Control", cc), ("ETag", "\"v\"".into())]
                .into_iter()
                .collect();
            let date = Timestamp::from_secs(T0.saturating_add_signed(skew));
            resp.push("Date", format_http_date(date));
            if let Some(a) = age {
                resp.push("Age", a.to_string());
            }
            let none = HeaderList::new();
            let (sent, received) = (Timestamp::from_secs(T0), Timestamp::from_secs(T0 + delay));
            let opts = CacheOptions::default();
            Entry::store(
                &RequestHead::new("GET", &none),
                200,
                &resp,
                sent,
                received,
                &opts,
            )
            .expect("public responses are storable")
        })
}

fn grants() -> impl Strategy<Value = (u64, u64)> {
    (
        prop_oneof![Just(0u64), 0u64..100],
        prop_oneof![Just(0u64), 0u64..100],
    )
}

fn opts((swr, sie): (u64, u64)) -> CacheOptions<'static> {
    CacheOptions {
        stale_while_revalidate: swr,
        stale_if_error: sie,
        ..CacheOptions::default()
    }
}

/// One step of the T-CA-07 model.
#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    /// A GET; if the origin is asked it answers with this.
    Get(Origin),
}

#[derive(Debug, Clone)]
enum Origin {
    Ok(String),
    NotModified,
    Error,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (0u64..90).prop_map(Op::Advance),
        response_cc().prop_map(|cc| Op::Get(Origin::Ok(cc))),
        Just(Op::Get(Origin::NotModified)),
        Just(Op::Get(Origin::Error)),
    ];
    prop::collection::vec(op, 1..40)
}

proptest! {
    #![proptest_config(config())]

    /// (1) No header value makes a parser panic. T-XC-01 runs the same parsers, with
    /// round-trip invariants, for minutes at a time under `make fuzz` (targets `cache-headers`
    /// and `cache-entry` in `fuzz/src/targets/`), whose corpus `cargo test` replays.
    #[test]
    fn parsers_are_total(value in field(), other in field()) {
        let _ = ResponseDirectives::parse(&value);
        let _ = RequestDirectives::parse(&value);
        let headers: HeaderList = [
            ("CDN-Cache-Control", value.as_str()),
            ("Cache-Control", other.as_str()),
            ("Vary", value.as_str()),
            ("Age", value.as_str()),
            ("Date", value.as_str()),
            ("Expires", other.as_str()),
            ("Last-Modified", value.as_str()),
            ("Location", value.as_str()),
            ("Content-Location", other.as_str()),
            ("ETag", value.as_str()),
        ]
        .into_iter()
        .collect();
        let d = ResponseDirectives::for_shared_cache(&headers, DEFAULT_TARGETS);
        let _ = freshness_lifetime(200, &headers, &d, Timestamp::from_secs(T0), 86_400);
        let _ = current_age(&headers, Timestamp::EPOCH, Timestamp::from_secs(T0), Timestamp::from_secs(u64::MAX));
        let _ = parse_http_date(&value, Timestamp::from_secs(u64::MAX));
        let _ = invalidations("POST", 200, "https://a.example/x/y", &headers);
        let _ = invalidations("POST", 200, &value, &headers);
        let none = HeaderList::new();
        let _ = storability(&RequestHead::new("GET", &none), 200, &headers, &CacheOptions::default());
    }

    /// (2) Freshness is monotonic: fresh at t2 means fresh at every earlier t1.
    #[test]
    fn freshness_is_monotonic(e in entry(), cc in request_cc(), t1 in 0u64..400, dt in 0u64..400) {
        let req_headers: HeaderList = [("Cache-Control", cc)].into_iter().collect();
        let req = RequestHead::new("GET", &req_headers);
        let o = CacheOptions::default();
        let t2 = t1 + dt;
        if lookup(&e, &req, Timestamp::from_secs(T0 + t2), &o) == Lookup::Fresh {
            prop_assert_eq!(lookup(&e, &req, Timestamp::from_secs(T0 + t1), &o), Lookup::Fresh);
        }
    }

    /// (3) A stored response is never served past lifetime + stale-while-revalidate (or the
    /// client's max-stale), nor past lifetime + stale-if-error when the origin fails. Checked at
    /// a random instant and on both sides of each window's edge.
    #[test]
    fn stale_serving_is_bounded(e in entry(), cc in request_cc(), at in 0u64..600, g in grants()) {
        let o = opts(g);
        let req_headers: HeaderList = [("Cache-Control", cc)].into_iter().collect();
        let req = RequestHead::new("GET", &req_headers);
        let d = e.directives(&o);
        let lifetime = e.lifetime(&o).seconds;
        let swr = d.stale_while_revalidate.and_then(Delta::seconds).unwrap_or(0).max(o.stale_while_revalidate);
        let sie = stale_if_error_window(&e, &req, &o);
        // The instant the age reaches `edge`: age grows one second per second after arrival.
        let initial = e.current_age(e.response_time());
        let when = |edge: u64| e.response_time().plus(edge.saturating_sub(initial));
        let mut instants = vec![Timestamp::from_secs(T0 + at)];
        for edge in [lifetime, lifetime + swr, lifetime + sie] {
            instants.extend([when(edge.saturating_sub(1)), when(edge), when(edge + 1)]);
        }
        for now in instants {
            let age = e.current_age(now);
            match lookup(&e, &req, now, &o) {
                Lookup::Fresh => prop_assert!(age < lifetime),
                Lookup::StaleWhileRevalidate => {
                    prop_assert!(age >= lifetime && age < lifetime + swr);
                    prop_assert!(!d.forbids_stale() && !d.requires_validation());
                }
                Lookup::StaleAllowed => {
                    let allowed = match RequestDirectives::from_headers(&req_headers).max_stale {
                        Some(MaxStale::Any) => true,
                        Some(MaxStale::Seconds(n)) => age <= lifetime + u64::from(n),
                        None => false,
                    };
                    prop_assert!(allowed && !d.forbids_stale());
                }
                _ => {}
            }
            match on_origin_error(&e, &req, now, &o) {
                OnOriginError::ServeFresh => prop_assert!(age < lifetime),
                OnOriginError::ServeStale => {
                    prop_assert!(age >= lifetime && age < lifetime + sie);
                    prop_assert!(!d.forbids_stale() && !d.requires_validation());
                }
                OnOriginError::Fail(_) => {}
            }
        }
    }

    /// (4) current_age is never below the Age header (and, being unsigned, never negative) and
    /// never decreases as time passes.
    #[test]
    fn current_age_is_sane(
        age in prop::option::of(0u64..10_000_000_000),
        date in prop::option::of(0u64..4_000_000_000),
        req in 0u64..4_000_000_000,
        resp in 0u64..4_000_000_000,
        now in 0u64..4_000_000_000,
        later in 0u64..1_000_000,
    ) {
        let mut h = HeaderList::new();
        if let Some(a) = age {
            h.push("Age", a.to_string());
        }
        if let Some(d) = date {
            h.push("Date", format_http_date(Timestamp::from_secs(d)));
        }
        let ts = Timestamp::from_secs;
        let a = current_age(&h, ts(req), ts(resp), ts(now));
        prop_assert!(a >= age_value(&h));
        prop_assert!(current_age(&h, ts(req), ts(resp), ts(now + later)) >= a);
    }

    /// T-CA-07 as a model: over any run of time steps and GETs with the origin answering 200,
    /// 304 or failing, nothing is served outside its window, an error never replaces the entry,
    /// and the entry's response time moves only when the origin answered.
    #[test]
    fn only_the_origin_refreshes_an_entry(ops in ops(), g in grants()) {
        let o = opts(g);
        let none = HeaderList::new();
        let req = RequestHead::new("GET", &none);
        let mut now = Timestamp::from_secs(T0);
        let mut stored: Option<Entry> = None;
        let mut confirmed_at: Option<Timestamp> = None;
        for op in ops {
            let origin = match op {
                Op::Advance(d) => {
                    now = now.plus(d);
                    continue;
                }
                Op::Get(origin) => origin,
            };
            let decision = match &stored {
                Some(e) => lookup(e, &req, now, &o),
                None => lookup_miss(&req),
            };
            if let (Some(e), true) = (&stored, decision.serves_stored()) {
                let d = e.directives(&o);
                let swr = d.stale_while_revalidate.and_then(Delta::seconds).unwrap_or(0).max(o.stale_while_revalidate);
                prop_assert!(e.current_age(now) < e.lifetime(&o).seconds + swr);
            }
            let asks_origin = !matches!(decision, Lookup::Fresh);
            if !asks_origin {
                continue;
            }
            match origin {
                Origin::Ok(cc) => {
                    let resp: HeaderList = [("Cache-Control", cc), ("ETag", "\"v\"".into())].into_iter().collect();
                    if let Ok(e) = Entry::store(&req, 200, &resp, now, now, &o) {
                        stored = Some(e);
                        confirmed_at = Some(now);
                    }
                }
                Origin::NotModified => {
                    if let Some(e) = &stored {
                        let nm: HeaderList = [("ETag", "\"v\"")].into_iter().collect();
                        match update_from_304(e, &req, &nm, now, now, &o) {
                            Revalidated::Updated(updated) => {
                                stored = Some(updated);
                                confirmed_at = Some(now);
                            }
                            Revalidated::Uncacheable { .. } => stored = None,
                            Revalidated::Mismatch => {}
                        }
                    }
                }
                Origin::Error => {
                    if let Some(e) = &stored {
                        let before = e.clone();
                        if on_origin_error(e, &req, now, &o) == OnOriginError::ServeStale {
                            let sie = stale_if_error_window(e, &req, &o);
                            prop_assert!(e.current_age(now) < e.lifetime(&o).seconds + sie);
                        }
                        prop_assert_eq!(stored.as_ref(), Some(&before));
                    }
                }
            }
            if let Some(e) = &stored {
                prop_assert_eq!(Some(e.response_time()), confirmed_at);
            }
        }
    }
}
