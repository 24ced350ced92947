//! `intake`: the edge's first look at a request (`core/src/intake.rs`), with the request-id,
//! trace-context and principal rules it applies next, and the cache key the path and query make.
//!
//! Input: `:method` and `:url` pseudo-fields, then request header fields (`content-length`,
//! `x-request-id`, `traceparent`, `cf-connecting-ip`, `authorization`, anything else);
//! `:extra-headers` and `:extra-header-bytes` add to the header count and size without the bytes,
//! to reach the limits cheaply; `:subject` is tried as a token subject.
//!
//! Asserts: an accepted request is within every limit and its path is canonical (no dot segment,
//! `//`, encoded separator, `%`, control or backslash; normalising it again changes nothing);
//! `normalize_path` agrees with an independent strict decoder on the result and on the reason
//! for a refusal; refusals carry one of the documented statuses; the URL split keeps what the
//! client sent; the cache key is a fixpoint and a URL purge names its first line; request ids
//! and trace contexts come out valid and round-trip; every principal the edge sends is one the
//! origin accepts.

use std::net::IpAddr;

use breakwater_core::access::Presented;
use breakwater_core::headers::{FORWARDED_PREFIX, ROUTING_OVERRIDES, is_routing_override};
use breakwater_core::intake::{
    self, ALLOWED_METHODS, Limits, MAX_SUBJECT_LEN, Principal, RequestHead, Route,
};
use breakwater_core::trace::{MAX_REQUEST_ID_LEN, TraceContext, request_id};
use breakwater_origin::principal::Principal as OriginPrincipal;

mod model;

use super::{Outcome, Target, bucket, cache_policy, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "intake",
    about: "request intake: method, URL and path normalisation, header count and size, \
            Content-Length, request id, traceparent, principal, cache key",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 12 * 1024,
};

const DICTIONARY: &[&str] = &[
    "%2e",
    "%2E",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%00",
    "%0a",
    "%0d",
    "%7f",
    "%25",
    "%c0%ae",
    "%C3%A9",
    "%e2%80%ae",
    "%ff",
    "%+1",
    "%-1",
    "%",
    "..",
    ".",
    "//",
    "\\",
    "/",
    "?",
    "#",
    "&",
    "=",
    "/api/",
    "/api",
    "products",
    "utm_source",
    "fbclid",
    "gclid",
    "page",
    ":method: ",
    ":url: ",
    "content-length: ",
    "x-request-id: ",
    "traceparent: ",
    "cf-connecting-ip: ",
    "authorization: ",
    "Bearer ",
    "x-forwarded-for: ",
    "x-original-url: ",
    "http://",
    "https://",
    "::ffff:",
    "00-",
    "-01",
    "ff-",
    "TRACE",
    "CONNECT",
    "get",
    "\n",
    "\n\n",
];

const SEGMENTS: &[&str] = &[
    "api",
    "products",
    "1",
    "42",
    "cart",
    "orders",
    "..",
    ".",
    "%2e%2e",
    "%2E",
    "%2f",
    "%5c",
    "%00",
    "%0d%0a",
    "%c0%ae",
    "%252e",
    "%",
    "%zz",
    "%+1",
    "caf%C3%A9",
    "café",
    "",
    "a..b",
    ".well-known",
    "index.html",
    "%ff%fe",
    "a;b",
    "~user",
    "a b",
];

const PARAMS: &[&str] = &[
    "a=1",
    "b=2",
    "page=1",
    "page=2",
    "utm_source=x",
    "utm_medium=",
    "fbclid=z",
    "gclid",
    "=",
    "",
    "a",
    "a=1=2",
    "x=%20",
];

