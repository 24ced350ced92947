//! `edge-auth`: how the origin knows a request came from the edge (`Breakwater-Signature`,
//! `core/src/signing.rs`) and how the edge knows a guest (`Cookie`, `core/src/guest.rs`).
//!
//! Input: `breakwater-signature` and `cookie` are the header values as received; `:method`,
//! `:path`, `:principal` and the body are the request a signature covers; `:now` the verifier's
//! clock (Unix seconds); `:address` and `:key` a guest's address and first `Idempotency-Key`.
//!
//! Asserts: a parsed signature's nonce is 1 to 64 visible characters without a comma; a received
//! signature that verifies was made with the fuzzer's key for exactly this request (re-signing it
//! gives the same header); a signature the target makes for the input's request verifies within
//! the skew and not past it, and changing the method, the path, the principal or one body byte
//! makes it a mismatch; a cookie header yields a guest only when it carries exactly one guest
//! cookie whose MAC holds, and the id is 32 lower-case hex digits; a session minted for
//! `:address` and `:key` round-trips through a cookie and differs from the next key's.

use breakwater_core::guest;
use breakwater_core::signing::{self, MAX_SKEW_S, Refused, Signature, Signed};

use super::{Outcome, Target, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "edge-auth",
    about: "Breakwater-Signature values and the requests they cover, guest session cookies",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 4 * 1024,
};

const DICTIONARY: &[&str] = &[
    "t=",
    "n=",
    "v1=",
    ", ",
    ",",
    "=",
    ";",
    " ",
    "__Host-breakwater-guest=",
    ".",
    "0",
    "f",
    "18446744073709551615",
    "-1",
    ":method: ",
    ":path: ",
    ":principal: ",
    ":now: ",
    "breakwater-signature: ",
    "cookie: ",
];

/// The fuzzer's edge key: fixed, so corpus signatures and cookies stay valid across runs.
const KEY: &[u8] = b"breakwater fuzz edge key 0123456789";
/// The verifier's clock unless the input says.
const NOW: u64 = 1_750_000_000;

