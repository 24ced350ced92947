//! Guest stage: who the origin acts for when the caller has neither an access token nor an API
//! key ([`breakwater_core::guest`]). A valid guest cookie makes the request that guest's; a first
//! order (any write with a valid `Idempotency-Key`: a client that retries, and so needs to stay
//! the same somebody across attempts) without one opens a session, whose cookie the answer
//! sets. Anyone else is nobody to the origin: rate limits still follow the address, but the
//! address never owns orders. Without `EDGE_KEY` no session can be signed, and such callers
//! stay nobody.

use crate::config;
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use breakwater_core::guest;
use breakwater_core::idempotency::HEADER as IDEMPOTENCY_KEY;
use breakwater_core::intake::Principal;
use worker::Method;

pub fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    if matches!(ex.principal, Principal::User(_) | Principal::ApiKey { .. }) {
        return Ok(Flow::Next);
    }
    let secrets = config::secrets(&ex.env);
    let Some(key) = secrets.edge_key.as_deref().map(str::as_bytes) else {
        return Ok(Flow::Next);
    };
    if let Some(cookie) = ex.head.header("cookie")
        && let Some(id) = guest::from_cookie_header(key, &cookie)
    {
        ex.guest = Some(id);
        return Ok(Flow::Next);
    }
    if matches!(
        ex.head.method.clone(),
        Method::Get | Method::Head | Method::Options
    ) {
        return Ok(Flow::Next);
    }
    // A missing or invalid key opens nothing: the idempotency stage refuses the request.
    let order_key = ex
        .head
        .header(IDEMPOTENCY_KEY)
        .and_then(|raw| ex.config.idempotency.key(&raw).ok());
    if let Some(order_key) = order_key {
        let id = guest::new_id(key, &ex.principal.key(), order_key.as_str());
        ex.set_cookie = Some(guest::set_cookie(key, &id));
        ex.guest = Some(id);
    }
    Ok(Flow::Next)
}
