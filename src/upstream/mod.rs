//! The upstream layer: the only code on the edge that talks to an origin. Every caller (the
//! origin stage, cache fills and `stale-while-revalidate` refreshes, the cron trigger's warming,
//! the idempotency stage through the stages it wraps, the queue consumer) goes through
//! [`send`], so each rule below applies to all of them:
//!
//! - the outbound request's header rules ([`Outbound`]);
//! - which origin of the pool, and a retry on another one for a request that got no answer (or
//!   an overloaded origin's refusal, `503` with `Retry-After`) and is harmless to repeat, within
//!   the isolate's retry budget ([`pool`], core's `pool::retry`);
//! - the adaptive concurrency limit in front of each origin: a request waits briefly for a slot
//!   or is refused `503` with `Retry-After` ([`limit`], core's `concurrency`);
//! - the circuit breaker's permit, one timeout, the response rebuilt with its hop-by-hop
//!   fields removed ([`call`]);
//! - after a write the origin accepted, the purge of what it made stale ([`effects`]).
//!
//! An unreachable origin is `502`, one that answers what the edge cannot relay (a status outside
//! 200–599, a header field the runtime refuses) `502` too, a slow one `504`, an open breaker
//! `503`, all problem+json.

mod call;
mod effects;
pub mod health;
pub mod limit;
mod outbound;
pub mod pool;
mod sign;

pub use call::{Buffered, buffer, read_body, refused};
pub use outbound::{Forward, Outbound};

use crate::error::EdgeError;
use crate::exchange::Exchange;
use breakwater_core::cache::is_safe_method;
use breakwater_core::config::EdgeConfig;
use breakwater_core::idempotency::HEADER as IDEMPOTENCY_KEY;
use breakwater_core::pool::{Failure, retry};
use worker::{Env, Response};

/// The client's request, forwarded whole (every end-to-end header, the principal, the body).
pub async fn forward(ex: &mut Exchange) -> Result<Response, EdgeError> {
    let outbound = Outbound::from_exchange(ex, Forward::Private).await?;
    send(&ex.env, &ex.config, &outbound).await
}

/// Sends `outbound` to an origin of the pool and returns its answer; after an unsafe request,
/// purges what the answer makes stale before returning it, so the writer's next read is fresh.
pub async fn send(
    env: &Env,
    config: &EdgeConfig,
    outbound: &Outbound,
) -> Result<Response, EdgeError> {
    let response = send_with_retry(env, config, outbound).await?;
    if !is_safe_method(outbound.method.as_ref()) {
        effects::purge_after_write(env, config, outbound, &response).await;
    }
    Ok(response)
}

/// Sends `outbound` to the origin the pool picks. If it fails without an answer and repeating
/// it is harmless ([`retry::retryable`]), it is sent once more to another eligible, healthy
/// origin, within the isolate's retry budget ([`pool::retry`]).
async fn send_with_retry(
    env: &Env,
    config: &EdgeConfig,
    outbound: &Outbound,
) -> Result<Response, EdgeError> {
    let first = pool::start(config);
    let failed = first.index;
    let result = call::attempt(env, config, outbound, first).await;
    let failure = match &result {
        Err(EdgeError::BreakerOpen { .. } | EdgeError::OriginAtCapacity { .. }) => Failure::NotSent,
        Err(EdgeError::OriginUnreachable(_)) => Failure::NoConnection,
        Err(EdgeError::OriginTimeout(_)) => Failure::Timeout,
        Ok(response) if call::overloaded(response) => Failure::Overloaded,
        _ => return result,
    };
    let keyed = outbound.has_header(IDEMPOTENCY_KEY);
    if !retry::retryable(outbound.method.as_ref(), keyed, failure) {
        return result;
    }
    let Some(second) = pool::retry(config, failed) else {
        return result;
    };
    worker::console_warn!(
        "{} {}: {failure:?} at {}; retrying at {}",
        outbound.method,
        outbound.path,
        pool::origin_url(config, failed),
        pool::origin_url(config, second.index)
    );
    call::attempt(env, config, outbound, second).await
}
