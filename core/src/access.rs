//! Access tokens at the edge: the `ACCESS_TOKENS` var (the origin's issuer, audience, leeway and
//! published public keys) parsed into a [`Verifier`], and how a request's `Authorization` value
//! is read before it is verified.
//!
//! The verification itself is [`crate::token::Verifier`]'s, the same the origin uses: this module
//! only configures it and decides which requests present a token at all.

use serde::Deserialize;
use serde_json::Value;

use crate::token::{DEFAULT_LEEWAY_SECS, JwkSet, TokenError, Verifier};

/// The issuer the origin writes by default (`--token-issuer`).
pub const DEFAULT_ISSUER: &str = "breakwater-origin";
/// The audience the origin writes by default (`--token-audience`).
pub const DEFAULT_AUDIENCE: &str = "breakwater";
/// Most clock skew accepted: five minutes is already a third of a token's life.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Longest issuer or audience accepted.
const MAX_NAME_LEN: usize = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_issuer")]
    issuer: String,
    #[serde(default = "default_audience")]
    audience: String,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    /// The origin's `/.well-known/jwks.json`: a JSON string, or the set inline.
    #[serde(default)]
    jwks: Option<Value>,
}

fn default_issuer() -> String {
    DEFAULT_ISSUER.to_owned()
}

fn default_audience() -> String {
    DEFAULT_AUDIENCE.to_owned()
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}

/// Parses `ACCESS_TOKENS` (a JSON object). `Ok(None)` when it is absent or names no keys: tokens
/// are then not verified at the edge. An error is `(field path, reason)`, e.g.
/// `("jwks.keys[1]", "`kid` ... is not the id of this key")`.
pub fn verifier_from_value(raw: Option<Value>) -> Result<Option<Verifier>, (String, String)> {
    let Some(raw) = raw else { return Ok(None) };
    let raw: Raw = serde_json::from_value(raw).map_err(|e| (String::new(), e.to_string()))?;
    for (field, value) in [("issuer", &raw.issuer), ("audience", &raw.audience)] {
        if value.is_empty() || value.len() > MAX_NAME_LEN {
            return Err((
                field.into(),
                format!("must be 1 to {MAX_NAME_LEN} bytes long"),
            ));
        }
    }
    if raw.leeway_seconds > MAX_LEEWAY_SECS {
        return Err((
            "leeway_seconds".into(),
            format!("{} exceeds {MAX_LEEWAY_SECS}", raw.leeway_seconds),
        ));
    }
    let jwks = match raw.jwks {
        None => return Ok(None),
        Some(Value::String(text)) => serde_json::from_str::<Value>(&text)
            .map_err(|e| ("jwks".to_owned(), format!("is not valid JSON: {e}")))?,
        Some(value) => value,
    };
    // Each key on its own, so an error names the one at fault.
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        return Err((
            "jwks".into(),
            "must be a JWK set: an object with a \"keys\" array".into(),
        ));
    };
    let mut verifier = Verifier::new(raw.issuer, raw.audience).with_leeway(raw.leeway_seconds);
    for (i, key) in keys.iter().enumerate() {
        let at = format!("jwks.keys[{i}]");
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [key] }))
            .map_err(|e| (at.clone(), e.to_string()))?;
        let key = set
            .keys
            .first()
            .ok_or_else(|| (at.clone(), "not a JWK".to_owned()))?
            .to_public_key()
            .map_err(|e| (at.clone(), e.to_string()))?;
        verifier = verifier.with_key(key);
    }
    let has_keys = verifier.keys().next().is_some();
    Ok(has_keys.then_some(verifier))
}

/// What a request's `Authorization` value presents, as far as the edge is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization` header.
    Nothing,
    /// A credential that is not an access token: another scheme (`Basic`, `Digest`, ...), or an
    /// opaque bearer token with no `.` (no JWS has fewer than two), such as the origin's admin
    /// token. Not the edge's to judge: it passes on as credentials (the request stays anonymous
    /// to the edge and bypasses the shared cache).
    Other,
    /// Exactly one bearer token in the shape of a JWS: an access token, to verify.
    AccessToken(&'a str),
    /// A Bearer credential that is not exactly one token: two `Authorization` headers (the
    /// runtime joins them with a comma), an empty token, or one with spaces or commas. Refused
    /// like an invalid token rather than guessing which one counts.
    Ambiguous,
}

impl<'a> Presented<'a> {
    /// Reads the `Authorization` value (repeated headers joined by `, `, as the Fetch API gives
    /// them).
    pub fn from_header(value: Option<&'a str>) -> Self {
        let Some(value) = value else {
            return Self::Nothing;
        };
        if let Some(token) = crate::auth::bearer_token(value)
            && !token.contains(',')
        {
            return if token.contains('.') {
                Self::AccessToken(token)
            } else {
                Self::Other
            };
        }
        let names_bearer = value.split(',').any(|part| {
            part.split_whitespace()
                .next()
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer"))
        });
        if names_bearer {
            Self::Ambiguous
        } else {
            Self::Other
        }
    }
}

