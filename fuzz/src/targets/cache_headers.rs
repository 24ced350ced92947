//! `cache-headers`: every header-field parser of the cache (`core/src/cache/`) and of
//! conditional requests (`core/src/conditional.rs`), each fed every field value of the input.
//!
//! Input: header fields (a response's and a request's at once: `Cache-Control`,
//! `CDN-Cache-Control`, `Date`, `Expires`, `Last-Modified`, `Age`, `Vary`, `ETag`,
//! `If-None-Match`, `Range`, `If-Range`, `Location`, `Cache-Tag`, ...), and the pseudo-fields
//! `:now` (Unix seconds), `:length` (the stored body's length) and `:url` (a write's target).
//!
//! Asserts: delta-seconds stay within 2^31 and field lists come out sorted, unique and
//! lower-case; an HTTP-date that parses formats back to an IMF-fixdate that parses to the same
//! instant; a parsed entity tag round-trips through its canonical form and matches itself; `*`
//! and a tag's own canonical form satisfy `If-None-Match`; `Vary` names are sorted, unique,
//! lower-case, never `*`, and a secondary key is a fixpoint of its own normalisation; a partial
//! range lies inside the body; `Age` and the current age never go below what the header says; a
//! targeted field is only in charge when it is present; invalidations stay on the target's
//! origin and are fixpoints; a purge after a write always passes the purge log's validation.

use breakwater_core::cache::CacheOptions;
use breakwater_core::cache::{
    DEFAULT_TARGETS, Delta, DirectiveSource, EntityTag, FieldScope, HeaderList, RangeReply,
    RequestDirectives, RequestHead, ResponseDirectives, SecondaryKey, Storable, Timestamp,
    age_value, current_age, format_http_date, freshness_lifetime, invalidations, parse_http_date,
    range_reply, storability, vary_fields,
};
use breakwater_core::conditional::if_none_match;
use breakwater_core::invalidate::after_write;
use breakwater_core::purge::{PurgeRequest, format_tags, parse_tags};

use super::{Outcome, Target, bucket, cache_policy, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "cache-headers",
    about: "cache header fields: Cache-Control (request and response), CDN-Cache-Control, \
            HTTP dates, Age, Vary, ETag, If-None-Match, Range, Location, Cache-Tag",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 4 * 1024,
};

const DICTIONARY: &[&str] = &[
    "max-age",
    "s-maxage",
    "no-cache",
    "no-store",
    "private",
    "public",
    "must-revalidate",
    "proxy-revalidate",
    "must-understand",
    "immutable",
    "stale-while-revalidate",
    "stale-if-error",
    "max-stale",
    "min-fresh",
    "only-if-cached",
    "no-transform",
    "=",
    "\"",
    "\\\"",
    ",",
    ";",
    "?1",
    "?0",
    ":aGk=:",
    "(",
    ")",
    "*",
    "W/",
    "w/",
    "GMT",
    "gmt",
    "UTC",
    "Sun, ",
    "Sunday, ",
    "Nov",
    "Feb",
    " 1994 ",
    "-94 ",
    "08:49:37",
    "23:59:60",
    "00:00:00",
    "29 Feb 2024",
    "31 Dec 9999",
    "bytes=",
    "0-",
    "-0",
    "-",
    "cache-control: ",
    "cdn-cache-control: ",
    "date: ",
    "expires: ",
    "last-modified: ",
    "age: ",
    "vary: ",
    "etag: ",
    "if-none-match: ",
    "range: ",
    "if-range: ",
    "location: ",
    "content-location: ",
    "cache-tag: ",
    ":now: ",
    ":length: ",
    "http://",
    "//",
    "..",
    "/./",
    "@",
    ":80",
    "[::1]",
    "#",
    "\n",
];

const DATES: &[&str] = &[
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
    "Sun Nov 6 08:49:37 1994",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Wed, 31 Dec 1969 23:59:59 GMT",
    "Fri, 31 Dec 9999 23:59:60 GMT",
    "Thu, 29 Feb 2024 00:00:00 GMT",
    "Mon, 01-Jan-76 00:00:00 GMT",
    "0",
    "-1",
];

