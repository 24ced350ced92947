//! The extractor that lets a request through only with a valid access token.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use breakwater_core::auth::bearer_token;
use breakwater_core::token::TokenError;

use crate::error::ApiError;
use crate::routes::AppState;

/// The user whose access token the request presented (`Authorization: Bearer <token>`). Put it
/// first among a handler's extractors, so nothing else about the request is examined (or
/// reported back) before it is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user_id: i64,
}

impl FromRequestParts<AppState> for AuthenticatedUser {
    type Rejection = ApiError;

    /// `401` with the plain challenge when no bearer token was sent (RFC 6750 §3.1: no error
    /// code), `401` with `error="invalid_token"` when the one sent is not valid now.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let token = match (values.next(), values.next()) {
            (None, _) => return Err(ApiError::MissingAccessToken),
            (Some(_), Some(_)) => {
                return Err(ApiError::InvalidAccessToken(TokenError::Malformed(
                    "more than one Authorization field",
                )));
            }
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or(ApiError::MissingAccessToken)?,
        };
        match state.auth.tokens.verify(token, super::unix_now().as_secs()) {
            Ok(user_id) => Ok(Self { user_id }),
            Err(reason) => {
                tracing::info!(reason = reason.as_str(), "access token refused");
                Err(ApiError::InvalidAccessToken(reason))
            }
        }
    }
}
