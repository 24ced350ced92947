//! Verifying an access token: the algorithm pinned, the key looked up by `kid` in the verifier's
//! own set, the signature checked strictly, then the claims.

use std::collections::BTreeMap;

use ed25519_dalek::Signature;
use serde::Deserialize;

use super::claims::WireClaims;
use super::{ALGORITHM, Claims, KeyId, PublicKey, TYPE, b64_decode};

/// Clock skew tolerated on `exp`, `nbf` and `iat` unless [`Verifier::with_leeway`] says
/// otherwise: enough for loosely synchronised hosts, small next to a 15-minute token.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Longest token examined, in bytes. An access token is about 400; this bounds the work an
/// attacker can make a verifier do before it refuses.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused. Every one means the same to a client (`invalid_token`, RFC 6750
/// §3.1); the variant is for logs and metrics ([`TokenError::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url segments of JSON with the required members; the reason says what.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// `alg` is not exactly `EdDSA` (`none`, `HS256`, ...).
    #[error("the token's algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    #[error("the token's key id names no key this verifier holds")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
}

impl TokenError {
    /// The reason as a stable word, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnsupportedAlgorithm => "unsupported-algorithm",
            Self::UnknownKey => "unknown-key",
            Self::BadSignature => "bad-signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::WrongIssuer => "wrong-issuer",
            Self::WrongAudience => "wrong-audience",
        }
    }
}

/// The JOSE header members that matter here. Others are ignored; `jwk`, `jku`, `x5u` and `x5c`
/// in particular are never used to find a key. A repeated member is a parse error.
#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Checks access tokens against a set of public keys, one issuer and one audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    keys: BTreeMap<KeyId, PublicKey>,
    issuer: String,
    audience: String,
    leeway_secs: u64,
}

impl Verifier {
    /// A verifier with no keys yet (it refuses every token until given one) and
    /// [`DEFAULT_LEEWAY_SECS`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys: BTreeMap::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// Also trusts `key`, under its derived key id.
    pub fn with_key(mut self, key: PublicKey) -> Self {
        self.keys.insert(key.kid(), key);
        self
    }

    /// Tolerates this much clock skew instead of [`DEFAULT_LEEWAY_SECS`].
    pub fn with_leeway(mut self, leeway_secs: u64) -> Self {
        self.leeway_secs = leeway_secs;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// The keys trusted, in key id order.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.values()
    }

    /// The claims of `token` if it is valid at `now` (Unix seconds). Accepted iff `alg` is
    /// `EdDSA`, `typ` is `JWT`, `kid` names a trusted key whose signature verifies, `iss` and
    /// `aud` are the expected ones, `now <= exp + leeway`, `now + leeway >= nbf` and
    /// `now + leeway >= iat`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("longer than any token issued"));
        }
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(TokenError::Malformed("not three dot-separated segments"));
        };

        let header =
            b64_decode(header_b64).ok_or(TokenError::Malformed("the header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header)
            .map_err(|_| TokenError::Malformed("the header is not a JOSE header"))?;
        // Pinned: the header is only ever compared with the one algorithm, never obeyed.
        if header.alg != ALGORITHM {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|typ| typ.eq_ignore_ascii_case(TYPE))
        {
            return Err(TokenError::Malformed("`typ` is not JWT"));
        }
        if header.crit.is_some() {
            return Err(TokenError::Malformed(
                "`crit` names extensions not understood",
            ));
        }
        let kid = header
            .kid
            .ok_or(TokenError::Malformed("the header has no `kid`"))?;
        let key = self.keys.get(kid.as_str()).ok_or(TokenError::UnknownKey)?;

        let signature = b64_decode(signature_b64)
            .ok_or(TokenError::Malformed("the signature is not base64url"))?;
        let signature = Signature::from_slice(&signature).map_err(|_| TokenError::BadSignature)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.verifying_key()
            .verify_strict(signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;

        // Signed by a trusted key from here on.
        let payload =
            b64_decode(payload_b64).ok_or(TokenError::Malformed("the payload is not base64url"))?;
        let claims: WireClaims = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("the claims are not the required members"))?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(TokenError::WrongAudience);
        }
        if now > claims.exp.saturating_add(self.leeway_secs) {
            return Err(TokenError::Expired);
        }
        let latest_start = now.saturating_add(self.leeway_secs);
        if claims.nbf > latest_start || claims.iat > latest_start {
            return Err(TokenError::NotYetValid);
        }
        Ok(Claims {
            iss: claims.iss,
            sub: claims.sub,
            aud: self.audience.clone(),
            exp: claims.exp,
            nbf: claims.nbf,
            iat: claims.iat,
            jti: claims.jti,
        })
    }
}
