use super::*;
use crate::cache::lookup::{Lookup, Revalidate, lookup};

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn h(pairs: &[(&str, &str)]) -> HeaderList {
    pairs.iter().copied().collect()
}

type Field = (&'static str, &'static str);

const LM: &str = "Thu, 01 Jan 2015 00:00:00 GMT";

/// A 200 stored at t=1000 with `Date: t=1000` plus `fields`.
fn stored(fields: &[(&str, &str)]) -> Entry {
    let mut resp = h(fields);
    resp.push("Date", format_http_date(t(1000)));
    let none = HeaderList::new();
    let opts = CacheOptions::default();
    Entry::store(
        &RequestHead::new("GET", &none),
        200,
        &resp,
        t(1000),
        t(1000),
        &opts,
    )
    .unwrap()
}

#[test]
fn conditional_request_per_rfc9111_4_3_1() {
    let both = stored(&[
        ("Cache-Control", "max-age=1"),
        ("ETag", "W/\"v1\""),
        ("Last-Modified", LM),
    ]);
    assert_eq!(
        conditional_headers(&both),
        h(&[("If-None-Match", "W/\"v1\""), ("If-Modified-Since", LM)]),
        "MUST send the entity tag, SHOULD send Last-Modified"
    );
    let etag_only = stored(&[("Cache-Control", "max-age=1"), ("ETag", "\"v1\"")]);
    assert_eq!(
        conditional_headers(&etag_only),
        h(&[("If-None-Match", "\"v1\"")])
    );
    let unquoted = stored(&[("Cache-Control", "max-age=1"), ("ETag", "w/v1")]);
    assert_eq!(
        conditional_headers(&unquoted),
        h(&[("If-None-Match", "W/\"v1\"")]),
        "RFC 9110 §8.8.3: the tag is sent in its canonical form"
    );
    let neither = stored(&[("Cache-Control", "max-age=1")]);
    assert!(
        conditional_headers(&neither).is_empty(),
        "nothing to validate with"
    );
}

#[test]
fn classify_per_rfc9111_4_3_3() {
    use ValidationResponse::*;
    #[rustfmt::skip]
    let cases = [(304, NotModified), (200, Full), (404, Full), (501, Full), (500, OriginError), (502, OriginError), (503, OriginError), (504, OriginError)];
    for (status, want) in cases {
        assert_eq!(ValidationResponse::classify(status), want, "{status}");
    }
}

