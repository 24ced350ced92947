//! Access tokens verified at the edge: a real token from the origin's login is the principal the
//! origin sees; every forged, stale or misdirected token is a `401` at the edge that never
//! reaches the origin; the token's subject, not the address, owns the rate-limit bucket; and a
//! token holder neither reads nor fills the shared cache on a route that does not share it.
//!
//! The harness starts the origin with [`SIGNING_SEED`] and gives the edge the origin's published
//! JWKS (`ACCESS_TOKENS`), so the cases can sign tokens of their own with the origin's key.

use crate::harness::{Env, Reply, SIGNING_SEED};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use breakwater_core::token::{Claims, Signer};
use hmac::{Hmac, Mac};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const CASES: [(&str, crate::Case); 7] = [
    (
        "tokens::a_real_token_is_the_principal_the_origin_sees",
        a_real_token_is_the_principal_the_origin_sees,
    ),
    (
        "tokens::every_attack_is_a_401_that_never_reaches_the_origin",
        every_attack_is_a_401_that_never_reaches_the_origin,
    ),
    (
        "tokens::no_token_or_another_scheme_passes_as_before",
        no_token_or_another_scheme_passes_as_before,
    ),
    (
        "tokens::the_subject_owns_the_rate_limit_bucket",
        the_subject_owns_the_rate_limit_bucket,
    ),
    (
        "tokens::a_token_holder_bypasses_a_private_cache_route",
        a_token_holder_bypasses_a_private_cache_route,
    ),
    (
        "tokens::a_token_holder_shares_the_catalogue_cache",
        a_token_holder_shares_the_catalogue_cache,
    ),
    (
        "tokens::sign_ins_to_one_account_are_limited",
        sign_ins_to_one_account_are_limited,
    ),
];

const CHALLENGE: &str = r#"Bearer realm="breakwater", error="invalid_token""#;
const ISS: &str = "breakwater-origin";
const AUD: &str = "breakwater";

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token the origin would issue for `sub`, signed with its key.
fn token_for(sub: &str) -> String {
    Signer::from_seed(&SIGNING_SEED).sign(&Claims::new(ISS, AUD, sub, "e2e", now(), 900))
}

/// Ten sign-ins to one account reach the origin (wrong password: `401`); the eleventh, with the
/// address written differently, gets `429` from the edge; another account is not affected.
fn sign_ins_to_one_account_are_limited(env: &Env) -> Result<(), String> {
    let account = format!("guessed-{}@example.com", std::process::id());
    let json = [("content-type", "application/json")];
    let attempt = |email: &str| {
        let body = json!({ "email": email, "password": "wrong" }).to_string();
        env.send("POST", "/api/auth/login", &json, Some(&body))
    };
    for i in 0..10 {
        let r = attempt(&account)?;
        check(r.status == 401, || {
            format!("attempt {i}: {} {}", r.status, r.text())
        })?;
    }
    let r = attempt(&format!("  {}", account.to_uppercase()))?;
    check(r.status == 429 && r.header("retry-after").is_some(), || {
        format!("attempt 11: {} {}", r.status, r.text())
    })?;
    let other = attempt(&format!("other-{account}"))?;
    check(other.status == 401, || {
        format!("another account: {} {}", other.status, other.text())
    })
}

