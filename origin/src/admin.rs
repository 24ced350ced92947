//! Who may write: the admin bearer token from the settings, and the extractor that lets a request
//! through only when it presents that token.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use breakwater_core::auth::{bearer_token, constant_time_eq};

use crate::edge::NotFromEdge;
use crate::error::ApiError;
use crate::routes::AppState;

/// The `WWW-Authenticate` challenge of a `401` (RFC 9110 §11.6.1, RFC 6750 §3): which scheme and
/// which protection space the missing credentials belong to.
pub const CHALLENGE: &str = "Bearer realm=\"breakwater-admin\"";
/// The shortest admin token accepted at start-up: a floor against `admin` or `changeme`, not a
/// guarantee of strength.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured admin token. Only its SHA-256 is kept: comparing fixed-length digests in
/// constant time leaks neither the token's bytes nor its length through timing, and no `Debug`
/// or log line can print the secret.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

/// Why a configured admin token is refused at start-up.
#[derive(Debug, thiserror::Error)]
pub enum InvalidAdminToken {
    #[error("the admin token must be at least {MIN_TOKEN_LEN} characters long")]
    TooShort,
    #[error(
        "the admin token must be a bearer token: letters, digits and - . _ ~ + /, \
         optionally ending in ="
    )]
    NotBearerToken,
}

impl AdminToken {
    /// Accepts `raw` if it can travel in an `Authorization: Bearer` field as is (RFC 6750 §2.1
    /// `b64token`) and is at least [`MIN_TOKEN_LEN`] long.
    pub fn parse(raw: &str) -> Result<Self, InvalidAdminToken> {
        if !is_b64token(raw) {
            return Err(InvalidAdminToken::NotBearerToken);
        }
        if raw.len() < MIN_TOKEN_LEN {
            return Err(InvalidAdminToken::TooShort);
        }
        Ok(Self {
            digest: Sha256::digest(raw.as_bytes()).into(),
        })
    }

    /// True when `presented` is the token; the time taken does not depend on how close it was.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        constant_time_eq(&presented, &self.digest)
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(raw: &str) -> bool {
    let body = raw.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Proof that the request presented the admin token. Put it first among a handler's extractors,
/// so that nothing about the request is examined (or reported back) before it is authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    /// `401` when edge keys are configured and the edge did not sign the request (see
    /// [`crate::edge`]), `403` when no token is configured (no credentials could help), `401`
    /// when the token is missing, malformed or wrong.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.extensions.get::<NotFromEdge>().is_some() {
            return Err(ApiError::EdgeSignatureMissing);
        }
        let Some(token) = &state.admin_token else {
            return Err(ApiError::AdminWritesDisabled);
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        match presented {
            Some(presented) if token.matches(presented) => Ok(Admin),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-Token_0123456789~+/==";

    #[test]
    fn only_long_bearer_tokens_are_accepted() {
        assert!(AdminToken::parse(TOKEN).is_ok());
        assert!(matches!(
            AdminToken::parse("short"),
            Err(InvalidAdminToken::TooShort)
        ));
        for bad in [
            "",
            "================",
            "has a space 0123456789",
            "quote\"0123456789abcdef",
            "ümlaut-0123456789abcdef",
            "=leading-0123456789abcdef",
        ] {
            assert!(
                matches!(
                    AdminToken::parse(bad),
                    Err(InvalidAdminToken::NotBearerToken)
                ),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn matches_only_the_exact_token() {
        let token = AdminToken::parse(TOKEN).unwrap();
        assert!(token.matches(TOKEN));
        for other in [
            "",
            "s3cret",
            &TOKEN[..TOKEN.len() - 1],
            &format!("{TOKEN}x"),
        ] {
            assert!(!token.matches(other), "matched {other:?}");
        }
        assert!(!token.matches(&TOKEN.to_uppercase()));
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let token = AdminToken::parse(TOKEN).unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
