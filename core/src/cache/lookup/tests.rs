use super::*;
use crate::cache::date::format_http_date;
use crate::cache::message::HeaderList;

const T0: u64 = 1_700_000_000;

fn at(offset: u64) -> Timestamp {
    Timestamp::from_secs(T0 + offset)
}

fn h(pairs: &[(&str, &str)]) -> HeaderList {
    pairs.iter().copied().collect()
}

/// An entry stored at T0 from a response with `Date: T0` and these extra fields.
fn entry(fields: &[(&str, &str)], opts: &CacheOptions) -> Entry {
    let mut resp = h(fields);
    resp.push("Date", format_http_date(at(0)));
    let none = HeaderList::new();
    Entry::store(
        &RequestHead::new("GET", &none),
        200,
        &resp,
        at(0),
        at(0),
        opts,
    )
    .expect("storable")
}

/// (response fields, request Cache-Control, seconds after T0, options, outcome, rule)
type Row<'a, T> = (
    &'a [(&'a str, &'a str)],
    &'a str,
    u64,
    &'a CacheOptions<'a>,
    T,
    &'a str,
);

#[test]
fn lookup_table() {
    use super::Revalidate as R;
    use Lookup::*;
    let opts = CacheOptions::default();
    let granted = CacheOptions {
        stale_while_revalidate: 30,
        ..opts
    };
    #[rustfmt::skip]
    let cases: Vec<Row<Lookup>> = vec![
        (&[("Cache-Control", "max-age=60")], "", 59, &opts, Fresh, "§4.2: fresh while lifetime > age"),
        (&[("Cache-Control", "max-age=60")], "", 60, &opts, Revalidate(R::Stale), "§4.2: stale once age = lifetime"),
        (&[("Cache-Control", "max-age=60"), ("Age", "50")], "", 10, &opts, Revalidate(R::Stale), "§4.2.3: Age counts"),
        (&[("Cache-Control", "max-age=oops")], "", 0, &opts, Revalidate(R::Stale), "§4.2.1: invalid max-age is stale"),
        (&[("Cache-Control", "max-age=60, stale-while-revalidate=30")], "", 89, &opts, StaleWhileRevalidate, "RFC 5861 §3: within the window"),
        (&[("Cache-Control", "max-age=60, stale-while-revalidate=30")], "", 90, &opts, Revalidate(R::Stale), "RFC 5861 §3: past max-age + swr"),
        (&[("Cache-Control", "max-age=60, stale-while-revalidate=x")], "", 61, &opts, Revalidate(R::Stale), "invalid swr grants nothing"),
        (&[("Cache-Control", "max-age=60")], "", 89, &granted, StaleWhileRevalidate, "§4.2.4: a window granted out of band"),
        (&[("Cache-Control", "max-age=60, stale-while-revalidate=30, must-revalidate")], "", 61, &opts, Revalidate(R::MustRevalidate), "§5.2.2.2: must-revalidate forbids stale"),
        (&[("Cache-Control", "max-age=60, stale-while-revalidate=30, proxy-revalidate")], "", 61, &opts, Revalidate(R::MustRevalidate), "§5.2.2.8: proxy-revalidate, shared cache"),
        (&[("Cache-Control", "s-maxage=60, stale-while-revalidate=30")], "", 61, &opts, Revalidate(R::MustRevalidate), "§5.2.2.10: s-maxage implies proxy-revalidate"),
        (&[("Cache-Control", "s-maxage=60")], "", 59, &opts, Fresh, "s-maxage while fresh"),
        (&[("Cache-Control", "max-age=60, no-cache"), ("ETag", "\"a\"")], "", 0, &opts, Revalidate(R::NoCache), "§5.2.2.4: no-cache even when fresh"),
        (&[("Cache-Control", "max-age=60, no-cache=\"x-a\"")], "", 0, &opts, Fresh, "§5.2.2.4: qualified no-cache allows reuse"),
        (&[("Cache-Control", "max-age=60")], "no-cache", 0, &opts, Revalidate(R::RequestNoCache), "§5.2.1.4"),
        (&[("Cache-Control", "max-age=60")], "max-age=10", 10, &opts, Fresh, "§5.2.1.1: age = max-age is acceptable"),
        (&[("Cache-Control", "max-age=60")], "max-age=10", 11, &opts, Revalidate(R::RequestMaxAge), "§5.2.1.1: older than max-age"),
        (&[("Cache-Control", "max-age=60")], "max-age=0", 1, &opts, Revalidate(R::RequestMaxAge), "reload"),
        (&[("Cache-Control", "max-age=60")], "max-age=0", 0, &opts, Revalidate(R::RequestMaxAge), "§5.2.1.1: max-age=0 asks for a response generated now, even within the first second"),
        (&[("Cache-Control", "max-age=60")], "max-age=x", 1, &opts, Revalidate(R::RequestMaxAge), "invalid request max-age reads as 0"),
        (&[("Cache-Control", "max-age=60")], "min-fresh=10", 49, &opts, Fresh, "§5.2.1.3: fresh for 11 more"),
        (&[("Cache-Control", "max-age=60")], "min-fresh=10", 50, &opts, Revalidate(R::RequestMinFresh), "§5.2.1.3: not fresh 10 more"),
        (&[("Cache-Control", "max-age=60")], "min-fresh=x", 0, &opts, Revalidate(R::RequestMinFresh), "invalid min-fresh cannot be met"),
        (&[("Cache-Control", "max-age=60")], "max-stale=10", 70, &opts, StaleAllowed, "§5.2.1.2: stale by 10"),
        (&[("Cache-Control", "max-age=60")], "max-stale=10", 71, &opts, Revalidate(R::Stale), "§5.2.1.2: stale by 11"),
        (&[("Cache-Control", "max-age=60")], "max-stale", 100_000, &opts, StaleAllowed, "§5.2.1.2: any staleness"),
        (&[("Cache-Control", "max-age=60, must-revalidate")], "max-stale", 61, &opts, Revalidate(R::MustRevalidate), "§4.2.4: max-stale cannot override must-revalidate"),
        (&[("Cache-Control", "max-age=60")], "only-if-cached", 0, &opts, Fresh, "§5.2.1.7: stored and fresh"),
        (&[("Cache-Control", "max-age=60")], "only-if-cached", 61, &opts, GatewayTimeout, "§5.2.1.7: 504 instead of revalidating"),
        (&[("Cache-Control", "max-age=60, stale-while-revalidate=30")], "only-if-cached", 61, &opts, StaleWhileRevalidate, "§5.2.1.7: a servable stale response"),
        (&[("Expires", "0"), ("ETag", "\"a\"")], "", 0, &opts, Revalidate(R::Stale), "§5.3: invalid Expires is expired"),
        (&[("Last-Modified", "Tue, 14 Nov 2023 12:13:20 GMT")], "", 0, &opts, Fresh, "§4.2.2: heuristic freshness"),
        (&[("CDN-Cache-Control", "max-age=600"), ("Cache-Control", "max-age=0")], "", 300, &opts, Fresh, "RFC 9213: targeted field wins"),
    ];
    for (fields, cc, secs, opts, want, rule) in cases {
        let e = entry(fields, opts);
        let req = h(&[("Cache-Control", cc)]);
        let got = lookup(&e, &RequestHead::new("GET", &req), at(secs), opts);
        assert_eq!(got, want, "{rule}: {fields:?} / {cc:?} at +{secs}");
    }
}