/// A fresh account, signed in through the edge: its id and access token.
fn sign_up(env: &Env) -> Result<(i64, String), String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let email = format!(
        "tokens-{}-{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let body = json!({ "email": email, "password": "correct horse battery staple" }).to_string();
    let json = [("content-type", "application/json")];
    let created = env.send("POST", "/api/users", &json, Some(&body))?;
    check(created.status == 201, || {
        format!("sign-up: {} {}", created.status, created.text())
    })?;
    let id = created.json()?["id"]
        .as_i64()
        .ok_or("the account has no id")?;
    let login = env.send("POST", "/api/auth/login", &json, Some(&body))?;
    check(login.status == 200, || {
        format!("login: {} {}", login.status, login.text())
    })?;
    let token = login.json()?["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned();
    Ok((id, token))
}

fn orders_of(env: &Env, principal: &str) -> Result<i64, String> {
    let principal = breakwater_origin::principal::Principal::parse(principal)
        .map_err(|e| format!("{principal}: {e:?}"))?;
    env.rt
        .block_on(breakwater_origin::order::history::count(
            &env.origin_db,
            &principal,
        ))
        .map_err(|e| e.to_string())
}

fn a_real_token_is_the_principal_the_origin_sees(env: &Env) -> Result<(), String> {
    let (id, token) = sign_up(env)?;
    let auth = bearer(&token);
    // The cart: the origin checks the token again itself.
    let cart = env.get("/api/cart", &[("authorization", &auth)])?;
    check(cart.status == 200, || {
        format!("cart: {} {}", cart.status, cart.text())
    })?;
    // An order is owned by the principal the edge sends: `user:<id>`, not the address.
    let key = format!("tokens-order-of-user-{id}");
    let order = env.send(
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", &key),
            ("authorization", &auth),
        ],
        Some(r#"{"items": [{"product_id": 3, "quantity": 1}]}"#),
    )?;
    check(order.status == 201, || {
        format!("order: {} {}", order.status, order.text())
    })?;
    let principal = format!("user:{id}");
    check(orders_of(env, &principal)? == 1, || {
        format!("no order owned by {principal}")
    })?;
    let mine = env.get("/api/orders", &[("authorization", &auth)])?;
    let listed = mine.json()?["items"].as_array().map_or(0, Vec::len);
    check(mine.status == 200 && listed == 1, || {
        format!("the user's orders: {} {}", mine.status, mine.text())
    })?;
    // The same address without the token is another principal, with none of them.
    let anonymous = env.get("/api/orders", &[])?;
    let id = &order.json()?["id"];
    let seen = anonymous.json()?["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|o| &o["id"] == id));
    check(!seen, || {
        format!("the address sees the user's order: {}", anonymous.text())
    })
}

/// `header.payload.signature` from raw JSON, with `sign` making the signature bytes.
fn forged(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn hs256(key: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

fn every_attack_is_a_401_that_never_reaches_the_origin(env: &Env) -> Result<(), String> {
    let signer = Signer::from_seed(&SIGNING_SEED);
    let other = Signer::from_seed(&[0x17; 32]);
    let kid = signer.kid().to_string();
    let public = signer.public_key();
    let jwk_x = public.to_jwk().x;
    let t = now();
    let claims = |sub: &str, iss: &str, aud: &str, nbf: u64, exp: u64| json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp, "nbf": nbf, "iat": nbf, "jti": "x"});
    let good = claims("user:1", ISS, AUD, t, t + 900);
    let header = |alg: &str, kid: &str| json!({"alg": alg, "typ": "JWT", "kid": kid});
    let ours = |c: &serde_json::Value| {
        signer.sign_raw(
            header("EdDSA", &kid).to_string().as_bytes(),
            c.to_string().as_bytes(),
        )
    };
    let valid = ours(&good);
    let tampered = {
        let parts: Vec<&str> = valid.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64(claims("user:2", ISS, AUD, t, t + 900).to_string()),
            parts[2]
        )
    };
    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            forged(&header("none", &kid), &good, |_| vec![]),
        ),
        ("alg none with our signature", {
            let none = forged(&header("none", &kid), &good, |_| vec![]);
            let sig = valid.rsplit('.').next().unwrap_or_default();
            format!("{none}{sig}")
        }),
        (
            "HS256 keyed by the public key's bytes",
            forged(&header("HS256", &kid), &good, |input| {
                hs256(&public.to_bytes(), input)
            }),
        ),
        (
            "HS256 keyed by the JWK's x",
            forged(&header("HS256", &kid), &good, |input| {
                hs256(jwk_x.as_bytes(), input)
            }),
        ),
        (
            "unknown kid",
            signer.sign_raw(
                header("EdDSA", "0123456789abcdef").to_string().as_bytes(),
                good.to_string().as_bytes(),
            ),
        ),
        ("tampered payload", tampered),
        (
            "another key's signature under the right kid",
            other.sign_raw(
                header("EdDSA", &kid).to_string().as_bytes(),
                good.to_string().as_bytes(),
            ),
        ),
        (
            "expired",
            ours(&claims("user:1", ISS, AUD, t - 4000, t - 3600)),
        ),
        (
            "not yet valid",
            ours(&claims("user:1", ISS, AUD, t + 3600, t + 4500)),
        ),
        (
            "wrong audience",
            ours(&claims("user:1", ISS, "someone-else", t, t + 900)),
        ),
        (
            "wrong issuer",
            ours(&claims("user:1", "evil", AUD, t, t + 900)),
        ),
        ("garbage", "garbage.garbage.garbage".into()),
        ("two segments", "eyJhbGciOiJFZERTQSJ9.e30".into()),
        ("oversized", format!("{valid}{}", "A".repeat(5000))),
        (
            "a subject in another principal's namespace",
            ours(&claims("ip:203.0.113.9", ISS, AUD, t, t + 900)),
        ),
    ];
    // Reference: the valid token itself passes (and reaches the origin).
    let before = env.proxy.gets();
    let ok = env.get("/api/cart", &[("authorization", &bearer(&valid))])?;
    check(env.proxy.gets() == before + 1, || {
        format!("the valid token: {} {}", ok.status, ok.text())
    })?;

    let before = env.proxy.gets();
    for (name, token) in &attacks {
        let r = env.get("/api/cart", &[("authorization", &bearer(token))])?;
        refused(&r, token).map_err(|e| format!("{name}: {e}"))?;
    }
    // Two Authorization headers, even both valid: refused rather than guessed at.
    let two = env.rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/cart", env.edge))
            .header("authorization", bearer(&valid))
            .header("authorization", bearer(&token_for("user:3")))
            .send()
            .await
            .map_err(|e| e.to_string())
    })?;
    let two = Reply {
        status: two.status().as_u16(),
        headers: two.headers().clone(),
        body: env
            .rt
            .block_on(two.bytes())
            .map_err(|e| e.to_string())?
            .to_vec(),
    };
    refused(&two, &valid).map_err(|e| format!("two Authorization headers: {e}"))?;
    let reached = env.proxy.gets() - before;
    check(reached == 0, || {
        format!("{reached} refused requests reached the origin")
    })
}

