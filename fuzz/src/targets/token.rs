//! `token`: access tokens as the edge and the origin verify them (`core/src/token/`), the
//! `Authorization` value they arrive in (`core/src/access.rs`), and the JWKs that carry keys.
//!
//! Input: the body is a token as sent; `:header` and `:claims` are JSON that the target signs
//! with the fuzzer's own key (so a mutated claim set still carries a valid signature and reaches
//! the claim checks); `authorization` is a header value; `:jwk` a JSON Web Key; `:now` the
//! verifier's clock (Unix seconds).
//!
//! Asserts: an accepted token is at most 4 KiB, pins `alg` to `EdDSA`, says `typ` JWT, names the
//! verifier's key, carries no `crit`, and its claims name the expected issuer and audience and
//! hold at `now` within the leeway; changing one character of an accepted token's signature or
//! payload gets it refused; an `Authorization` value presents an access token only when it is one
//! JWS-shaped bearer token; a JWK that is accepted names its own key and round-trips.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use breakwater_core::access::Presented;
use breakwater_core::token::{DEFAULT_LEEWAY_SECS, Jwk, JwkSet, MAX_TOKEN_LEN, Signer, Verifier};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Outcome, Target, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "token",
    about: "access tokens (EdDSA JWTs) verified against a key set, tokens signed from fuzzed \
            header and claim JSON, Authorization values, JWKs",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 6 * 1024,
};

const DICTIONARY: &[&str] = &[
    ".",
    "eyJ",
    "\"alg\"",
    "\"EdDSA\"",
    "\"none\"",
    "\"HS256\"",
    "\"typ\"",
    "\"JWT\"",
    "\"jwt\"",
    "\"kid\"",
    "\"crit\"",
    "\"jwk\"",
    "\"iss\"",
    "\"sub\"",
    "\"aud\"",
    "\"exp\"",
    "\"nbf\"",
    "\"iat\"",
    "\"jti\"",
    "null",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "+",
    "/",
    "-",
    "_",
    "breakwater-origin",
    "breakwater",
    "Bearer ",
    "authorization: ",
    ":claims: ",
    ":header: ",
    ":now: ",
    "18446744073709551615",
    "-1",
    "1e3",
];

/// The fuzzer's signing key: a fixed seed, so corpus tokens stay valid across runs.
const SEED: [u8; 32] = *b"breakwater fuzz signing key seed";
/// The id of [`SEED`]'s key, which the corpus's headers name.
const KID: &str = "bf3c732b47c53a43";
const ISS: &str = "breakwater-origin";
const AUD: &str = "breakwater";
/// The verifier's clock unless the input says: mid-2025.
const NOW: u64 = 1_750_000_000;

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| Signer::from_seed(&SEED))
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(ISS, AUD).with_key(signer().public_key()))
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut header = json!({"alg": "EdDSA", "typ": "JWT", "kid": KID});
    let now = NOW as i64;
    let mut claims = json!({"iss": ISS, "sub": "user:42", "aud": AUD, "exp": now + 900,
                            "nbf": now, "iat": now, "jti": "j-1"});
    let header_keys = ["alg", "typ", "kid", "crit", "jwk", "jku", "x5u"];
    let claim_keys = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];
    let strings = [
        "EdDSA", "none", "HS256", "JWT", "jwt", "at+jwt", ISS, AUD, "other", "",
    ];
    for _ in 0..rng.below(3) {
        let (target, keys) = if rng.one_in(2) {
            (&mut header, &header_keys[..])
        } else {
            (&mut claims, &claim_keys[..])
        };
        if let Some(map) = target.as_object_mut() {
            let key = pick(rng, keys).to_owned();
            let value = match rng.below(4) {
                0 => Value::Null,
                1 => json!([AUD, "x"]),
                2 => Value::from(now + rng.range(0, 2000) as i64 - 1000),
                _ => draw::json(rng, keys, &strings, 1),
            };
            if rng.one_in(4) {
                map.remove(&key);
            } else {
                map.insert(key, value);
            }
        }
    }
    let header_text = draw::json_text(rng, &header).replace('\n', "");
    let claims_text = draw::json_text(rng, &claims).replace('\n', "");
    let mut e = Envelope::new();
    if rng.one_in(3) {
        e = e.field(
            ":now",
            (NOW as i64 + rng.range(0, 4000) as i64 - 2000).to_string(),
        );
    }
    match rng.below(4) {
        0 => {
            let token = signer().sign_raw(header_text.as_bytes(), claims_text.as_bytes());
            e = e.with_body(token.into_bytes());
        }
        1 => {
            let token = signer().sign_raw(header_text.as_bytes(), claims_text.as_bytes());
            e = e.field(
                "authorization",
                format!(
                    "{}{token}",
                    pick(rng, &["Bearer ", "bearer  ", "Basic ", "Bearer a, Bearer "])
                ),
            );
        }
        2 => {
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": signer().public_key().to_jwk().x,
                             "kid": KID, "alg": "EdDSA", "use": "sig"});
            let mut jwk = jwk;
            perturb_member(rng, &mut jwk, &["kty", "crv", "x", "kid", "alg", "use"]);
            e = e.field(":jwk", jwk.to_string());
        }
        _ => {}
    }
    e = e
        .field(":header", header_text)
        .field(":claims", claims_text);
    e.to_bytes()
}

