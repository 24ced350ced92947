//! Table tests of token signing and verification: known answers from RFC 8032/8037, and one row
//! per attack of the test catalogue's T-AU-01 and T-AU-02.

use std::sync::LazyLock;

use super::*;

/// RFC 8032 §7.1, test 1: the key RFC 8037's examples use.
pub(super) const SEED: [u8; SEED_LEN] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
pub(super) const OTHER_SEED: [u8; SEED_LEN] = [7; SEED_LEN];
pub(super) const ISS: &str = "breakwater-origin";
pub(super) const AUD: &str = "breakwater";
pub(super) const NOW: u64 = 1_750_000_000;
pub(super) const KID: &str = "21fe31dfa154a261";

/// The signer of [`SEED`], made once: deriving a key costs a scalar multiplication.
pub(super) static SIGNER: LazyLock<Signer> = LazyLock::new(|| Signer::from_seed(&SEED));
static VERIFIER: LazyLock<Verifier> =
    LazyLock::new(|| Verifier::new(ISS, AUD).with_key(SIGNER.public_key()));

/// Trusts [`SEED`]'s key, expects [`ISS`] and [`AUD`], default leeway.
pub(super) fn verifier() -> Verifier {
    VERIFIER.clone()
}

pub(super) fn claims() -> Claims {
    Claims::new(ISS, AUD, "user:42", "jti-1", NOW, 900)
}

pub(super) fn b64(bytes: impl AsRef<[u8]>) -> String {
    b64_encode(bytes.as_ref())
}

/// A token with this header and payload JSON, signed by the key of `seed`.
fn signed(seed: &[u8; SEED_LEN], header: &str, payload: &serde_json::Value) -> String {
    Signer::from_seed(seed).sign_raw(header.as_bytes(), payload.to_string().as_bytes())
}

fn payload() -> serde_json::Value {
    serde_json::to_value(claims()).unwrap()
}