#[test]
fn misses_and_methods() {
    let opts = CacheOptions::default();
    let en = h(&[("Accept-Language", "en")]);
    let fr = h(&[("Accept-Language", "fr")]);
    let stored_for_en = {
        let mut resp = h(&[("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")]);
        resp.push("Date", format_http_date(at(0)));
        Entry::store(
            &RequestHead::new("GET", &en),
            200,
            &resp,
            at(0),
            at(0),
            &opts,
        )
        .unwrap()
    };
    let cases = [
        ("GET", &en, Lookup::Fresh, "§4.1: same variant"),
        (
            "GET",
            &fr,
            Lookup::Miss(Miss::VaryMismatch),
            "§4.1: another variant",
        ),
        ("HEAD", &en, Lookup::Fresh, "§4: HEAD from a stored GET"),
        (
            "POST",
            &en,
            Lookup::Miss(Miss::Method),
            "§4: only GET and HEAD",
        ),
    ];
    for (method, req, want, rule) in cases {
        let got = lookup(&stored_for_en, &RequestHead::new(method, req), at(1), &opts);
        assert_eq!(got, want, "{rule}");
    }
    let only = h(&[
        ("Cache-Control", "only-if-cached"),
        ("Accept-Language", "fr"),
    ]);
    assert_eq!(
        lookup(
            &stored_for_en,
            &RequestHead::new("GET", &only),
            at(1),
            &opts
        ),
        Lookup::GatewayTimeout,
        "§5.2.1.7: another variant under only-if-cached"
    );
    assert_eq!(
        lookup_miss(&RequestHead::new("GET", &only)),
        Lookup::GatewayTimeout
    );
    assert_eq!(
        lookup_miss(&RequestHead::new("GET", &en)),
        Lookup::Miss(Miss::NotStored)
    );
}