#[test]
fn update_from_304_table() {
    let opts = CacheOptions::default();
    let none = HeaderList::new();
    let req = RequestHead::new("GET", &none);
    let strong = &[
        ("Cache-Control", "max-age=60"),
        ("ETag", "\"v1\""),
        ("X-Version", "1"),
        ("Content-Length", "5"),
        ("Age", "40"),
    ][..];
    let weak = &[("Cache-Control", "max-age=60"), ("ETag", "W/\"v1\"")][..];
    let dated = &[("Cache-Control", "max-age=60"), ("Last-Modified", LM)][..];
    let bare = &[("Cache-Control", "max-age=60")][..];
    // (stored fields, 304 fields, outcome, rule)
    #[rustfmt::skip]
    let cases: Vec<(&[Field], HeaderList, &str, &str)> = vec![
        (strong, h(&[("ETag", "\"v1\"")]), "updated", "§4.3.4: same strong validator"),
        (strong, h(&[("ETag", "\"v2\"")]), "mismatch", "§4.3.4: another strong validator → MUST NOT update"),
        (strong, h(&[("ETag", "W/\"v1\"")]), "updated", "§4.3.4: a weak validator matching weakly"),
        (weak, h(&[("ETag", "\"v1\"")]), "mismatch", "a strong 304 tag never selects a weak stored one"),
        (weak, h(&[("ETag", "W/\"v1\"")]), "updated", "weak matches weak"),
        (strong, h(&[("ETag", "\"v1")]), "mismatch", "a malformed tag selects nothing"),
        (strong, h(&[("ETag", "v1")]), "updated", "lenient EntityTag: an unquoted tag is the strong tag"),
        (strong, h(&[("ETag", "w/\"v1\"")]), "updated", "lenient EntityTag: lower-case w/ matches weakly"),
        (strong, h(&[("ETag", "W\"v1\"")]), "updated", "lenient EntityTag: W without a slash"),
        (dated, h(&[("Last-Modified", LM)]), "updated", "§4.3.4: Last-Modified when no ETag"),
        (dated, h(&[("Last-Modified", "Fri, 02 Jan 2015 00:00:00 GMT")]), "mismatch", "another Last-Modified"),
        (strong, h(&[]), "mismatch", "§4.3.4: no validator only selects an entry without one"),
        (bare, h(&[]), "updated", "§4.3.4: neither has a validator"),
        (strong, h(&[("ETag", "\"v1\""), ("Cache-Control", "private")]), "uncacheable", "now private: not re-stored"),
        (strong, h(&[("ETag", "\"v1\""), ("Set-Cookie", "sid=1")]), "uncacheable", "a 304 cookie is never stored (T-CA-01)"),
        (strong, h(&[("ETag", "\"v1\""), ("Vary", "*")]), "uncacheable", "§4.1: Vary * now"),
    ];
    for (fields, not_modified, want, rule) in cases {
        let got = update_from_304(
            &stored(fields),
            &req,
            &not_modified,
            t(2000),
            t(2001),
            &opts,
        );
        assert_eq!(got.as_str(), want, "{rule}");
    }
}

#[test]
fn a_304_replaces_fields_per_rfc9111_3_2() {
    let opts = CacheOptions::default();
    let none = HeaderList::new();
    let req = RequestHead::new("GET", &none);
    let e = stored(&[
        ("Cache-Control", "max-age=60"),
        ("ETag", "\"v1\""),
        ("X-Version", "1"),
        ("Content-Length", "5"),
        ("Age", "40"),
        ("Content-Type", "text/plain"),
    ]);
    assert_eq!(
        lookup(&e, &req, t(1030), &opts),
        Lookup::Revalidate(Revalidate::Stale),
        "Age 40 + 30 s resident"
    );
    let not_modified = h(&[
        ("ETag", "\"v1\""),
        ("X-Version", "2"),
        ("Content-Length", "0"),
        ("Cache-Control", "max-age=120"),
        ("Connection", "close"),
        ("Transfer-Encoding", "chunked"),
    ]);
    let Revalidated::Updated(updated) =
        update_from_304(&e, &req, &not_modified, t(2000), t(2001), &opts)
    else {
        panic!("should update");
    };
    let got = updated.headers();
    assert_eq!(got.get("x-version").as_deref(), Some("2"), "replaced");
    assert_eq!(
        got.get("cache-control").as_deref(),
        Some("max-age=120"),
        "replaced"
    );
    assert_eq!(
        got.get("content-length").as_deref(),
        Some("5"),
        "§3.2: Content-Length never updated"
    );
    assert_eq!(
        got.get("content-type").as_deref(),
        Some("text/plain"),
        "kept"
    );
    assert_eq!(
        got.get("age"),
        None,
        "§5.1: the old Age measured the old response"
    );
    assert!(
        !got.contains("connection") && !got.contains("transfer-encoding"),
        "§3.1: hop-by-hop"
    );
    assert_eq!(
        got.get("date").as_deref(),
        Some(format_http_date(t(2001)).as_str()),
        "RFC 9110 §6.6.1: Date added"
    );
    assert_eq!(
        (updated.request_time(), updated.response_time()),
        (t(2000), t(2001))
    );
    assert_eq!(
        lookup(&updated, &req, t(2100), &opts),
        Lookup::Fresh,
        "T-CA-07: refreshed because the origin confirmed"
    );
}