fn perturb_member(rng: &mut Rng, value: &mut Value, keys: &[&str]) {
    if let Some(map) = value.as_object_mut()
        && rng.one_in(2)
    {
        let key = pick(rng, keys).to_owned();
        map.insert(key, Value::String(draw::noise(rng, 12)));
    }
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let now = e.number(":now", NOW);

    let body = e.body_text();
    let body = body.trim_end_matches(['\n', '\r', ' ']);
    if !body.is_empty() {
        check_token(body, now, &mut out)?;
    }
    if let (Some(header), Some(claims)) = (e.get(":header"), e.get(":claims")) {
        let token = signer().sign_raw(header.as_bytes(), claims.as_bytes());
        if token.len() <= MAX_TOKEN_LEN {
            check_token(&token, now, &mut out)?;
        }
    }
    match Presented::from_header(e.get("authorization")) {
        Presented::AccessToken(token) => {
            out.note("presented");
            ensure!(
                !token.is_empty() && token.contains('.') && !token.contains([' ', ',']),
                "authorization: an access token is one JWS-shaped token",
                "{token:?}"
            );
            check_token(token, now, &mut out)?;
        }
        other => out.note(&format!("{other:?}")),
    }
    if let Some(raw) = e.get(":jwk") {
        check_jwk(raw, &mut out)?;
    }
    Ok(out)
}

fn check_token(token: &str, now: u64, out: &mut Outcome) -> Result<(), String> {
    let verdict = verifier().verify(token, now);
    let claims = match verdict {
        Ok(claims) => claims,
        Err(error) => {
            out.note(error.as_str());
            ensure!(!error.to_string().is_empty(), "token: a refusal says why");
            return Ok(());
        }
    };
    out.note("accepted");
    ensure!(token.len() <= MAX_TOKEN_LEN, "token: at most 4 KiB");
    let leeway = DEFAULT_LEEWAY_SECS;
    ensure!(
        claims.iss == ISS && claims.aud == AUD,
        "token: the expected issuer and audience",
        "{claims:?}"
    );
    ensure!(
        now <= claims.exp.saturating_add(leeway)
            && claims.nbf <= now.saturating_add(leeway)
            && claims.iat <= now.saturating_add(leeway),
        "token: valid at now within the leeway",
        "{claims:?} at {now}"
    );
    let mut segments = token.split('.');
    let header: Option<SeenHeader> = segments.next().and_then(decode_segment);
    ensure!(
        header.as_ref().is_some_and(|h| h.alg == "EdDSA"
            && h.typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
            && h.kid.as_deref() == Some(KID)
            && h.crit.is_none()),
        "token: alg pinned, typ JWT, our kid, no crit",
        "{header:?}"
    );
    let payload: Option<SeenClaims> = segments.next().and_then(decode_segment);
    ensure!(
        payload.as_ref().is_some_and(|p| p.iss == claims.iss
            && p.sub == claims.sub
            && p.jti == claims.jti
            && (p.exp, p.nbf, p.iat) == (claims.exp, claims.nbf, claims.iat)),
        "token: the claims are the payload's",
        "{payload:?} vs {claims:?}"
    );
    // One character changed anywhere after the header must be refused.
    for at in [token.len() - 1, token.find('.').map_or(0, |i| i + 1)] {
        let mut tampered = token.as_bytes().to_vec();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8_lossy(&tampered);
        ensure!(
            verifier().verify(&tampered, now).is_err(),
            "token: a changed character is refused",
            "{tampered}"
        );
    }
    Ok(())
}

/// The header members the verifier reads; others are skipped unparsed, as it skips them.
#[derive(Debug, Deserialize)]
struct SeenHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<Value>,
}

/// The claims the verifier reads, but for the audience (a string or a list).
#[derive(Debug, Deserialize)]
struct SeenClaims {
    iss: String,
    sub: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
}

/// A JWS segment (unpadded base64url JSON) read as `T`.
fn decode_segment<T: serde::de::DeserializeOwned>(segment: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
}

fn check_jwk(raw: &str, out: &mut Outcome) -> Result<(), String> {
    let Ok(jwk) = serde_json::from_str::<Jwk>(raw) else {
        out.note("jwk-unreadable");
        return Ok(());
    };
    match jwk.to_public_key() {
        Ok(key) => {
            out.note("jwk-key");
            ensure!(
                jwk.kid
                    .as_deref()
                    .is_none_or(|kid| kid == key.kid().as_str()),
                "jwk: a kid names its own key"
            );
            ensure!(
                key.to_jwk().to_public_key() == Ok(key),
                "jwk: the canonical JWK round-trips"
            );
            let set = JwkSet::of([&key]);
            let text = serde_json::to_string(&set).unwrap_or_default();
            ensure!(
                serde_json::from_str::<JwkSet>(&text).ok().as_ref() == Some(&set),
                "jwk: a JWK set round-trips"
            );
        }
        Err(error) => out.note(&format!("{error:?}").chars().take(12).collect::<String>()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_signs_a_token_the_verifier_accepts() {
        let input = std::fs::read(crate::corpus::default_corpus().join("token/signed-valid"))
            .expect("the seed exists");
        let e = Envelope::parse(&input);
        let (Some(header), Some(claims)) = (e.get(":header"), e.get(":claims")) else {
            panic!("the seed has :header and :claims");
        };
        let token = signer().sign_raw(header.as_bytes(), claims.as_bytes());
        assert_eq!(
            verifier().verify(&token, NOW).map(|c| c.sub),
            Ok("user:42".to_owned())
        );
    }

    #[test]
    fn the_fuzz_key_has_a_known_id() {
        // The corpus's `:header` fields name this key id.
        assert_eq!(signer().kid().as_str(), KID);
    }
}