fn generate(rng: &mut Rng) -> Vec<u8> {
    let directive = |rng: &mut Rng| {
        let name = pick(rng, &DICTIONARY[..16]);
        match rng.below(5) {
            0 => name.to_owned(),
            1 => format!("{name}={}", draw::number(rng)),
            2 => format!("{name}=\"{}\"", draw::noise(rng, 12)),
            3 => format!("{name}={}", draw::noise(rng, 6)),
            _ => format!("{name};p={}", pick(rng, &["1", "?1", "\"x\"", "tok"])),
        }
    };
    let list = |rng: &mut Rng| {
        let items: Vec<String> = (0..rng.below(5)).map(|_| directive(rng)).collect();
        items.join(pick(rng, &[", ", ",", " , ", ",,"]))
    };
    let date = |rng: &mut Rng| match rng.below(3) {
        0 => format_http_date(Timestamp::from_secs(rng.next_u64() >> rng.below(64))),
        1 => pick(rng, DATES).to_owned(),
        _ => draw::noise(rng, 30),
    };
    let etag = |rng: &mut Rng| {
        let weak = pick(rng, &["", "W/", "w/", "W"]);
        match rng.below(3) {
            0 => format!("{weak}\"{}\"", draw::text(rng, b"abc0123,! ", 8)),
            1 => format!("{weak}{}", draw::noise(rng, 8)),
            _ => "*".to_owned(),
        }
    };
    let mut e = Envelope::new();
    let fields: [(&str, draw::Maker); 14] = [
        ("cache-control", &list),
        ("cdn-cache-control", &list),
        ("date", &date),
        ("expires", &date),
        ("last-modified", &date),
        ("age", &|r: &mut Rng| draw::number(r)),
        ("vary", &|r: &mut Rng| {
            let names = [
                "Accept-Language",
                "accept-encoding",
                "*",
                "Cookie",
                "",
                " X-A ",
            ];
            let n: Vec<&str> = (0..r.below(4)).map(|_| pick(r, &names)).collect();
            n.join(",")
        }),
        ("accept-language", &|r: &mut Rng| draw::noise(r, 16)),
        ("etag", &etag),
        ("if-none-match", &|r: &mut Rng| {
            let tags: Vec<String> = (0..r.below(4)).map(|_| etag(r)).collect();
            tags.join(", ")
        }),
        ("range", &|r: &mut Rng| {
            let spec = match r.below(4) {
                0 => format!("{}-{}", draw::number(r), draw::number(r)),
                1 => format!("-{}", draw::number(r)),
                2 => format!("{}-", draw::number(r)),
                _ => draw::noise(r, 10),
            };
            format!("{}{spec}", pick(r, &["bytes=", "BYTES=", "items=", ""]))
        }),
        ("if-range", &|r: &mut Rng| {
            if r.one_in(2) { etag(r) } else { date(r) }
        }),
        ("location", &|r: &mut Rng| {
            let targets = [
                "/x",
                "../y",
                "//other.example/z",
                "https://a.example:443/p?q",
                "?q",
                "",
            ];
            format!("{}{}", pick(r, &targets), draw::noise(r, 8))
        }),
        ("cache-tag", &|r: &mut Rng| {
            let tags: Vec<String> = (0..r.below(5)).map(|_| draw::noise(r, 10)).collect();
            tags.join(",")
        }),
    ];
    for (name, value) in fields {
        if rng.one_in(2) {
            e = e.field(name, value(rng));
        }
    }
    if rng.one_in(3) {
        e = e.field(":now", (rng.next_u64() >> rng.below(64)).to_string());
    }
    if rng.one_in(3) {
        e = e.field(":length", draw::number(rng));
    }
    if rng.one_in(4) {
        let path: String = (0..rng.below(4))
            .map(|_| pick(rng, &["/api", "/products", "/5", "/..", "/%2e"]))
            .collect();
        e = e.field(
            ":url",
            format!("https://a.example{path}{}", draw::noise(rng, 8)),
        );
    }
    e.to_bytes()
}

