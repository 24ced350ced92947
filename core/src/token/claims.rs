//! The claims of an access token, as issued and as read back.

use serde::{Deserialize, Serialize};

/// The registered claims an access token carries (RFC 7519 §4.1), all required. Times are Unix
/// seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who issued the token (the origin's configured issuer).
    pub iss: String,
    /// Whom the token is about; the origin writes `user:<id>`.
    pub sub: String,
    /// Who the token is for. Issued as one string; read back as the verifier's own audience.
    pub aud: String,
    /// Not valid after this second.
    pub exp: u64,
    /// Not valid before this second.
    pub nbf: u64,
    /// When it was issued.
    pub iat: u64,
    /// A unique id for this token.
    pub jti: String,
}

impl Claims {
    /// Claims valid from `now` for `ttl_secs` seconds.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        subject: impl Into<String>,
        jti: impl Into<String>,
        now: u64,
        ttl_secs: u64,
    ) -> Self {
        Self {
            iss: issuer.into(),
            sub: subject.into(),
            aud: audience.into(),
            exp: now.saturating_add(ttl_secs),
            nbf: now,
            iat: now,
            jti: jti.into(),
        }
    }
}

/// The claims as a token may carry them: `aud` may also be an array (RFC 7519 §4.1.3), which is
/// accepted when it contains the expected audience.
#[derive(Debug, Deserialize)]
pub(crate) struct WireClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}
