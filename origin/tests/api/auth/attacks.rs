//! Token attacks on a protected route (T-AU-01, T-AU-02): every forged, altered, expired or
//! foreign token is a 401 with `error="invalid_token"`, and a missing one a 401 with the plain
//! challenge.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use breakwater_core::token::{Claims, Signer};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{PLAIN_CHALLENGE, assert_invalid_token, cart_with, register};
use crate::helpers::{Backend, SIGNING_SEED, assert_problem, on_each_backend, spawn_app};

const ISS: &str = "breakwater-origin";
const AUD: &str = "breakwater";
const OTHER_SEED: [u8; 32] = [0x17; 32];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    breakwater_origin::auth::unix_now().as_secs()
}

/// Valid claims for `user_id`, changed by `change`.
fn claims(user_id: i64, change: impl FnOnce(&mut Claims)) -> Claims {
    let mut claims = Claims::new(ISS, AUD, format!("user:{user_id}"), "test-jti", now(), 900);
    change(&mut claims);
    claims
}

/// `header.payload` with an HS256 signature keyed by `key`: the algorithm-confusion forgery of a
/// verifier that would let the token pick the algorithm and use the public key as the secret.
fn hs256(header: &Value, claims: &Claims, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string()),
        b64(serde_json::to_string(claims).unwrap())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

on_each_backend!(forged_altered_and_foreign_tokens_are_invalid_tokens);
async fn forged_altered_and_foreign_tokens_are_invalid_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = register(&app, "ann@example.com").await;
    let server = Signer::from_seed(&SIGNING_SEED);
    let other = Signer::from_seed(&OTHER_SEED);
    let kid = server.kid().to_string();
    // The key really is the server's: a token it signs is accepted.
    let genuine = server.sign(&claims(id, |_| {}));
    assert_eq!(cart_with(&app, &genuine).await.status(), 200);

    let payload = serde_json::to_string(&claims(id, |_| {})).unwrap();
    let unsigned = |header: Value| format!("{}.{}.", b64(header.to_string()), b64(&payload));
    let public_key = server.public_key().to_bytes();
    let public_jwk_x = server.public_key().to_jwk().x;
    let hs_header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(serde_json::to_string(&claims(id + 1, |_| {})).unwrap()),
        parts[2]
    );
    let foreign_header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string();

    let cases = [
        ("alg none", unsigned(json!({"alg": "none", "typ": "JWT"}))),
        (
            "alg None with kid",
            unsigned(json!({"alg": "None", "typ": "JWT", "kid": kid})),
        ),
        ("alg nOnE", unsigned(json!({"alg": "nOnE"}))),
        (
            "HS256 keyed by the public key",
            hs256(&hs_header, &claims(id, |_| {}), &public_key),
        ),
        (
            "HS256 keyed by the JWK x",
            hs256(&hs_header, &claims(id, |_| {}), public_jwk_x.as_bytes()),
        ),
        (
            "expired",
            server.sign(&claims(id, |c| c.exp = now() - 3600)),
        ),
        (
            "not yet valid",
            server.sign(&claims(id, |c| {
                c.nbf = now() + 3600;
                c.exp = now() + 7200;
            })),
        ),
        (
            "wrong audience",
            server.sign(&claims(id, |c| c.aud = "other".into())),
        ),
        (
            "wrong issuer",
            server.sign(&claims(id, |c| c.iss = "evil".into())),
        ),
        ("unknown kid", other.sign(&claims(id, |_| {}))),
        (
            "another key under the server's kid",
            other.sign_raw(foreign_header.as_bytes(), payload.as_bytes()),
        ),
        ("tampered payload", tampered),
        (
            "truncated signature",
            genuine[..genuine.len() - 4].to_owned(),
        ),
        ("no signature", format!("{}.{}.", parts[0], parts[1])),
        (
            "not a user subject",
            server.sign(&claims(id, |c| c.sub = "ip:203.0.113.7".into())),
        ),
        ("garbage", "garbage".to_owned()),
        ("three garbage segments", "a.b.c".to_owned()),
        ("huge", "a".repeat(5000)),
    ];
    for (case, token) in cases {
        assert_invalid_token(cart_with(&app, &token).await, case).await;
    }
}

on_each_backend!(a_missing_token_gets_the_plain_challenge);
async fn a_missing_token_gets_the_plain_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    let genuine = Signer::from_seed(&SIGNING_SEED).sign(&claims(1, |_| {}));
    let basic = "Basic YW5uOnB3".to_owned();
    let wrong_scheme = format!("Token {genuine}");
    for fields in [
        vec![],
        vec![basic.as_str()],
        vec!["Bearer"],
        vec![wrong_scheme.as_str()],
    ] {
        let headers: Vec<(&str, &str)> = fields.iter().map(|v| ("authorization", *v)).collect();
        let response = app.get_with("/api/cart", &headers).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            PLAIN_CHALLENGE,
            "{fields:?}"
        );
        let problem = assert_problem(response, 401).await;
        assert_eq!(
            problem["type"],
            "https://breakwater.dev/problems/access-token-missing"
        );
    }
    // Two tokens at once are refused, even when both are genuine.
    let bearer = format!("Bearer {genuine}");
    let response = app
        .get_with(
            "/api/cart",
            &[("authorization", &bearer), ("authorization", &bearer)],
        )
        .await;
    assert_invalid_token(response, "two Authorization fields").await;
}