fn generate(rng: &mut Rng) -> Vec<u8> {
    let method = pick(rng, &["GET", "POST", "PUT", "DELETE", "get", ""]);
    let path = pick(
        rng,
        &[
            "/api/orders",
            "/api/orders?page=2",
            "/",
            "/internal/events/batch",
            "/a b",
        ],
    );
    let principal = pick(rng, &["user:42", "guest:0123", "key:abc", ""]);
    let body = draw::noise(rng, 40);
    let at = NOW + rng.range(0, 200) - 100;
    let nonce = draw::text(rng, b"0123456789abcdef,= ", 40);
    let request = Signed {
        method,
        path_and_query: path,
        principal: (!principal.is_empty()).then_some(principal),
        body: body.as_bytes(),
    };
    let mut e = Envelope::new()
        .field(":method", method)
        .field(":path", path)
        .field(":now", NOW.to_string());
    if !principal.is_empty() {
        e = e.field(":principal", principal);
    }
    if rng.one_in(2) {
        e = e.field(
            "breakwater-signature",
            signing::sign(KEY, at, &nonce, &request),
        );
    }
    let address = pick(rng, &["ip:203.0.113.7", "ip6:2001:db8:0:1::/64", ""]);
    let key = draw::noise(rng, 30);
    let id = guest::new_id(KEY, address, &key);
    let cookie = match rng.below(3) {
        0 => format!("{}={}", guest::COOKIE, guest::cookie_value(KEY, &id)),
        1 => format!(
            "a=b; {}={}; c=d",
            guest::COOKIE,
            guest::cookie_value(KEY, &id)
        ),
        _ => draw::noise(rng, 60),
    };
    e.field("cookie", cookie)
        .field(":address", address)
        .field(":key", key)
        .with_body(body.into_bytes())
        .to_bytes()
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let now = e.number(":now", NOW);
    let body = e.body.clone();
    let request = Signed {
        method: e.get(":method").unwrap_or("GET"),
        path_and_query: e.get(":path").unwrap_or("/"),
        principal: e.get(":principal"),
        body: &body,
    };

    if let Some(value) = e.get("breakwater-signature") {
        match Signature::parse(value) {
            Ok(signature) => {
                out.note("parsed");
                ensure!(
                    (1..=64).contains(&signature.nonce.len())
                        && signature
                            .nonce
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b','),
                    "signature: a nonce is 1 to 64 visible characters without a comma",
                    "{:?}",
                    signature.nonce
                );
                let verdict = signature.verify(&[KEY], now, &request);
                out.note(&format!("verify {verdict:?}"));
                if verdict.is_ok() {
                    let again =
                        signing::sign(KEY, signature.timestamp_s, &signature.nonce, &request);
                    ensure!(
                        Signature::parse(&again).as_ref() == Ok(&signature),
                        "signature: an accepted one is the key's for this request",
                        "{value:?}"
                    );
                }
            }
            Err(refused) => {
                out.note(&format!("refused {refused:?}"));
                ensure!(
                    refused == Refused::Malformed,
                    "signature: parsing only says malformed"
                );
            }
        }
    }

    // A signature of our own over the input's request.
    if request.path_and_query.bytes().all(|b| b != b'\n') {
        let header = signing::sign(KEY, now, "fuzz-nonce", &request);
        let own = Signature::parse(&header).map_err(|e| format!("signature: own header: {e}"))?;
        ensure!(
            own.verify(&[KEY], now, &request).is_ok()
                && own
                    .verify(&[KEY], now.saturating_sub(MAX_SKEW_S), &request)
                    .is_ok(),
            "signature: our own verifies within the skew"
        );
        if let Some(past) = now.checked_add(MAX_SKEW_S + 1) {
            ensure!(
                own.verify(&[KEY], past, &request) == Err(Refused::Stale),
                "signature: our own is stale past the skew"
            );
        }
        let other_method = format!("{}X", request.method);
        let other_path = format!("{}/", request.path_and_query);
        let other_principal = format!("{}x", request.principal.unwrap_or(""));
        let mut other_body = body.clone();
        match other_body.first_mut() {
            Some(b) => *b ^= 1,
            None => other_body.push(b'x'),
        }
        for (what, changed) in [
            (
                "method",
                Signed {
                    method: &other_method,
                    ..request
                },
            ),
            (
                "path",
                Signed {
                    path_and_query: &other_path,
                    ..request
                },
            ),
            (
                "principal",
                Signed {
                    principal: Some(&other_principal),
                    ..request
                },
            ),
            (
                "body",
                Signed {
                    body: &other_body,
                    ..request
                },
            ),
        ] {
            ensure!(
                own.verify(&[KEY], now, &changed) == Err(Refused::Mismatch),
                "signature: every covered part is bound",
                "{what}"
            );
        }
    }

    if let Some(cookie) = e.get("cookie") {
        match guest::from_cookie_header(KEY, cookie) {
            Some(id) => {
                out.note("guest");
                ensure!(
                    id.len() == 32
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "cookie: an id is 32 lower-case hex digits",
                    "{id:?}"
                );
                let guests: Vec<&str> = cookie
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .filter(|(name, _)| *name == guest::COOKIE)
                    .map(|(_, value)| value)
                    .collect();
                ensure!(
                    guests == [guest::cookie_value(KEY, &id)],
                    "cookie: a guest comes from exactly one valid cookie",
                    "{cookie:?}"
                );
            }
            None => out.note("no guest"),
        }
    }

    let address = e.get(":address").unwrap_or("");
    let key = e.get(":key").unwrap_or("");
    let id = guest::new_id(KEY, address, key);
    let header = format!("{}={}", guest::COOKIE, guest::cookie_value(KEY, &id));
    ensure!(
        guest::from_cookie_header(KEY, &header).as_deref() == Some(id.as_str()),
        "cookie: a minted session round-trips"
    );
    ensure!(
        guest::new_id(KEY, address, &format!("{key}x")) != id,
        "cookie: another key opens another session"
    );
    Ok(out)
}