#[test]
fn signing_reproduces_the_rfc_8037_example() {
    let signer = Signer::from_seed(&SEED);
    let token = signer.sign_raw(br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing");
    assert_eq!(
        token,
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09P\
         GcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    let jwk = signer.public_key().to_jwk();
    assert_eq!(jwk.x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(signer.kid().as_str(), KID);
    // The RFC's token has neither `typ` nor `kid`, so it is no access token.
    assert!(matches!(
        verifier().verify(&token, NOW),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn an_issued_token_carries_the_pinned_header_and_verifies() {
    let token = Signer::from_seed(&SEED).sign(&claims());
    let header = b64_decode(token.split('.').next().unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(header).unwrap(),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{KID}"}}"#)
    );
    assert_eq!(verifier().verify(&token, NOW), Ok(claims()));
}

#[test]
fn foreign_algorithms_are_refused_even_when_signed_by_the_trusted_key() {
    for alg in [
        "none", "None", "NONE", "nOnE", "HS256", "RS256", "ES256", "PS256", "eddsa", "EDDSA",
        "Ed25519", "EdDSA ", "",
    ] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{KID}"}}"#);
        let with_signature = signed(&SEED, &header, &payload());
        let unsigned = format!("{}.{}.", b64(&header), b64(payload().to_string()));
        for token in [with_signature, unsigned] {
            assert_eq!(
                verifier().verify(&token, NOW),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg:?}"
            );
        }
    }
    // No `kid` either: the algorithm is what is reported.
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(payload().to_string())
    );
    assert_eq!(
        verifier().verify(&unsigned, NOW),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn headers_without_a_known_kid_or_with_unknown_demands_are_refused() {
    let other = Signer::from_seed(&OTHER_SEED);
    let attacker_jwk = serde_json::to_string(&other.public_key().to_jwk()).unwrap();
    let cases = [
        (r#"{"alg":"EdDSA","typ":"JWT"}"#.to_owned(), "malformed"),
        (r#"{"alg":"EdDSA","kid":"KID"}"#.to_owned(), "malformed"),
        (
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":"KID"}"#.to_owned(),
            "malformed",
        ),
        (
            r#"{"alg":"EdDSA","typ":"JWT","kid":"KID","crit":["exp"]}"#.to_owned(),
            "malformed",
        ),
        (
            r#"{"alg":"none","alg":"EdDSA","typ":"JWT","kid":"KID"}"#.to_owned(),
            "malformed",
        ),
        (
            r#"{"alg":"EdDSA","typ":"JWT","kid":7}"#.to_owned(),
            "malformed",
        ),
        (r#"["EdDSA"]"#.to_owned(), "malformed"),
        (
            r#"{"alg":"EdDSA","typ":"JWT","kid":"0000000000000000"}"#.to_owned(),
            "unknown-key",
        ),
        (
            r#"{"alg":"EdDSA","typ":"JWT","kid":"../../etc/passwd"}"#.to_owned(),
            "unknown-key",
        ),
        (
            r#"{"alg":"EdDSA","typ":"jwt","kid":"KID"}"#.to_owned(),
            "ok",
        ),
    ];
    for (header, expected) in cases {
        let header = header.replace("KID", KID);
        let token = signed(&SEED, &header, &payload());
        let outcome = verifier()
            .verify(&token, NOW)
            .map_or_else(TokenError::as_str, |_| "ok");
        assert_eq!(outcome, expected, "{header}");
    }
    // A key embedded in the header is never used: the attacker's own key signs, in vain.
    for kid in [other.kid().to_string(), KID.to_owned()] {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","jwk":{attacker_jwk}}}"#);
        let token = signed(&OTHER_SEED, &header, &payload());
        let expected = if kid == KID {
            TokenError::BadSignature
        } else {
            TokenError::UnknownKey
        };
        assert_eq!(verifier().verify(&token, NOW), Err(expected));
    }
}

#[test]
fn damaged_and_foreign_signatures_are_refused() {
    let token = Signer::from_seed(&SEED).sign(&claims());
    let (input, signature) = token.rsplit_once('.').unwrap();
    let forged = Signer::from_seed(&OTHER_SEED).sign_raw(
        &b64_decode(input.split('.').next().unwrap()).unwrap(),
        &b64_decode(input.split('.').nth(1).unwrap()).unwrap(),
    );
    let bytes = b64_decode(signature).unwrap();
    // The same 64 bytes, written with non-zero unused bits in the last character: strict base64
    // has one encoding per byte string, so a signature cannot be re-spelt.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(signature.chars().last().unwrap()).unwrap();
    let respelt = format!(
        "{}{}",
        &signature[..signature.len() - 1],
        &alphabet[last | 1..=last | 1]
    );
    let cases = [
        (format!("{input}."), TokenError::BadSignature),
        (
            format!("{input}.{}", b64(&bytes[..63])),
            TokenError::BadSignature,
        ),
        (
            format!("{input}.{}", b64([&bytes[..], &[0]].concat())),
            TokenError::BadSignature,
        ),
        (
            format!("{input}.{}", b64([0u8; 64])),
            TokenError::BadSignature,
        ),
        (
            format!("{input}.{}", b64([0xffu8; 64])),
            TokenError::BadSignature,
        ),
        (format!("{input}.{respelt}"), TokenError::Malformed("")),
        (format!("{input}.{signature}="), TokenError::Malformed("")),
        (
            format!("{input}.+{}", &signature[1..]),
            TokenError::Malformed(""),
        ),
        (forged, TokenError::BadSignature),
    ];
    for (token, expected) in cases {
        let outcome = verifier().verify(&token, NOW).unwrap_err();
        assert_eq!(outcome.as_str(), expected.as_str(), "{token}");
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    let token = Signer::from_seed(&SEED).sign(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut tampered = payload();
    tampered["sub"] = "user:1".into();
    let token = format!("{}.{}.{}", parts[0], b64(tampered.to_string()), parts[2]);
    assert_eq!(
        verifier().verify(&token, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn garbage_is_malformed() {
    let huge = format!(
        "{}.{}.{}",
        "a".repeat(2000),
        "b".repeat(2000),
        "c".repeat(200)
    );
    for token in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "not a token",
        "Bearer x.y.z",
        "eyJhbGciOiJFZERTQSJ9..",
        huge.as_str(),
    ] {
        assert!(
            matches!(verifier().verify(token, NOW), Err(TokenError::Malformed(_))),
            "{token}"
        );
    }
}

#[test]
fn claims_are_checked_against_the_issuer_and_audience() {
    let with = |member: &str, value: serde_json::Value| {
        let mut claims = payload();
        claims[member] = value;
        claims
    };
    let mut missing_exp = payload();
    missing_exp.as_object_mut().unwrap().remove("exp");
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{KID}"}}"#);
    let cases = [
        (with("iss", "someone-else".into()), "wrong-issuer"),
        (with("aud", "other".into()), "wrong-audience"),
        (with("aud", serde_json::json!(["other", AUD])), "ok"),
        (with("aud", serde_json::json!(["other"])), "wrong-audience"),
        (with("aud", serde_json::json!([])), "wrong-audience"),
        (missing_exp, "malformed"),
        (with("exp", "never".into()), "malformed"),
        (with("exp", (-1).into()), "malformed"),
        (with("exp", 1.5e9.into()), "malformed"),
        (with("jti", serde_json::Value::Null), "malformed"),
    ];
    for (claims, expected) in cases {
        let token = signed(&SEED, &header, &claims);
        let outcome = verifier().verify(&token, NOW);
        assert_eq!(
            outcome.as_ref().map_or_else(|e| e.as_str(), |_| "ok"),
            expected,
            "{claims}"
        );
        if let Ok(read) = outcome {
            assert_eq!(read.aud, AUD);
        }
    }
}

#[test]
fn the_leeway_bounds_are_exact() {
    let signer = Signer::from_seed(&SEED);
    let leeway = DEFAULT_LEEWAY_SECS;
    let token = signer.sign(&claims());
    let exp = NOW + 900;
    assert!(verifier().verify(&token, exp + leeway).is_ok());
    assert_eq!(
        verifier().verify(&token, exp + leeway + 1),
        Err(TokenError::Expired)
    );
    assert!(verifier().verify(&token, NOW - leeway).is_ok());
    assert_eq!(
        verifier().verify(&token, NOW - leeway - 1),
        Err(TokenError::NotYetValid)
    );
    let strict = verifier().with_leeway(0);
    assert_eq!(strict.leeway_secs(), 0);
    assert_eq!(strict.verify(&token, exp + 1), Err(TokenError::Expired));
    assert_eq!(strict.verify(&token, NOW - 1), Err(TokenError::NotYetValid));
    // Issued in the future but already "valid": refused all the same.
    let mut future = claims();
    future.iat = NOW + leeway + 1;
    assert_eq!(
        verifier().verify(&signer.sign(&future), NOW),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn the_verifier_configuration_is_explicit() {
    let verifier = verifier();
    assert_eq!(verifier.issuer(), ISS);
    assert_eq!(verifier.audience(), AUD);
    assert_eq!(verifier.leeway_secs(), 30);
    let kids: Vec<String> = verifier.keys().map(|k| k.kid().to_string()).collect();
    assert_eq!(kids, [KID]);
    let empty = Verifier::new(ISS, AUD);
    let token = Signer::from_seed(&SEED).sign(&claims());
    assert_eq!(empty.verify(&token, NOW), Err(TokenError::UnknownKey));
}

#[test]
fn tokens_of_every_trusted_key_verify_during_a_rotation() {
    let (old, new) = (Signer::from_seed(&SEED), Signer::from_seed(&OTHER_SEED));
    let both = verifier().with_key(new.public_key());
    for signer in [&old, &new] {
        assert_eq!(both.verify(&signer.sign(&claims()), NOW), Ok(claims()));
    }
    assert_ne!(old.kid(), new.kid());
}

#[test]
fn the_signing_key_never_appears_in_debug_output() {
    let signer = Signer::from_seed(&SEED);
    let debug = format!("{signer:?}");
    assert_eq!(debug, format!("Signer({KID})"));
    assert_eq!(
        format!("{:?}", signer.public_key()),
        format!("PublicKey({KID})")
    );
}

#[test]
fn every_refusal_has_its_own_word() {
    let all = [
        TokenError::Malformed("x"),
        TokenError::UnsupportedAlgorithm,
        TokenError::UnknownKey,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
    ];
    let words: std::collections::BTreeSet<_> = all.iter().map(|e| e.as_str()).collect();
    assert_eq!(words.len(), all.len());
}