fn generate(rng: &mut Rng) -> Vec<u8> {
    let method = pick(
        rng,
        &[
            "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "get",
            "BREW",
        ],
    );
    let host = pick(
        rng,
        &[
            "http://edge.example",
            "https://h:8787",
            "http://[::1]:1",
            "",
        ],
    );
    let mut path = String::new();
    for _ in 0..rng.below(6) {
        path.push('/');
        let segment = if rng.one_in(6) {
            draw::noise(rng, 6)
        } else {
            pick(rng, SEGMENTS).to_owned()
        };
        path.push_str(&segment);
    }
    if path.is_empty() || rng.one_in(10) {
        path.push('/');
    }
    let mut url = format!("{host}{path}");
    if rng.one_in(2) {
        let params: Vec<&str> = (0..rng.below(5)).map(|_| pick(rng, PARAMS)).collect();
        url.push('?');
        url.push_str(&params.join("&"));
    }
    if rng.one_in(8) {
        url.push_str("#frag?x");
    }
    let mut e = Envelope::new().field(":method", method).field(":url", url);
    let headers: [(&str, draw::MakeFn); 8] = [
        ("content-length", |r| match r.below(4) {
            0 => draw::noise(r, 6),
            _ => draw::number(r),
        }),
        ("x-request-id", |r| match r.below(3) {
            0 => draw::noise(r, 20),
            _ => draw::text(r, b"abcdef0123456789-_.", 40),
        }),
        ("traceparent", |r| {
            let hex = |r: &mut Rng, n: usize| draw::text(r, b"0123456789abcdef", n);
            let mut parts = vec![
                pick(r, &["00", "01", "ff", "0", "zz"]).to_owned(),
                format!("{:0>32}", hex(r, 32)),
                format!("{:0>16}", hex(r, 16)),
                pick(r, &["01", "00", "03", "x"]).to_owned(),
            ];
            if r.one_in(6) {
                parts.push("extra".into());
            }
            parts.join("-")
        }),
        ("cf-connecting-ip", |r| match r.below(4) {
            0 => format!(
                "{}.{}.{}.{}",
                r.below(256),
                r.below(256),
                r.below(300),
                r.below(256)
            ),
            1 => format!("2001:db8:{:x}::{:x}", r.below(65536), r.below(65536)),
            2 => pick(
                r,
                &["::1", "::ffff:1.2.3.4", " 10.0.0.1 ", "fe80::1%eth0", ""],
            )
            .to_owned(),
            _ => draw::noise(r, 16),
        }),
        ("authorization", |r| {
            let scheme = pick(r, &["Bearer ", "bearer ", "Basic ", "Bearer", ""]);
            let token = match r.below(3) {
                0 => draw::noise(r, 30),
                1 => "a.b.c".to_owned(),
                _ => "eyJ.eyJ.sig, Bearer x.y.z".to_owned(),
            };
            format!("{scheme}{token}")
        }),
        ("x-forwarded-for", |r| draw::noise(r, 12)),
        ("accept-language", |r| {
            pick(r, &["en", "en-GB, en;q=0.8", "fr", ""]).to_owned()
        }),
        ("X-Original-URL", |_| "/admin".to_owned()),
    ];
    for (name, value) in headers {
        if rng.one_in(2) {
            e = e.field(name, value(rng));
        }
    }
    if rng.one_in(4) {
        e = e.field(":subject", draw::noise(rng, 20));
    }
    if rng.one_in(8) {
        e = e.field(":extra-headers", rng.range(0, 200).to_string());
    }
    if rng.one_in(8) {
        e = e.field(":extra-header-bytes", rng.range(0, 40_000).to_string());
    }
    e.to_bytes()
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let method = e.get(":method").unwrap_or("GET");
    let url = e.get(":url").unwrap_or("/");

    let (raw_path, query) = intake::split_raw_url(url);
    ensure!(
        raw_path.starts_with('/'),
        "split: the path starts with '/'",
        "{raw_path:?}"
    );
    ensure!(
        query.is_empty() || query.starts_with('?'),
        "split: the query is empty or starts with '?'",
        "{query:?}"
    );
    ensure!(
        !raw_path.contains(['?', '#']) && !query.contains('#'),
        "split: no query in the path, no fragment anywhere",
        "{raw_path:?} {query:?}"
    );
    ensure!(
        url.contains(&format!("{raw_path}{query}")) || raw_path == "/",
        "split: path and query are what the URL holds",
        "{url:?} → {raw_path:?} {query:?}"
    );

    // What the edge measures (src/pipeline/intake.rs): every header line, names and values.
    let mut header_count = e.headers().count();
    let mut header_bytes: usize = e.headers().map(|(n, v)| n.len() + v.len()).sum();
    header_count = header_count.saturating_add(e.number(":extra-headers", 0) as usize);
    header_bytes = header_bytes.saturating_add(e.number(":extra-header-bytes", 0) as usize);
    // The runtime joins repeated lines with ", ", as `Headers.get` does.
    let content_length: Vec<&str> = e.all("content-length").collect();
    let content_length = (!content_length.is_empty()).then(|| content_length.join(", "));
    let head = RequestHead {
        method,
        url,
        raw_path,
        header_count,
        header_bytes,
        content_length: content_length.as_deref(),
    };
    let limits = Limits::default();
    match intake::check(&head, &limits) {
        Ok(path) => {
            out.note("accepted");
            ensure!(
                ALLOWED_METHODS.contains(&method),
                "accepted: an allowed method",
                "{method:?}"
            );
            ensure!(
                url.len() <= limits.max_url_bytes,
                "accepted: URL within its limit"
            );
            ensure!(
                header_count <= limits.max_headers,
                "accepted: header count within its limit"
            );
            ensure!(
                header_bytes <= limits.max_header_bytes,
                "accepted: header bytes within limit"
            );
            if let Some(cl) = &content_length {
                let digits = cl.trim();
                ensure!(
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                    "accepted: Content-Length is one decimal number",
                    "{cl:?}"
                );
                ensure!(
                    digits
                        .parse::<u64>()
                        .is_ok_and(|n| n <= limits.max_body_bytes),
                    "accepted: Content-Length within the body limit",
                    "{cl:?}"
                );
            }
            check_canonical(&path)?;
            check_route_and_key(&e, &path, query, &mut out)?;
        }
        Err(rejection) => {
            out.note(rejection.kind());
            let status = rejection.status();
            ensure!(
                [400, 405, 413, 414, 431].contains(&status),
                "refused: a documented status",
                "{status}"
            );
            ensure!(
                !rejection.detail().is_empty() && !rejection.title().is_empty(),
                "refused: the answer says why"
            );
            if !ALLOWED_METHODS.contains(&method) {
                ensure!(
                    status == 405,
                    "refused: a method is checked first",
                    "{status}"
                );
            }
        }
    }
    let decoded = intake::normalize_path(raw_path);
    if let Err(why) = decoded {
        out.note(why.as_str());
    }
    let model = model::strict_normalize(raw_path);
    ensure!(
        decoded == model,
        "normalize_path: agrees with a strict decoder",
        "{raw_path:?}: normalize_path gives {decoded:?}, a decoder that takes only two hex \
         digits after '%' gives {model:?}"
    );

    check_identity(&e, &mut out)?;
    Ok(out)
}