#[test]
fn on_origin_error_table() {
    use OnOriginError::*;
    use StaleRefusal::*;
    let opts = CacheOptions::default();
    let granted = CacheOptions {
        stale_if_error: 100,
        ..opts
    };
    #[rustfmt::skip]
    let cases: Vec<Row<OnOriginError>> = vec![
        (&[("Cache-Control", "max-age=60")], "no-cache", 10, &opts, ServeFresh, "fresh entry, origin asked only for the client"),
        (&[("Cache-Control", "max-age=60, stale-if-error=300")], "", 359, &opts, ServeStale, "RFC 5861 §4: within the window"),
        (&[("Cache-Control", "max-age=60, stale-if-error=300")], "", 360, &opts, Fail(TooStale), "RFC 5861 §4: past max-age + sie"),
        (&[("Cache-Control", "max-age=60, stale-if-error=300")], "no-cache", 100, &opts, ServeStale, "RFC 5861 §4: regardless of request freshness"),
        (&[("Cache-Control", "max-age=60")], "", 61, &opts, Fail(TooStale), "no window at all"),
        (&[("Cache-Control", "max-age=60")], "stale-if-error=100", 159, &opts, ServeStale, "RFC 5861 §4: request directive"),
        (&[("Cache-Control", "max-age=60")], "", 159, &granted, ServeStale, "§4.2.4: window granted out of band"),
        (&[("Cache-Control", "max-age=60, stale-if-error=300, must-revalidate")], "", 61, &opts, Fail(MustRevalidate), "§5.2.2.2: must-revalidate → error/504"),
        (&[("Cache-Control", "s-maxage=60, stale-if-error=300")], "", 61, &opts, Fail(MustRevalidate), "§5.2.2.10"),
        (&[("Cache-Control", "max-age=60, stale-if-error=300, no-cache"), ("ETag", "\"a\"")], "", 0, &opts, Fail(NoCache), "§5.2.2.4: never without validation"),
        (&[("Cache-Control", "max-age=60, stale-if-error=bad")], "", 61, &opts, Fail(TooStale), "invalid sie grants nothing"),
    ];
    for (fields, cc, secs, opts, want, rule) in cases {
        let e = entry(fields, opts);
        let req = h(&[("Cache-Control", cc)]);
        let got = on_origin_error(&e, &RequestHead::new("GET", &req), at(secs), opts);
        assert_eq!(got, want, "{rule}");
    }
    assert!(
        [500, 502, 503, 504].into_iter().all(is_origin_error),
        "RFC 5861 §4"
    );
    assert!(![200, 304, 404, 501].into_iter().any(is_origin_error));
}

#[test]
fn a_credentialed_request_reads_only_what_was_marked_shareable() {
    let opts = CacheOptions::default();
    let auth = h(&[("Authorization", "Basic dTpw")]);
    let cookie = h(&[("Cookie", "sid=1")]);
    #[rustfmt::skip]
    let cases = [
        ("max-age=60", &auth, Lookup::Miss(Miss::Credentials), "§3.5: not marked shareable"),
        ("public, max-age=60", &auth, Lookup::Fresh, "§3.5: public"),
        ("s-maxage=60", &auth, Lookup::Fresh, "§3.5: s-maxage"),
        ("max-age=60, must-revalidate", &auth, Lookup::Fresh, "§3.5: must-revalidate"),
        ("max-age=60", &cookie, Lookup::Fresh, "a Cookie alone reads the shared entry"),
    ];
    for (cache_control, request, want, rule) in cases {
        let stored = entry(&[("Cache-Control", cache_control)], &opts);
        let got = lookup(&stored, &RequestHead::new("GET", request), at(1), &opts);
        assert_eq!(got, want, "{rule}");
    }
}
