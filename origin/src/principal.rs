//! Who is calling: the principal the edge settled, read from the `Breakwater-Principal` header.
//!
//! The edge derives the principal (a verified access token's subject, `user:<id>`; else an API
//! key's hash or the client address), strips any `Breakwater-Principal` a client sent, and sets
//! its own. With edge keys configured the header reaches a handler only on a request the edge
//! signed ([`crate::edge`] drops it from any other); without them the origin trusts it as it
//! stands, and must be reachable only through the edge (a private network, Cloudflare Tunnel or
//! mTLS). Routes that need a user verify the access token themselves ([`crate::auth`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use breakwater_core::intake::Principal as EdgePrincipal;

use crate::error::ApiError;

/// The request header carrying the principal, named where the edge names it.
pub const HEADER: &str = breakwater_core::headers::PRINCIPAL;
/// The `WWW-Authenticate` challenge of the `401` for a missing principal. A 401 must carry one
/// (RFC 9110 §15.5.2); bearer access tokens (`POST /api/auth/login`) are what callers present.
pub const CHALLENGE: &str = "Bearer realm=\"breakwater\"";
/// Longest principal accepted, in bytes; the edge's longest (`ip6:…::/64`, `key:` + 32 hex) is
/// far shorter.
pub const MAX_LEN: usize = 255;

/// A caller's identity as the edge settled it: 1 to [`MAX_LEN`] visible ASCII characters
/// (`ip:203.0.113.7`, `key:3f9a…`). Opaque to the origin: it scopes idempotency keys and owns
/// orders, and is only ever bound as a query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(String);

impl Principal {
    /// Parses one header value. The edge's `anonymous` (no trustworthy identity) is refused: every
    /// such caller would share one principal, and with it each other's orders and keys.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let valid = (1..=MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_graphic())
            && raw != EdgePrincipal::Anonymous.key();
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::MissingPrincipal)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    /// `401` when the header is missing, repeated or not a valid principal.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(HEADER).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => {
                Principal::parse(value.to_str().map_err(|_| ApiError::MissingPrincipal)?)
            }
            _ => Err(ApiError::MissingPrincipal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_principals_are_accepted_as_they_are() {
        for raw in ["ip:203.0.113.7", "ip6:2001:db8:0:1::/64", "key:3f9a", "x"] {
            assert_eq!(Principal::parse(raw).unwrap().as_str(), raw);
        }
        assert!(Principal::parse(&"k".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn empty_long_spaced_control_non_ascii_and_anonymous_are_refused() {
        let too_long = "k".repeat(MAX_LEN + 1);
        for raw in [
            "",
            " ",
            "a b",
            "a\tb",
            "ümlaut",
            "anonymous",
            too_long.as_str(),
        ] {
            assert!(
                matches!(Principal::parse(raw), Err(ApiError::MissingPrincipal)),
                "accepted {raw:?}"
            );
        }
    }
}