/// An accepted path can name no other file than it appears to.
fn check_canonical(path: &str) -> Result<(), String> {
    ensure!(
        path.starts_with('/'),
        "canonical: starts with '/'",
        "{path:?}"
    );
    ensure!(
        !path.contains("//"),
        "canonical: no empty segment",
        "{path:?}"
    );
    ensure!(
        path.split('/').all(|s| s != "." && s != ".."),
        "canonical: no dot segment",
        "{path:?}"
    );
    ensure!(
        !path.contains(['%', '\\']) && !path.chars().any(|c| (c as u32) < 0x20 || c == '\u{7f}'),
        "canonical: no '%', backslash or control",
        "{path:?}"
    );
    ensure!(
        intake::normalize_path(path).as_deref() == Ok(path),
        "canonical: normalising again changes nothing",
        "{path:?}"
    );
    Ok(())
}

fn check_route_and_key(
    e: &Envelope,
    path: &str,
    query: &str,
    out: &mut Outcome,
) -> Result<(), String> {
    let prefixes = ["/api/".to_owned()];
    let route = Route::for_path(path, &prefixes);
    out.note(route.as_str());
    ensure!(
        (route == Route::Origin) == (path.starts_with("/api/") || path == "/api"),
        "route: /api/ and /api go to the origin, the rest to the assets",
        "{path:?} → {route:?}"
    );
    let policy = cache_policy();
    let Some(cached) = policy.route(path) else {
        return Ok(());
    };
    out.note(cached.mode.as_str());
    let header = |name: &str| e.get(name).map(str::to_owned);
    let key = cached.key.key(path, query, header);
    let first = key.split('\n').next().unwrap_or_default();
    ensure!(
        policy.url_key(path, query) == first,
        "key: a URL purge names the key's first line",
        "{path:?}{query:?}: key {key:?}, url_key {:?}",
        policy.url_key(path, query)
    );
    let (key_path, key_query) = match first.find('?') {
        Some(q) => first.split_at(q),
        None => (first, ""),
    };
    ensure!(key_path == path, "key: starts with the path", "{key:?}");
    let again = cached.key.key(key_path, key_query, header);
    ensure!(
        again == key,
        "key: a fixpoint of its own rules",
        "{key:?} → {again:?}"
    );
    Ok(())
}

