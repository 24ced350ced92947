//! Users and signing in: accounts with Argon2id password hashes ([`password`], [`user`]),
//! short-lived EdDSA access tokens ([`tokens`]) that the edge can verify with the keys at
//! `/.well-known/jwks.json`, and rotating refresh tokens with reuse detection ([`refresh`]).
//!
//! A protected handler takes [`AuthenticatedUser`]. Orders are not among them: they still
//! identify the caller by the edge's `Breakwater-Principal` (see [`crate::principal`]).

pub mod extract;
pub mod password;
pub mod refresh;
pub mod tokens;
pub mod user;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use extract::AuthenticatedUser;
pub use password::{HashError, Passwords};
pub use tokens::{AccessTokens, InvalidSigningKey, SigningKey};

/// The challenge of a `401` for missing credentials (RFC 6750 §3).
pub const CHALLENGE: &str = "Bearer realm=\"breakwater\"";
/// The challenge of a `401` for an access token that was sent but is not valid.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"breakwater\", error=\"invalid_token\"";
/// The `iss` of access tokens unless configured otherwise.
pub const DEFAULT_TOKEN_ISSUER: &str = "breakwater-origin";
/// The `aud` of access tokens unless configured otherwise.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "breakwater";

/// What the auth routes and extractor share: the token keys and the password hasher.
#[derive(Debug)]
pub struct Auth {
    pub tokens: AccessTokens,
    pub passwords: Passwords,
}

/// Why the token settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("invalid signing key (--signing-key / BREAKWATER_SIGNING_KEY)")]
    SigningKey(#[from] InvalidSigningKey),
    #[error("the token {0} must not be empty (--token-{0})")]
    Empty(&'static str),
    #[error("cannot generate a signing key: no random source")]
    Random,
    #[error("cannot prepare password hashing")]
    Hash(#[from] HashError),
}

impl Auth {
    /// Signs with `signing_key`, or with a random key when none is configured (tokens then die
    /// with the process, which is logged). Blocks for one password hash (see [`Passwords::new`]).
    pub fn new(
        signing_key: Option<&str>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthSetupError> {
        if issuer.is_empty() {
            return Err(AuthSetupError::Empty("issuer"));
        }
        if audience.is_empty() {
            return Err(AuthSetupError::Empty("audience"));
        }
        let key = match signing_key {
            Some(raw) => SigningKey::parse(raw)?,
            None => {
                tracing::warn!(
                    "no BREAKWATER_SIGNING_KEY configured: signing with a random key, so access \
                     tokens will not survive a restart and other instances will not accept them"
                );
                SigningKey::generate().map_err(|_| AuthSetupError::Random)?
            }
        };
        Ok(Self {
            tokens: AccessTokens::new(&key, issuer, audience),
            passwords: Passwords::new()?,
        })
    }
}

pub use crate::clock::{unix_ms as unix_now_ms, unix_now};

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict: one accepted spelling per byte string.
fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_token_settings_stop_the_start_naming_the_flag() {
        for (key, issuer, audience, flag) in [
            (Some("not-a-key"), "iss", "aud", "--signing-key"),
            (None, "", "aud", "--token-issuer"),
            (None, "iss", "", "--token-audience"),
        ] {
            let error = Auth::new(key, issuer, audience).unwrap_err();
            assert!(error.to_string().contains(flag), "{error}");
        }
    }

    #[test]
    fn without_a_configured_key_each_start_signs_with_a_new_one() {
        let kid = |auth: Auth| auth.tokens.jwks().keys[0].kid.clone();
        let first = kid(Auth::new(None, "iss", "aud").unwrap());
        let second = kid(Auth::new(None, "iss", "aud").unwrap());
        assert_ne!(first, second);
        let configured = Some("Xl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl4");
        let again = |_| kid(Auth::new(configured, "iss", "aud").unwrap());
        assert_eq!(again(1), again(2));
    }
}