/// The latest instant `format_http_date` writes as itself (it clamps later ones to year 9999).
const LAST_FORMATTED: u64 = 253_402_300_799;
/// The delta-seconds cap (RFC 9111 §1.2.2).
const DELTA_MAX: u64 = 1 << 31;
/// "Now" when the input gives none: 2023-11-14.
const DEFAULT_NOW: u64 = 1_700_000_000;

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let now = Timestamp::from_secs(e.number(":now", DEFAULT_NOW));
    let headers: HeaderList = e.headers().collect();

    for (_, value) in e.headers() {
        check_directives(value, &mut out)?;
        check_date(value, now, &mut out)?;
        check_etag(value, &mut out)?;
    }
    check_date(
        "",
        Timestamp::from_secs(now.as_secs().min(LAST_FORMATTED)),
        &mut out,
    )?;
    let formatted = format_http_date(Timestamp::from_secs(now.as_secs().min(LAST_FORMATTED)));
    ensure!(
        parse_http_date(&formatted, now)
            == Some(Timestamp::from_secs(now.as_secs().min(LAST_FORMATTED))),
        "date: format then parse is the identity",
        "{now:?} → {formatted:?}"
    );

    let targets = ["cloudflare-cdn-cache-control", "cdn-cache-control"];
    for list in [DEFAULT_TARGETS, &targets[..]] {
        let d = ResponseDirectives::for_shared_cache(&headers, list);
        if let DirectiveSource::Targeted(i) = d.source {
            out.note("targeted");
            ensure!(
                list.get(i).is_some_and(|name| headers.contains(name)),
                "targeted: only a present field is in charge",
                "{:?}",
                d.source
            );
        }
        check_response(&d)?;
        let lifetime = freshness_lifetime(200, &headers, &d, now, 86_400);
        out.note(lifetime.source.as_str());
    }

    let age = age_value(&headers);
    ensure!(age <= DELTA_MAX, "age: within 2^31", "{age}");
    let t = |s: u64| Timestamp::from_secs(s);
    let sent = e.number(":sent", now.as_secs());
    let current = current_age(&headers, t(sent), now, now.plus(e.number(":later", 0)));
    ensure!(
        current >= age,
        "age: the current age is at least Age",
        "{current} < {age}"
    );

    check_vary(&headers, &mut out)?;
    check_if_none_match(&e, &mut out)?;
    check_range(&e, &headers, &mut out)?;

    let request = RequestHead::new("GET", &headers);
    match storability(&request, 200, &headers, &CacheOptions::default()) {
        Storable::Store => out.note("storable"),
        Storable::NotStorable(why) => out.note(why.as_str()),
    }
    check_writes(&e, &headers, &mut out)?;
    Ok(out)
}

fn check_directives(value: &str, out: &mut Outcome) -> Result<(), String> {
    let response = ResponseDirectives::parse(value);
    check_response(&response)?;
    let request = RequestDirectives::parse(value);
    for (name, delta) in [
        ("max-age", request.max_age),
        ("min-fresh", request.min_fresh),
    ] {
        if let Some(Delta::Seconds(s)) = delta {
            ensure!(
                u64::from(s) <= DELTA_MAX,
                "request directives: delta within 2^31",
                "{name}={s}"
            );
        }
    }
    out.note_num(u64::from(request.only_if_cached) + 2 * u64::from(request.no_cache));
    Ok(())
}

fn check_response(d: &ResponseDirectives) -> Result<(), String> {
    for delta in [
        d.max_age,
        d.s_maxage,
        d.stale_while_revalidate,
        d.stale_if_error,
    ] {
        if let Some(Delta::Seconds(s)) = delta {
            ensure!(
                u64::from(s) <= DELTA_MAX,
                "response directives: delta within 2^31",
                "{s}"
            );
        }
    }
    for scope in [&d.no_cache, &d.private].into_iter().flatten() {
        if let FieldScope::Fields(names) = scope {
            ensure!(!names.is_empty(), "field scope: a list names something");
            ensure!(
                names.windows(2).all(|w| w[0] < w[1]),
                "field scope: sorted and unique",
                "{names:?}"
            );
            ensure!(
                names
                    .iter()
                    .all(|n| !n.is_empty() && *n == n.to_ascii_lowercase()),
                "field scope: lower-case names",
                "{names:?}"
            );
        }
    }
    Ok(())
}

fn check_date(value: &str, now: Timestamp, out: &mut Outcome) -> Result<(), String> {
    let Some(t) = parse_http_date(value, now) else {
        return Ok(());
    };
    out.note("date");
    let formatted = format_http_date(t);
    ensure!(
        formatted.len() == 29,
        "date: an IMF-fixdate is 29 bytes",
        "{formatted:?}"
    );
    if t.as_secs() <= LAST_FORMATTED {
        ensure!(
            parse_http_date(&formatted, now) == Some(t),
            "date: a parsed date formats and parses back to itself",
            "{value:?} → {t:?} → {formatted:?}"
        );
    }
    Ok(())
}

fn check_etag(value: &str, out: &mut Outcome) -> Result<(), String> {
    let Some(tag) = EntityTag::parse(value) else {
        return Ok(());
    };
    out.note(if tag.weak { "weak-etag" } else { "strong-etag" });
    let canonical = tag.to_string();
    ensure!(
        EntityTag::parse(&canonical).as_ref() == Some(&tag),
        "etag: the canonical form parses back",
        "{value:?} → {canonical:?}"
    );
    ensure!(tag.weak_eq(&tag), "etag: weakly equal to itself");
    ensure!(
        tag.strong_eq(&tag) != tag.weak,
        "etag: strongly equal to itself iff strong"
    );
    ensure!(
        if_none_match(&canonical, value) && if_none_match("*", value),
        "if-none-match: a tag's canonical form and * match it",
        "{value:?}"
    );
    Ok(())
}

