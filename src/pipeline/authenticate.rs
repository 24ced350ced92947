//! Authenticate stage: an `Authorization: Bearer` access token is verified with the origin's
//! published keys (`ACCESS_TOKENS`, [`breakwater_core::token::Verifier`]) and its subject becomes
//! the principal: rate limits, idempotency scopes and the origin's `Breakwater-Principal` follow
//! it. An invalid token is a `401` before anything else runs. No token, another scheme, or an
//! opaque bearer token (no `.`: the origin's admin token) passes as it came; with no keys configured, tokens are not checked here (the origin still checks the
//! routes it guards).

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::runtime::now_ms;
use breakwater_core::access::{AMBIGUOUS, Presented};
use breakwater_core::intake::Principal;
use breakwater_core::token::TokenError;

pub fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let Some(verifier) = &ex.config.access_tokens else {
        return Ok(Flow::Next);
    };
    let authorization = ex.head.header("authorization");
    let token = match Presented::from_header(authorization.as_deref()) {
        Presented::Nothing | Presented::Other => return Ok(Flow::Next),
        Presented::Ambiguous => return Err(EdgeError::InvalidToken(AMBIGUOUS)),
        Presented::AccessToken(token) => token,
    };
    let now = (now_ms() / 1000.0) as u64;
    let claims = verifier
        .verify(token, now)
        .map_err(EdgeError::InvalidToken)?;
    ex.principal = Principal::user(&claims.sub).ok_or(EdgeError::InvalidToken(
        TokenError::Malformed("the subject is not a valid principal"),
    ))?;
    Ok(Flow::Next)
}
