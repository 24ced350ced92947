//! `cache-entry`: a whole response through the cache (`core/src/cache/`): stored, looked up at
//! several instants, revalidated with a `304` or a `HEAD`, served when the origin fails, kept
//! among its `Vary` variants, and written to and read from the tiers' byte format.
//!
//! Input: `:status`, `:method`, `:sent` and `:received` (Unix seconds), `:later` (seconds after
//! `:received` of the lookup), the route's `:floor`, `:ceiling`, `:swr`, `:sie` and `:force`;
//! the response's header fields; request header fields as `> name: value`, and the fields of a
//! later `304`/`HEAD` answer as `< name: value`. The body is also read as the tiers' stored bytes.
//!
//! Asserts: a stored entry has a `Date` and no hop-by-hop field; fresh means younger than the
//! lifetime, and freshness never returns as time passes; stale serving stays inside
//! `stale-while-revalidate` or `stale-if-error` and never under `must-revalidate`/`no-cache`;
//! whatever is served matches the request's `Vary` values; a `304` or `HEAD` update moves the
//! response time to the new answer and keeps the status; the tiers' format round-trips an entry
//! with its body, and no stored bytes make `decode` panic; retention is at least a second.

use breakwater_core::cache::{
    CacheOptions, Entry, HeadFreshen, HeaderList, Lookup, OnOriginError, Record, RequestHead,
    Revalidated, Storable, Timestamp, answers_not_modified, conditional_headers, decode, encode,
    freshen_with_head, insert_variant, lookup, lookup_miss, on_origin_error, retention,
    select_variant, stale_if_error_window, storability, update_from_304,
};
use breakwater_core::headers::HOP_BY_HOP;

use super::{Outcome, Target, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "cache-entry",
    about: "a response stored, looked up, revalidated (304, HEAD), served stale on error, kept \
            among Vary variants and round-tripped through the tiers' record format",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 4 * 1024,
};

const DICTIONARY: &[&str] = &[
    "max-age=",
    "s-maxage=",
    "no-cache",
    "no-store",
    "private",
    "public",
    "must-revalidate",
    "stale-while-revalidate=",
    "stale-if-error=",
    "max-stale",
    "min-fresh=",
    "only-if-cached",
    "immutable",
    "cache-control: ",
    "cdn-cache-control: ",
    "vary: ",
    "etag: ",
    "last-modified: ",
    "date: ",
    "expires: ",
    "age: ",
    "set-cookie: ",
    "connection: ",
    "keep-alive: ",
    "> ",
    "< ",
    "> cookie: ",
    "> authorization: ",
    "> if-none-match: ",
    "> if-modified-since: ",
    "> accept-language: ",
    "< etag: ",
    ":status: ",
    ":later: ",
    ":force: 1",
    ":ceiling: ",
    "W/",
    "\"",
    "*",
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "BWR2",
    "\n",
];

