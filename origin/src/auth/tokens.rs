//! Access tokens as the origin issues them: EdDSA JWTs of [`breakwater_core::token`], valid for
//! [`ACCESS_TTL`], whose subject is `user:<id>`; and the signing key they are made with.
//!
//! The subject has the shape of the edge's principals (`ip:…`, `key:…`), so the edge can use a
//! verified token's subject as the caller's principal unchanged.

use std::fmt;
use std::time::Duration;

use breakwater_core::token::{Claims, JwkSet, SEED_LEN, Signer, TokenError, Verifier};

use crate::error::ApiError;

/// How long an access token is valid. Short, because it cannot be revoked: logging out or
/// reusing a refresh token stops new ones, and the last one issued dies within this.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// The prefix of an access token's `sub`.
const SUBJECT_PREFIX: &str = "user:";

/// The signing key's seed, from `--signing-key` / `BREAKWATER_SIGNING_KEY`: 32 bytes as
/// unpadded base64url (43 characters), e.g. `head -c 32 /dev/urandom | basenc --base64url |
/// tr -d =`. Its `Debug` hides it.
#[derive(Clone)]
pub struct SigningKey([u8; SEED_LEN]);

/// Why a configured signing key is refused at start-up.
#[derive(Debug, thiserror::Error)]
#[error("the signing key must be 32 bytes as unpadded base64url (43 characters)")]
pub struct InvalidSigningKey;

impl SigningKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidSigningKey> {
        super::b64url_decode(raw.trim())
            .and_then(|bytes| bytes.try_into().ok())
            .map(Self)
            .ok_or(InvalidSigningKey)
    }

    /// A fresh random key, for an origin started without one.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; SEED_LEN];
        getrandom::fill(&mut seed)?;
        Ok(Self(seed))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Issues access tokens with one key and verifies them against the keys it publishes.
#[derive(Debug)]
pub struct AccessTokens {
    signer: Signer,
    verifier: Verifier,
}

impl AccessTokens {
    /// Tokens signed with `key`, for `issuer` and `audience`, verified with the default leeway.
    pub fn new(key: &SigningKey, issuer: &str, audience: &str) -> Self {
        let signer = Signer::from_seed(&key.0);
        let verifier = Verifier::new(issuer, audience).with_key(signer.public_key());
        Self { signer, verifier }
    }

    /// A token for `user_id`, valid from `now` (Unix seconds) for [`ACCESS_TTL`].
    pub fn issue(&self, user_id: i64, now: u64) -> Result<String, ApiError> {
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| ApiError::Internal)?;
        let claims = Claims::new(
            self.verifier.issuer(),
            self.verifier.audience(),
            subject(user_id),
            super::b64url(&jti),
            now,
            ACCESS_TTL.as_secs(),
        );
        Ok(self.signer.sign(&claims))
    }

    /// The user a token was issued to, if it is valid at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<i64, TokenError> {
        let claims = self.verifier.verify(token, now)?;
        user_id(&claims.sub).ok_or(TokenError::Malformed("`sub` is not user:<id>"))
    }

    /// The public keys, as `/.well-known/jwks.json` serves them.
    pub fn jwks(&self) -> JwkSet {
        JwkSet::of(self.verifier.keys())
    }
}

/// `user:<id>`.
pub fn subject(user_id: i64) -> String {
    format!("{SUBJECT_PREFIX}{user_id}")
}

/// The id in a `user:<id>` subject: a positive integer, written canonically.
fn user_id(subject: &str) -> Option<i64> {
    let digits = subject.strip_prefix(SUBJECT_PREFIX)?;
    let id = digits.parse::<i64>().ok().filter(|id| *id > 0)?;
    (id.to_string() == digits).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&SigningKey([3; SEED_LEN]), "iss", "aud")
    }

    #[test]
    fn an_issued_token_names_its_user_and_lives_15_minutes() {
        let tokens = tokens();
        let token = tokens.issue(42, NOW).unwrap();
        assert_eq!(tokens.verify(&token, NOW), Ok(42));
        assert_eq!(tokens.verify(&token, NOW + 900 + 30), Ok(42));
        assert_eq!(
            tokens.verify(&token, NOW + 900 + 31),
            Err(TokenError::Expired)
        );
        assert_ne!(
            tokens.issue(42, NOW).unwrap(),
            token,
            "each has its own jti"
        );
    }

    #[test]
    fn subjects_are_user_and_a_canonical_positive_id() {
        assert_eq!(subject(42), "user:42");
        assert_eq!(user_id("user:42"), Some(42));
        for bad in [
            "42",
            "user:",
            "user:0",
            "user:-1",
            "user:042",
            "user:+4",
            "ip:1.2.3.4",
        ] {
            assert_eq!(user_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn signing_keys_are_43_characters_of_base64url_and_stay_secret() {
        let raw = "A".repeat(43);
        let key = SigningKey::parse(&raw).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
        for bad in [
            "",
            "short",
            &"A".repeat(42),
            &"A".repeat(44),
            &format!("{}=", "A".repeat(43)),
        ] {
            assert!(SigningKey::parse(bad).is_err(), "{bad}");
        }
        let jwks = tokens().jwks();
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(jwks.keys[0].alg.as_deref(), Some("EdDSA"));
    }
}