/// The edge's `401`: the challenge, problem+json naming the class, and never the token.
fn refused(r: &Reply, token: &str) -> Result<(), String> {
    check(r.status == 401, || {
        format!("status {} {}", r.status, r.text())
    })?;
    check(r.header("www-authenticate") == Some(CHALLENGE), || {
        format!("WWW-Authenticate {:?}", r.header("www-authenticate"))
    })?;
    check(
        r.header("content-type") == Some("application/problem+json"),
        || format!("content-type {:?}", r.header("content-type")),
    )?;
    let body = r.json()?;
    check(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("invalid-token")),
        || format!("problem {body}"),
    )?;
    let text = r.text();
    let signature = token.rsplit('.').next().unwrap_or(token);
    check(signature.len() < 8 || !text.contains(signature), || {
        format!("the answer echoes the token: {text}")
    })
}

fn no_token_or_another_scheme_passes_as_before(env: &Env) -> Result<(), String> {
    let r = env.get("/api/products/5", &[])?;
    check(r.status == 200, || format!("no token: {}", r.status))?;
    // Another scheme, or an opaque bearer token (no `.`, like the origin's admin token), is not
    // the edge's to judge: the origin sees it (and refuses the cart itself).
    for credential in ["Basic dXNlcjpwYXNzd29yZA==", "Bearer not-an-access-token"] {
        let before = env.proxy.gets();
        let r = env.get("/api/cart", &[("authorization", credential)])?;
        check(env.proxy.gets() == before + 1, || {
            format!(
                "{credential:?} did not reach the origin: {} {}",
                r.status,
                r.text()
            )
        })?;
    }
    Ok(())
}

fn limited(env: &Env, token: Option<&str>, ip: &str) -> Result<u16, String> {
    let auth = token.map(bearer);
    let mut headers = vec![("cf-connecting-ip", ip)];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    Ok(env.get("/api/limited/users", &headers)?.status)
}