/// When the response arrived, unless the input says: 2026-01-01.
const T0: u64 = 1_767_225_600;

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut e = Envelope::new()
        .field(
            ":status",
            pick(
                rng,
                &[
                    "200", "200", "203", "301", "404", "410", "500", "206", "999",
                ],
            ),
        )
        .field(":later", rng.range(0, 200).to_string());
    if rng.one_in(3) {
        e = e.field(":method", pick(rng, &["GET", "HEAD", "POST", "get"]));
    }
    if rng.one_in(4) {
        e = e.field(":received", (T0 + rng.range(0, 5)).to_string());
    }
    for name in [":floor", ":ceiling", ":swr", ":sie"] {
        if rng.one_in(4) {
            e = e.field(name, rng.range(0, 120).to_string());
        }
    }
    if rng.one_in(6) {
        e = e.field(":force", "1");
    }
    let directives = [
        "public",
        "private",
        "no-store",
        "no-cache",
        "must-revalidate",
        "s-maxage=30",
        "max-age=60",
        "max-age=0",
        "stale-while-revalidate=30",
        "stale-if-error=60",
        "immutable",
        "max-age=oops",
        "private=\"set-cookie\"",
    ];
    let cc: Vec<&str> = (0..rng.below(4)).map(|_| pick(rng, &directives)).collect();
    e = e.field("cache-control", cc.join(", "));
    let date = |r: &mut Rng| {
        let offset = r.range(0, 200);
        breakwater_core::cache::format_http_date(Timestamp::from_secs(T0 - 100 + offset))
    };
    let optional: [(&str, draw::Maker); 9] = [
        ("etag", &|r: &mut Rng| {
            pick(r, &["\"v1\"", "W/\"v1\"", "v1", "\"a b\""]).to_owned()
        }),
        ("date", &date),
        ("last-modified", &date),
        ("expires", &date),
        ("age", &|r: &mut Rng| draw::number(r)),
        ("vary", &|r: &mut Rng| {
            pick(r, &["accept-language", "*", "Accept-Language, Cookie", ""]).to_owned()
        }),
        ("cdn-cache-control", &|r: &mut Rng| {
            pick(r, &["max-age=30", "Max-Age=1", "no-store", "private"]).to_owned()
        }),
        ("set-cookie", &|_: &mut Rng| "a=1".to_owned()),
        ("connection", &|_: &mut Rng| "x-hop".to_owned()),
    ];
    for (name, value) in optional {
        if rng.one_in(3) {
            e = e.field(name, value(rng));
        }
    }
    let request: [(&str, draw::Maker); 6] = [
        ("> accept-language", &|r: &mut Rng| {
            pick(r, &["en", "fr", "en,  fr"]).to_owned()
        }),
        ("> cache-control", &|r: &mut Rng| {
            pick(
                r,
                &[
                    "max-stale",
                    "max-stale=10",
                    "no-cache",
                    "min-fresh=5",
                    "only-if-cached",
                    "stale-if-error=100",
                    "max-age=0",
                ],
            )
            .to_owned()
        }),
        ("> if-none-match", &|r: &mut Rng| {
            pick(r, &["\"v1\"", "*", "W/\"v1\", \"x\""]).to_owned()
        }),
        ("> if-modified-since", &date),
        ("> cookie", &|_: &mut Rng| "s=1".to_owned()),
        ("> authorization", &|_: &mut Rng| "Bearer t".to_owned()),
    ];
    for (name, value) in request {
        if rng.one_in(4) {
            e = e.field(name, value(rng));
        }
    }
    for (name, value) in [
        ("< etag", "\"v1\""),
        ("< cache-control", "max-age=5"),
        ("< date", ""),
    ] {
        if rng.one_in(3) {
            let value = if value.is_empty() {
                date(rng)
            } else {
                value.to_owned()
            };
            e = e.field(name, value);
        }
    }
    if rng.one_in(4) {
        e = e.with_body(stored_bytes(rng));
    }
    e.to_bytes()
}

/// A tiers' record of one or two stored responses, for the decoder to meet valid bytes that the
/// mutations then break.
fn stored_bytes(rng: &mut Rng) -> Vec<u8> {
    let cache_control = pick(
        rng,
        &["max-age=60", "public", "s-maxage=5, must-revalidate"],
    );
    let vary = pick(rng, &["", "accept-language"]);
    let response: HeaderList = [
        ("Cache-Control", cache_control),
        ("ETag", "\"v1\""),
        ("Vary", vary),
    ]
    .into_iter()
    .collect();
    let request: HeaderList = [("accept-language", "en")].into_iter().collect();
    let at = Timestamp::from_secs(T0);
    let opts = CacheOptions::default();
    let Ok(entry) = Entry::store(
        &RequestHead::new("GET", &request),
        200,
        &response,
        at,
        at,
        &opts,
    ) else {
        return Vec::new();
    };
    let record = Record {
        key: "/api/products/1".to_owned(),
        epoch: rng.range(0, 9),
        entry,
    };
    let body = draw::noise(rng, 20).into_bytes();
    let variants = rng.range(1, 2) as usize;
    encode(std::iter::repeat_n((&record, body.as_slice()), variants))
}

