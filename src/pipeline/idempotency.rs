//! Idempotency stage: an unsafe request with an `Idempotency-Key` runs once per (principal,
//! key), whatever the client retries. Core decides ([`breakwater_core::idempotency`]); the
//! `IDEMPOTENCY` Durable Object, one per (principal, key), keeps the record, so one client can
//! never read another's stored answer.
//!
//! Begin → the rest of the path (it wraps the cache and origin stages, so the write reaches the
//! origin through the upstream layer and purges like any other) → complete (the answer is kept
//! and replayed with `Idempotent-Replayed: true`). When the origin gives no answer the claim is
//! kept or released by core's rule ([`should_keep_on_no_answer`]): kept when the request may
//! have reached it (a retry gets `409` until the lease ends instead of racing the first
//! attempt), released when it was never sent. The origin's own unique (principal, key) record
//! makes either safe.
//!
//! The client waits on one round trip to the object, `begin`: its claim must be stored before
//! the write goes out. `complete` and `release` are sent as the answer goes back (`wait_until`),
//! not awaited: the object takes its requests in order and the call is already on its way, so
//! a retry of the answered request normally finds the kept answer; one that overtakes it gets
//! `409` with `Retry-After`, as while the first attempt runs, and the replay on its next try. A
//! failed `complete` leaves the claim to its lease, as before.
//!
//! When the object cannot be reached at all, a route whose origin keeps that record
//! (`origin_dedupes`) goes on without the edge's record; any other route is refused with `503`
//! before anything is sent. Never a `500`: the client can always retry with the same key.

use super::Next;
use crate::bindings::durable;
use crate::bindings::idempotency::{self as records, Begin, Complete, Release};
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::respond;
use crate::upstream;
use breakwater_core::idempotency::{
    Begin as Decision, HEADER, NoAnswer, REPLAYED_HEADER, StoredResponse, fingerprint, record_name,
    should_keep_on_no_answer,
};
use breakwater_core::intake::{self, Limits};
use worker::{Env, Method, Response};

pub async fn run(ex: &mut Exchange, next: Next) -> Result<Response, EdgeError> {
    let method = ex.head.method.clone();
    let config = ex.config.clone();
    if matches!(method, Method::Get | Method::Head | Method::Options) || !config.idempotency.enabled
    {
        return next.run(ex).await;
    }
    let route = config.idempotency.route(&ex.path);
    let required = route.is_some_and(|r| r.required);
    let origin_dedupes = route.is_some_and(|r| r.origin_dedupes);
    let Some(raw_key) = ex.head.header(HEADER) else {
        return if required {
            Err(EdgeError::IdempotencyKeyMissing)
        } else {
            next.run(ex).await
        };
    };
    let key = config
        .idempotency
        .key(&raw_key)
        .map_err(|e| EdgeError::IdempotencyKeyInvalid(e.to_string()))?;
    let raw_url = ex.head.url.clone();
    let (_, query) = intake::split_raw_url(&raw_url);
    let body = ex.body(Limits::default().max_body_bytes).await?;
    let print = fingerprint(method.as_ref(), &format!("{}{query}", ex.path), &body);
    let policy = config.idempotency.policy(&ex.path);
    // Scoped to the owner (a guest's session, not the address it shares), or the address for a
    // caller the origin will refuse anyway.
    let scope = ex.owner().unwrap_or_else(|| ex.principal.key());
    let object = record_name(&scope, &key);

    let begin = Begin {
        fingerprint: print,
        policy: policy.clone(),
    };
    let decision = match call(&ex.env, &object, &begin).await {
        Ok(decision) => decision,
        // The records are down: the origin's own record keeps the write exactly-once where it
        // has one; elsewhere nothing is sent.
        Err(e) if origin_dedupes => {
            worker::console_warn!("idempotency {object}: unavailable, going on unrecorded: {e}");
            return next.run(ex).await;
        }
        Err(e) => {
            worker::console_error!("idempotency {object}: unavailable: {e}");
            return Err(EdgeError::IdempotencyUnavailable);
        }
    };
    let claim = match decision {
        Decision::Proceed(claim) => claim,
        Decision::Replay(stored) => return replay(&stored),
        // Too large to keep here: the origin's own record replays it.
        Decision::ReplayFromOrigin => return next.run(ex).await,
        Decision::InFlight { retry_after_ms } => {
            return Err(EdgeError::IdempotencyInFlight { retry_after_ms });
        }
        Decision::Mismatch => return Err(EdgeError::IdempotencyMismatch),
    };

    let mut response = match next.run(ex).await {
        Ok(response) => response,
        Err(e) => {
            let cause = match e {
                // The request may have reached the origin: only its own dedupe knows.
                EdgeError::OriginUnreachable(_)
                | EdgeError::OriginTimeout(_)
                | EdgeError::OriginInvalidResponse(_) => NoAnswer::Lost,
                _ => NoAnswer::NotSent,
            };
            // A release that fails leaves the claim to lapse with its lease; the client hears
            // what happened to its request either way.
            if !should_keep_on_no_answer(cause) {
                after_answer(ex, object, Release { claim }, "could not release");
            }
            return Err(e);
        }
    };
    let status = response.status_code();
    let headers: Vec<(String, String)> = response.headers().entries().collect();
    let body = upstream::read_body(&mut response, ex.config.origin_timeout).await?;
    let answer = Complete {
        claim,
        status,
        headers: headers.clone(),
        body: body.clone(),
        policy,
    };
    // If it fails, the answer stands; a retry finds the claim (409 until the lease ends), then
    // the origin's own record.
    after_answer(ex, object, answer, "could not keep the answer");
    let out = respond::headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
    Ok(Response::builder()
        .with_status(status)
        .with_headers(out)
        .fixed(body))
}

/// Sends `command` to `object` while the answer goes back; a failure is logged with `failed`.
fn after_answer<C: durable::Command + 'static>(
    ex: &Exchange,
    object: String,
    command: C,
    failed: &'static str,
) {
    let env = ex.env.clone();
    ex.ctx.wait_until(async move {
        if let Err(e) = call(&env, &object, &command).await {
            worker::console_error!("idempotency {object}: {failed}: {e}");
        }
    });
}

async fn call<C: durable::Command>(
    env: &Env,
    object: &str,
    command: &C,
) -> Result<C::Reply, EdgeError> {
    Ok(durable::call(env, records::BINDING, object, command, records::TIMEOUT).await?)
}

/// The stored answer, byte for byte, marked as a replay.
fn replay(stored: &StoredResponse) -> Result<Response, EdgeError> {
    let lines = stored.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let headers = respond::headers(
        lines
            .filter(|(name, _)| !name.eq_ignore_ascii_case(REPLAYED_HEADER))
            .chain([(REPLAYED_HEADER, "true")]),
    )?;
    let body = stored.body.clone().unwrap_or_default();
    Ok(Response::builder()
        .with_status(stored.status)
        .with_headers(headers)
        .fixed(body))
}