fn the_subject_owns_the_rate_limit_bucket(env: &Env) -> Result<(), String> {
    // 2 a minute per principal; the origin answers 404 (admitted, not cached).
    let alice = token_for("user:limit-alice");
    let bob = token_for("user:limit-bob");
    let carol = token_for("user:limit-carol");
    let ip = "198.51.100.7";
    let a: Vec<u16> = (0..3)
        .map(|_| limited(env, Some(&alice), ip))
        .collect::<Result<_, _>>()?;
    check(a == [404, 404, 429], || format!("alice: {a:?}"))?;
    // Another user from the same address has a bucket of their own.
    let b: Vec<u16> = (0..2)
        .map(|_| limited(env, Some(&bob), ip))
        .collect::<Result<_, _>>()?;
    check(b == [404, 404], || format!("bob, same address: {b:?}"))?;
    // Without a token the address is the principal (so the addresses below are honoured).
    let d = [
        limited(env, None, "198.51.100.20")?,
        limited(env, None, "198.51.100.20")?,
        limited(env, None, "198.51.100.21")?,
        limited(env, None, "198.51.100.20")?,
    ];
    check(d == [404, 404, 404, 429], || format!("by address: {d:?}"))?;
    // One user from several addresses shares one bucket.
    let c = [
        limited(env, Some(&carol), "198.51.100.8")?,
        limited(env, Some(&carol), "198.51.100.9")?,
        limited(env, Some(&carol), "198.51.100.10")?,
    ];
    check(c == [404, 404, 429], || {
        format!("carol, three addresses: {c:?}")
    })
}

fn cache_status(r: &Reply) -> String {
    r.header("cache-status").unwrap_or_default().to_owned()
}

fn a_token_holder_bypasses_a_private_cache_route(env: &Env) -> Result<(), String> {
    // The harness's route for 9104 leaves `authenticated` at its default, "bypass".
    let path = "/api/products/9104";
    let token = token_for("user:cache-private");
    let before = env.proxy.gets();
    let authed = env.get(path, &[("authorization", &bearer(&token))])?;
    check(authed.status == 200, || format!("status {}", authed.status))?;
    check(
        cache_status(&authed).contains("fwd=bypass; detail=authenticated"),
        || format!("token holder: {}", cache_status(&authed)),
    )?;
    // It filled nothing: the next anonymous read is a miss, then the one after a hit.
    let first = env.get(path, &[])?;
    check(cache_status(&first).contains("fwd=miss"), || {
        format!("anonymous after the token holder: {}", cache_status(&first))
    })?;
    let second = env.get(path, &[])?;
    check(cache_status(&second).contains("hit"), || {
        format!("anonymous again: {}", cache_status(&second))
    })?;
    // And it reads nothing either, even now that an entry exists.
    let again = env.get(path, &[("authorization", &bearer(&token))])?;
    check(
        cache_status(&again).contains("fwd=bypass; detail=authenticated"),
        || format!("token holder, entry present: {}", cache_status(&again)),
    )?;
    check(env.proxy.gets() == before + 3, || {
        format!("{} origin reads, expected 3", env.proxy.gets() - before)
    })
}

fn a_token_holder_shares_the_catalogue_cache(env: &Env) -> Result<(), String> {
    // wrangler.toml's /api/products route says authenticated = "shared".
    let path = "/api/products/9105";
    let token = token_for("user:cache-shared");
    let filled = env.get(path, &[("authorization", &bearer(&token))])?;
    check(
        filled.status == 200 && cache_status(&filled).contains("fwd=miss"),
        || {
            format!(
                "token holder fills: {} {}",
                filled.status,
                cache_status(&filled)
            )
        },
    )?;
    let anonymous = env.get(path, &[])?;
    check(cache_status(&anonymous).contains("hit"), || {
        format!(
            "anonymous after the token holder: {}",
            cache_status(&anonymous)
        )
    })?;
    let authed = env.get(path, &[("authorization", &bearer(&token))])?;
    check(cache_status(&authed).contains("hit"), || {
        format!("token holder reads: {}", cache_status(&authed))
    })
}