/// The three header lists an input holds: the response's, the request's (`>`), a later
/// answer's (`<`).
fn header_lists(e: &Envelope) -> (HeaderList, HeaderList, HeaderList) {
    let (mut response, mut request, mut later) =
        (HeaderList::new(), HeaderList::new(), HeaderList::new());
    for (name, value) in e.headers() {
        if let Some(name) = name.strip_prefix('>') {
            request.push(name.trim(), value);
        } else if let Some(name) = name.strip_prefix('<') {
            later.push(name.trim(), value);
        } else {
            response.push(name, value);
        }
    }
    (response, request, later)
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    // The record format the tiers store: any bytes read back without a panic, and what reads
    // back writes and reads again to the same thing.
    if let Ok(records) = decode(&e.body) {
        out.note("decoded");
        let again = encode(records.iter().map(|(r, b)| (r, *b)));
        ensure!(
            decode(&again).as_ref() == Ok(&records),
            "record: re-encoding reads back the same"
        );
    }

    let (response, request, later) = header_lists(&e);
    let status = u16::try_from(e.number(":status", 200)).unwrap_or(200);
    let method = e.get(":method").unwrap_or("GET");
    let received = Timestamp::from_secs(e.number(":received", T0));
    let sent = Timestamp::from_secs(e.number(":sent", received.as_secs().saturating_sub(1)));
    let ceiling = e.get(":ceiling").map(|_| e.number(":ceiling", 0));
    let opts = CacheOptions {
        min_lifetime: e.number(":floor", 0).min(ceiling.unwrap_or(u64::MAX)),
        max_lifetime: ceiling,
        stale_while_revalidate: e.number(":swr", 0),
        stale_if_error: e.number(":sie", 0),
        force: e.get(":force").is_some() && ceiling.is_some_and(|c| c > 0),
        ..CacheOptions::default()
    };
    let req = RequestHead::new(method, &request);
    let storable = storability(&req, status, &response, &opts);
    let entry = match Entry::store(&req, status, &response, sent, received, &opts) {
        Ok(entry) => entry,
        Err(why) => {
            out.note(why.as_str());
            ensure!(
                storable == Storable::NotStorable(why),
                "store: agrees with storability",
                "{storable:?} vs {why:?}"
            );
            out.note(lookup_miss(&req).as_str());
            return Ok(out);
        }
    };
    out.note("stored");
    ensure!(
        storable == Storable::Store,
        "store: agrees with storability",
        "{storable:?}"
    );
    ensure!(
        entry.headers().contains("date"),
        "store: a stored response has a Date"
    );
    for (name, _) in entry.headers().iter() {
        ensure!(
            !HOP_BY_HOP
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name.trim())),
            "store: no hop-by-hop field is stored",
            "{name:?}"
        );
    }
    ensure!(
        entry.matches(&request),
        "vary: an entry matches the request that stored it"
    );

    let later_secs = e.number(":later", 0);
    let now = received.plus(later_secs);
    check_serving(&entry, &req, received, now, &opts, &mut out)?;
    check_updates(&entry, &req, &later, now, &opts, &mut out)?;

    // The tiers' format, with a body.
    let record = Record {
        key: "/api/products/1".to_owned(),
        epoch: later_secs,
        entry: entry.clone(),
    };
    let body = e.body.as_slice();
    let bytes = encode([(&record, body)]);
    ensure!(
        decode(&bytes) == Ok(vec![(record, body)]),
        "record: an entry and its body round-trip"
    );
    ensure!(
        retention(&entry, now, &opts) >= 1,
        "retention: at least a second"
    );

    // Variants: the new one goes first and is the one this request selects.
    let mut variants = vec![entry.clone()];
    insert_variant(&mut variants, entry.clone(), &request);
    ensure!(
        select_variant(&variants, &request) == Some(&entry),
        "variants: the request selects what it stored"
    );
    if answers_not_modified(&req, &entry) {
        out.note("not-modified");
        ensure!(
            matches!(method, "GET" | "HEAD")
                && (request.contains("if-none-match") || request.contains("if-modified-since")),
            "conditional: a 304 only for a conditional GET or HEAD"
        );
    }
    Ok(out)
}