/// The refusal for [`Presented::Ambiguous`], in the verifier's terms.
pub const AMBIGUOUS: TokenError = TokenError::Malformed("not exactly one bearer token");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Claims, Signer};
    use serde_json::json;

    const SEED: [u8; 32] = [3; 32];

    fn jwks() -> Value {
        serde_json::to_value(JwkSet::of([&Signer::from_seed(&SEED).public_key()])).unwrap()
    }

    fn parse(raw: Value) -> Result<Option<Verifier>, (String, String)> {
        verifier_from_value(Some(raw))
    }

    #[test]
    fn defaults_match_the_origins_and_keys_come_from_the_jwks() {
        let v = parse(json!({ "jwks": jwks() })).unwrap().unwrap();
        assert_eq!(v.issuer(), DEFAULT_ISSUER);
        assert_eq!(v.audience(), DEFAULT_AUDIENCE);
        assert_eq!(v.leeway_secs(), DEFAULT_LEEWAY_SECS);
        let signer = Signer::from_seed(&SEED);
        assert_eq!(v.keys().collect::<Vec<_>>(), vec![&signer.public_key()]);
        let token = signer.sign(&Claims::new(
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
            "user:1",
            "j",
            1000,
            900,
        ));
        assert_eq!(v.verify(&token, 1000).unwrap().sub, "user:1");
    }

    #[test]
    fn the_jwks_may_be_a_json_string_as_the_origin_serves_it() {
        let v = parse(json!({
            "issuer": "https://shop.example",
            "audience": "shop",
            "leeway_seconds": 5,
            "jwks": jwks().to_string(),
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            (v.issuer(), v.audience(), v.leeway_secs()),
            ("https://shop.example", "shop", 5)
        );
    }

    #[test]
    fn absent_or_keyless_means_not_verified_at_the_edge() {
        assert!(verifier_from_value(None).unwrap().is_none());
        assert!(parse(json!({})).unwrap().is_none());
        assert!(parse(json!({ "jwks": { "keys": [] } })).unwrap().is_none());
        assert!(
            parse(json!({ "jwks": r#"{"keys": []}"# }))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn every_bad_value_names_its_field_path() {
        let mut wrong_kid = jwks();
        wrong_kid["keys"][0]["kid"] = json!("0000000000000000");
        let mut hs = jwks();
        hs["keys"][0]["alg"] = json!("HS256");
        let cases = [
            (
                json!({ "leeway_seconds": 301, "jwks": jwks() }),
                "leeway_seconds",
            ),
            (json!({ "issuer": "", "jwks": jwks() }), "issuer"),
            (json!({ "audience": "", "jwks": jwks() }), "audience"),
            (json!({ "jwks": "{not json" }), "jwks"),
            (json!({ "jwks": { "keys": "no" } }), "jwks"),
            (json!({ "jwks": [1] }), "jwks"),
            (
                json!({ "jwks": { "keys": [jwks()["keys"][0], 7] } }),
                "jwks.keys[1]",
            ),
            (
                json!({ "jwks": { "keys": [{ "kty": "RSA", "crv": "x", "x": "y" }] } }),
                "jwks.keys[0]",
            ),
            (json!({ "jwks": wrong_kid }), "jwks.keys[0]"),
            (json!({ "jwks": hs }), "jwks.keys[0]"),
            (json!({ "leeway": 3 }), ""),
            (json!({ "leeway_seconds": "30" }), ""),
            (json!("a string"), ""),
        ];
        for (raw, field) in cases {
            let err = parse(raw.clone()).expect_err(&raw.to_string());
            assert_eq!(err.0, field, "{raw}: {}", err.1);
            assert!(!err.1.is_empty());
        }
    }

    #[test]
    fn authorization_values_are_read_strictly() {
        use Presented::*;
        let cases = [
            (None, Nothing),
            (Some("Bearer abc.def.ghi"), AccessToken("abc.def.ghi")),
            (Some("bearer  a.b "), AccessToken("a.b")),
            (Some("Bearer garbage."), AccessToken("garbage.")),
            (Some("Bearer 0f3a9c"), Other),
            (Some("Basic dXNlcjpwYXNz"), Other),
            (Some(r#"Digest username="a", realm="b""#), Other),
            (Some("Bearer a, Bearer b"), Ambiguous),
            (Some("Bearer a,b"), Ambiguous),
            (Some("Bearer a.b.c,d.e.f"), Ambiguous),
            (Some("Basic x, Bearer y"), Ambiguous),
            (Some("Bearer"), Ambiguous),
            (Some("Bearer "), Ambiguous),
            (Some("Bearer a b"), Ambiguous),
        ];
        for (value, expected) in cases {
            assert_eq!(Presented::from_header(value), expected, "{value:?}");
        }
    }
}