/// Request id, trace context, principal and authorization, as the edge derives them.
fn check_identity(e: &Envelope, out: &mut Outcome) -> Result<(), String> {
    let random = [0x5a; 16];
    let incoming = e.get("x-request-id");
    let id = request_id(incoming, random);
    ensure!(
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "request id: short and safe",
        "{id:?}"
    );
    out.note(if Some(id.as_str()) == incoming {
        "id-kept"
    } else {
        "id-fresh"
    });

    if let Some(header) = e.get("traceparent") {
        let parsed = TraceContext::parse(header);
        if let Some(t) = parsed {
            out.note("trace-continued");
            ensure!(
                TraceContext::parse(&t.to_header()) == Some(t),
                "traceparent: a parsed context round-trips",
                "{header:?}"
            );
        }
        let next = TraceContext::continue_or_start(Some(header), [0; 24]);
        ensure!(
            TraceContext::parse(&next.to_header()) == Some(next),
            "traceparent: what the edge sends parses",
            "{header:?} → {}",
            next.to_header()
        );
        if let Some(t) = parsed {
            ensure!(
                next.trace_id == t.trace_id,
                "traceparent: the trace id is kept"
            );
        }
    }

    let principal = Principal::from_connecting_ip(e.get("cf-connecting-ip"));
    let key = principal.key();
    match &principal {
        Principal::Anonymous => out.note("anonymous"),
        Principal::Ip(IpAddr::V4(_)) => out.note("ipv4"),
        _ => out.note("ipv6"),
    }
    if principal != Principal::Anonymous {
        ensure!(
            OriginPrincipal::parse(&key).is_ok(),
            "principal: the origin accepts every principal the edge sends",
            "{key:?}"
        );
    }
    if let Some(subject) = e.get(":subject")
        && let Some(user) = Principal::user(subject)
    {
        out.note("subject-accepted");
        ensure!(user.key() == subject, "subject: the key is the subject");
        ensure!(
            (1..=MAX_SUBJECT_LEN).contains(&subject.len())
                && subject.bytes().all(|b| b.is_ascii_graphic()),
            "subject: 1 to 128 visible ASCII characters",
            "{subject:?}"
        );
        ensure!(
            OriginPrincipal::parse(subject).is_ok(),
            "subject: the origin accepts it as a principal",
            "{subject:?}"
        );
    }
    match Presented::from_header(e.get("authorization")) {
        Presented::AccessToken(token) => {
            out.note("access-token");
            ensure!(
                token.contains('.') && !token.contains([' ', ',']) && !token.is_empty(),
                "authorization: an access token is one JWS-shaped token",
                "{token:?}"
            );
        }
        other => out.note(&format!("{other:?}")),
    }
    for (name, _) in e.headers() {
        let lower = name.trim().to_ascii_lowercase();
        let model =
            ROUTING_OVERRIDES.contains(&lower.as_str()) || lower.starts_with(FORWARDED_PREFIX);
        ensure!(
            is_routing_override(name) == model,
            "headers: routing overrides are the listed names and X-Forwarded-*",
            "{name:?}"
        );
    }
    out.note_num(bucket(e.fields.len()));
    Ok(())
}