fn check_vary(headers: &HeaderList, out: &mut Outcome) -> Result<(), String> {
    let Ok(fields) = vary_fields(headers) else {
        out.note("vary-star");
        return Ok(());
    };
    out.note_num(bucket(fields.len()));
    ensure!(
        fields.windows(2).all(|w| w[0] < w[1]),
        "vary: names sorted and unique",
        "{fields:?}"
    );
    ensure!(
        fields
            .iter()
            .all(|n| !n.is_empty() && n != "*" && !n.contains(',') && *n == n.to_ascii_lowercase()),
        "vary: lower-case names, never *",
        "{fields:?}"
    );
    let key = SecondaryKey::from_request(&fields, headers);
    // A request that sends the normalised values again is the same variant.
    let again: HeaderList = key
        .fields()
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name.clone(), v.clone())))
        .collect();
    let rekeyed = SecondaryKey::from_request(&fields, &again);
    ensure!(
        rekeyed == key,
        "vary: a secondary key is a fixpoint of its normalisation",
        "{key:?} → {rekeyed:?}"
    );
    Ok(())
}

fn check_if_none_match(e: &Envelope, out: &mut Outcome) -> Result<(), String> {
    let (Some(list), Some(etag)) = (e.get("if-none-match"), e.get("etag")) else {
        return Ok(());
    };
    let matched = if_none_match(list, etag);
    out.note(if matched { "inm-match" } else { "inm-miss" });
    // A quote opens an entity tag whose commas do not split, so only a value without quotes is
    // read as a plain list here.
    // Members are trimmed of OWS (space and tab, RFC 9110 §5.6.3) only.
    if !list.contains('"') && list.split(',').any(|m| m.trim_matches([' ', '\t']) == "*") {
        ensure!(
            matched,
            "if-none-match: * matches any current representation",
            "{list:?}"
        );
    }
    Ok(())
}

fn check_range(e: &Envelope, headers: &HeaderList, out: &mut Outcome) -> Result<(), String> {
    let length = e.number(":length", 100);
    let reply = range_reply("GET", headers, 200, headers, length);
    match reply {
        RangeReply::Full => out.note("range-full"),
        RangeReply::Partial { start, end, total } => {
            out.note("range-partial");
            ensure!(
                start <= end && end < total && total == length,
                "range: a partial range lies inside the body",
                "{reply:?} of {length}"
            );
        }
        RangeReply::Unsatisfiable { total } => {
            out.note("range-416");
            ensure!(total == length, "range: 416 names the length");
        }
    }
    ensure!(
        range_reply("HEAD", headers, 200, headers, length) == RangeReply::Full
            && range_reply("GET", headers, 206, headers, length) == RangeReply::Full,
        "range: only a GET of a stored 200 is sliced"
    );
    Ok(())
}

fn check_writes(e: &Envelope, headers: &HeaderList, out: &mut Outcome) -> Result<(), String> {
    let target = e.get(":url").unwrap_or("https://a.example/api/products/5");
    let uris = invalidations("POST", 201, target, headers);
    ensure!(
        !uris.is_empty(),
        "invalidation: a write always invalidates its target"
    );
    out.note_num(bucket(uris.len()));
    let base = invalidations("POST", 201, &uris[0], &HeaderList::new());
    if base.first() == Some(&uris[0]) {
        let origin = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
        for uri in &uris[1..] {
            ensure!(
                origin(uri) == origin(&uris[0]),
                "invalidation: only the target's origin",
                "{uri:?} vs {:?}",
                uris[0]
            );
            // A URI holds no whitespace; a reference that does (`/a #f`) keeps it in the path,
            // which the parser's trimming of a field value then cannot reproduce.
            if !uri.contains(char::is_whitespace) {
                let again = invalidations("POST", 201, uri, &HeaderList::new());
                ensure!(
                    again.first() == Some(uri),
                    "invalidation: every result is a fixpoint",
                    "{uri:?} → {again:?}"
                );
            }
        }
    }
    if let Some(value) = e.get("cache-tag") {
        let tags = parse_tags(value);
        ensure!(
            parse_tags(&format_tags(&tags)) == tags,
            "cache-tag: format then parse is the identity",
            "{tags:?}"
        );
        let purge = PurgeRequest {
            tags: tags.iter().take(100).cloned().collect(),
            ..PurgeRequest::default()
        };
        ensure!(
            purge.tags.is_empty() || purge.validate().is_ok(),
            "cache-tag: parsed tags pass the purge log's validation",
            "{tags:?}"
        );
    }
    if let Some(purge) = after_write("POST", 201, target, headers, cache_policy()) {
        out.note("purge");
        ensure!(
            purge.validate().is_ok(),
            "purge after write: always valid",
            "{:?} for {target:?}",
            purge.validate()
        );
    }
    Ok(())
}