fn check_serving(
    entry: &Entry,
    req: &RequestHead<'_>,
    received: Timestamp,
    now: Timestamp,
    opts: &CacheOptions<'_>,
    out: &mut Outcome,
) -> Result<(), String> {
    let d = entry.directives(opts);
    let lifetime = entry.lifetime(opts).seconds;
    let swr = d
        .stale_while_revalidate
        .and_then(|w| w.seconds())
        .unwrap_or(0)
        .max(opts.stale_while_revalidate);
    let sie = stale_if_error_window(entry, req, opts);
    let decision = lookup(entry, req, now, opts);
    out.note(decision.as_str());
    let age = entry.current_age(now);
    ensure!(
        age >= entry.current_age(received),
        "age: never decreases as time passes"
    );
    match decision {
        Lookup::Fresh => {
            ensure!(
                age < lifetime,
                "lookup: fresh means younger than the lifetime",
                "{age} ≥ {lifetime}"
            );
            ensure!(
                lookup(entry, req, received, opts) == Lookup::Fresh,
                "lookup: fresh now means fresh at every earlier instant"
            );
        }
        Lookup::StaleWhileRevalidate => ensure!(
            age >= lifetime
                && age < lifetime.saturating_add(swr)
                && !d.forbids_stale()
                && !d.requires_validation(),
            "lookup: stale-while-revalidate only inside its window",
            "age {age}, lifetime {lifetime}, window {swr}"
        ),
        Lookup::StaleAllowed => ensure!(
            !d.forbids_stale(),
            "lookup: a client's max-stale never overrides must-revalidate"
        ),
        _ => {}
    }
    if decision.serves_stored() {
        ensure!(
            entry.matches(req.headers),
            "lookup: serves only a matching variant"
        );
    }
    let headers = entry.headers_at(now);
    ensure!(
        headers.get("age").as_deref() == Some(age.to_string().as_str()),
        "serve: Age is the current age"
    );
    match on_origin_error(entry, req, now, opts) {
        OnOriginError::ServeFresh => ensure!(age < lifetime, "origin error: fresh is fresh"),
        OnOriginError::ServeStale => {
            out.note("serve-stale");
            ensure!(
                age >= lifetime
                    && age - lifetime < sie
                    && !d.forbids_stale()
                    && !d.requires_validation(),
                "origin error: stale only inside stale-if-error",
                "age {age}, lifetime {lifetime}, window {sie}"
            );
        }
        OnOriginError::Fail(why) => out.note(why.as_str()),
    }
    Ok(())
}

fn check_updates(
    entry: &Entry,
    req: &RequestHead<'_>,
    later: &HeaderList,
    now: Timestamp,
    opts: &CacheOptions<'_>,
    out: &mut Outcome,
) -> Result<(), String> {
    let conditional = conditional_headers(entry);
    if entry.headers().contains("etag") {
        ensure!(
            conditional.contains("if-none-match"),
            "revalidation: a stored tag is always sent"
        );
    }
    let sent = now;
    let answered = now.plus(1);
    match update_from_304(entry, req, later, sent, answered, opts) {
        Revalidated::Updated(updated) => {
            out.note("304-updated");
            ensure!(
                updated.response_time() == answered && updated.status() == entry.status(),
                "304: the entry is confirmed at the answer's time, status kept"
            );
        }
        Revalidated::Uncacheable { reason, .. } => out.note(reason.as_str()),
        Revalidated::Mismatch => out.note("304-mismatch"),
    }
    match freshen_with_head(entry, req, 200, later, sent, answered, opts) {
        HeadFreshen::Updated(updated) => {
            out.note("head-updated");
            ensure!(
                updated.response_time() == answered && updated.status() == entry.status(),
                "head: the entry is confirmed at the answer's time, status kept"
            );
        }
        other => out.note(other.as_str()),
    }
    Ok(())
}