#[test]
fn client_conditionals_per_rfc9111_4_3_2() {
    let e = stored(&[
        ("Cache-Control", "max-age=60"),
        ("ETag", "\"v1\""),
        ("Last-Modified", LM),
    ]);
    let no_lm = stored(&[("Cache-Control", "max-age=60")]);
    let date = format_http_date(t(1000));
    #[rustfmt::skip]
    let cases = [
        ("GET", &e, h(&[("If-None-Match", "W/\"v1\"")]), true, "RFC 9110 §13.1.2: weak comparison"),
        ("HEAD", &e, h(&[("If-None-Match", "\"v0\", \"v1\"")]), true, "a list"),
        ("GET", &e, h(&[("If-None-Match", "\"v2\"")]), false, "another tag"),
        ("GET", &e, h(&[("If-None-Match", "\"v2\""), ("If-Modified-Since", LM)]), false, "RFC 9110 §13.2.2: If-None-Match takes precedence"),
        ("GET", &e, h(&[("If-None-Match", "\"v1\""), ("If-Modified-Since", "Wed, 31 Dec 2014 00:00:00 GMT")]), true, "§13.1.3: If-Modified-Since ignored with If-None-Match"),
        ("GET", &e, h(&[("If-None-Match", "v1")]), true, "lenient EntityTag: an unquoted member"),
        ("GET", &no_lm, h(&[("If-None-Match", "*")]), true, "§13.1.2: * matches any stored response"),
        ("GET", &no_lm, h(&[("If-None-Match", "\"v1\"")]), false, "no stored ETag: no tag matches"),
        ("HEAD", &e, h(&[("If-Modified-Since", LM)]), true, "§13.1.3: HEAD evaluates If-Modified-Since"),
        ("POST", &e, h(&[("If-Modified-Since", LM)]), false, "§13.1.3: only GET and HEAD evaluate If-Modified-Since"),
        ("GET", &e, h(&[("If-Modified-Since", LM)]), true, "not modified since"),
        ("GET", &e, h(&[("If-Modified-Since", "Wed, 31 Dec 2014 00:00:00 GMT")]), false, "modified since"),
        ("GET", &e, h(&[("If-Modified-Since", "yesterday")]), false, "RFC 9110 §13.1.3: an invalid date is ignored"),
        ("GET", &no_lm, h(&[("If-Modified-Since", date.as_str())]), true, "§4.3.2: Date when there is no Last-Modified"),
        ("POST", &e, h(&[("If-None-Match", "\"v1\"")]), false, "only GET and HEAD"),
        ("GET", &e, h(&[]), false, "unconditional"),
    ];
    for (method, entry, headers, want, rule) in cases {
        assert_eq!(
            answers_not_modified(&RequestHead::new(method, &headers), entry),
            want,
            "{rule}"
        );
    }
}

#[test]
fn a_generated_304_carries_the_fields_of_rfc9110_15_4_5() {
    let e = stored(&[
        ("Cache-Control", "max-age=60"),
        ("Content-Type", "text/plain"),
        ("Content-Length", "5"),
        ("ETag", "\"v1\""),
        ("Vary", "Accept"),
        ("vary", "Accept-Language"),
        ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
        ("Content-Location", "/a.en"),
        ("Last-Modified", LM),
        ("X-Custom", "1"),
    ]);
    #[rustfmt::skip]
    let want = h(&[
        ("Cache-Control", "max-age=60"),
        ("ETag", "\"v1\""),
        ("Vary", "Accept"),
        ("vary", "Accept-Language"),
        ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
        ("Content-Location", "/a.en"),
        ("Date", format_http_date(t(1000)).leak()),
    ]);
    assert_eq!(
        not_modified_headers(e.headers()),
        want,
        "§15.4.5: Content-Location, Date, ETag, Vary, Cache-Control, Expires; no content fields"
    );
}
