//! One call to one origin: through its circuit breaker, with the timeout, counted toward the
//! breaker and the pool's ejection.

use super::limit;
use super::outbound::Outbound;
use super::pool;
use super::sign;
use crate::bindings::control::signals;
use crate::config;
use crate::error::EdgeError;
use crate::respond;
use crate::runtime::{now_ms, within};
use breakwater_core::cache::is_origin_error;
use breakwater_core::concurrency::Sample;
use breakwater_core::config::EdgeConfig;
use breakwater_core::headers::is_field_value;
use breakwater_core::pool::retry::refused_as_overloaded;
use breakwater_core::signing;
use futures_util::StreamExt;
use std::time::Duration;
use worker::{
    AbortController, Env, Fetch, Headers, Request, RequestInit, RequestRedirect, Response,
};

/// Sends `outbound` to `call`'s origin through its circuit breaker: refused at once while it is
/// open, sent as a probe while it is half-open, counted toward it while closed (a 5xx, a timeout
/// or no connection is a failure; an answer slower than the breaker's `slow_call_ms` is slow).
/// Then through the origin's concurrency limit ([`limit`]): sent within it, after a short wait,
/// or refused as [`EdgeError::OriginAtCapacity`] (a probe refused there reports nothing, and its
/// breaker counts it failed once the probe times out). The outcome counts toward the origin's
/// ejection.
pub async fn attempt(
    env: &Env,
    config: &EdgeConfig,
    outbound: &Outbound,
    call: pool::Call,
) -> Result<Response, EdgeError> {
    let origin = pool::origin_url(config, call.index);
    let probe = signals::breaker_permit(env, origin)
        .await
        .map_err(|retry_after_ms| EdgeError::BreakerOpen { retry_after_ms })?;
    let slot = limit::acquire(&config.concurrency, origin, outbound.priority).await?;
    let url = format!("{origin}{}", outbound.path);
    let started = now_ms();
    let secrets = config::secrets(env);
    let key = secrets.edge_key.as_deref();
    let result = send_once(&url, outbound, config.origin_timeout, key).await;
    let latency_ms = (now_ms() - started) as u64;
    signals::observe_origin(origin, latency_ms);
    let refused = result.as_ref().is_ok_and(overloaded);
    if let Some(slot) = slot {
        // An answer measures the origin, whatever its status; a refusal as overloaded or no
        // answer in time cuts the limit; a reset or a broken answer says nothing of its load.
        slot.release(match &result {
            Ok(_) if refused => Sample::Dropped,
            Ok(_) => Sample::Ok,
            Err(EdgeError::OriginTimeout(_)) => Sample::Dropped,
            Err(_) => Sample::Unmeasured,
        });
    }
    // An overloaded origin's refusal is fast and did no work: not a failure for the breaker.
    let failed = result
        .as_ref()
        .map_or(true, |r| is_origin_error(r.status_code()) && !refused);
    call.finish(config, !failed);
    match probe {
        Some(id) => signals::probe_done(env, origin, id, !failed, latency_ms).await,
        None => {
            signals::record_origin_call(origin, failed, latency_ms >= config.breaker.slow_call_ms)
        }
    }
    result
}

/// True when the origin refused the request as overloaded (core's
/// [`refused_as_overloaded`]: `503` with `Retry-After`).
pub fn overloaded(response: &Response) -> bool {
    refused(response.status_code(), response.headers())
}

/// [`refused_as_overloaded`] for a status and its headers, reading `Retry-After` (a call across
/// the JS boundary) only for a `503`.
pub fn refused(status: u16, headers: &Headers) -> bool {
    status == 503 && refused_as_overloaded(status, headers.has("retry-after").unwrap_or(false))
}

/// Sends `outbound` to `url` once, signed with `edge_key` if given ([`sign`]), answering `502` if
/// the origin cannot be reached and `504` if its response head takes longer than `timeout`. The
/// response comes back with mutable headers, hop-by-hop fields removed ([`relay`]).
///
/// A connection refused, reset or closed before the response head rejects the runtime's fetch at
/// once, and so ends the race against the timer at once: no answer is
/// [`EdgeError::OriginUnreachable`] as soon as the runtime knows it, never after the timeout.
/// Only the head is raced; the body streams to its reader afterwards.
pub async fn send_once(
    url: &str,
    outbound: &Outbound,
    timeout: Duration,
    edge_key: Option<&str>,
) -> Result<Response, EdgeError> {
    let headers = Headers::new();
    for (name, value) in &outbound.headers {
        headers.append(name, value)?;
    }
    if let Some(signature) = edge_key.and_then(|key| sign::signature(key, url, outbound)) {
        headers.set(signing::HEADER, &signature)?;
    }
    let mut init = RequestInit::new();
    init.with_method(outbound.method.clone())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if let Some(body) = &outbound.body {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let request = Request::new_with_init(url, &init)?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    match within(timeout, fetch.send_with_signal(&signal)).await {
        Some(Ok(response)) => relay(response).inspect_err(|_| {
            // Nobody reads the refused answer's body: release the connection now.
            controller.abort();
        }),
        Some(Err(e)) => Err(EdgeError::OriginUnreachable(e.to_string())),
        None => {
            controller.abort();
            Err(EdgeError::OriginTimeout(timeout))
        }
    }
}

/// The origin's answer as the edge can pass it on, or [`EdgeError::OriginInvalidResponse`]
/// (`502`) for one it cannot: a status the runtime cannot construct a response with (the
/// conversion panics, taking the isolate down with every request in it), or a header field the
/// runtime's `Headers` refuses, or one holding a control character (RFC 9110 §5.5; the runtime
/// passes those on). A null-body status (`204`, `205`, `304`) is rebuilt without a
/// body, which the runtime would refuse too. Interim `1xx` answers (`100`, `103`) never get here:
/// the runtime's fetch consumes them and resolves with the final answer; a `1xx` that did arrive
/// as final would be refused like a `600`.
fn relay(response: Response) -> Result<Response, EdgeError> {
    let status = response.status_code();
    if !respond::is_constructible(status) {
        return Err(EdgeError::OriginInvalidResponse(format!("status {status}")));
    }
    if let Some((name, _)) = response
        .headers()
        .entries()
        .find(|(_, value)| !is_field_value(value))
    {
        return Err(EdgeError::OriginInvalidResponse(format!(
            "header field {name} holds a control character"
        )));
    }
    let headers = respond::relay_headers(response.headers())
        .map_err(|e| EdgeError::OriginInvalidResponse(format!("header field refused: {e}")))?;
    Ok(respond::rebuild(response, headers))
}

/// Reads an origin answer's whole body, within `timeout`: what a caller that buffers it (a cache
/// fill, an idempotency record) must use instead of `Response::bytes`. The head's timeout in
/// [`send_once`] does not cover the body; a body that stalls is [`EdgeError::OriginTimeout`],
/// and one cut off by a closed or reset connection is [`EdgeError::OriginUnreachable`] (a `502`
/// that `stale-if-error` may cover), not an internal error.
pub async fn read_body(response: &mut Response, timeout: Duration) -> Result<Vec<u8>, EdgeError> {
    match within(timeout, response.bytes()).await {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(e)) => Err(EdgeError::OriginUnreachable(format!("body cut off: {e}"))),
        None => Err(EdgeError::OriginTimeout(timeout)),
    }
}

/// An origin body read for keeping, within a size limit.
pub enum Buffered {
    /// The whole body: at most the limit.
    Whole(Vec<u8>),
    /// Longer than the limit: the answer to relay as it is, its body whole again (what was read,
    /// then the rest, streamed), so memory holds at most the limit whatever the origin sends.
    TooLarge(Response),
}

/// Reads `response`'s body within `timeout` if it is at most `limit` bytes, whether or not the
/// origin declared its length (a chunked answer is read the same way). A cut-off body is
/// [`EdgeError::OriginUnreachable`], a stalled one [`EdgeError::OriginTimeout`].
pub async fn buffer(
    mut response: Response,
    limit: usize,
    timeout: Duration,
) -> Result<Buffered, EdgeError> {
    let Ok(mut stream) = response.stream() else {
        // Not a stream: no body (a null-body status), or one already in memory.
        return Ok(Buffered::Whole(response.bytes().await?));
    };
    let read = within(timeout, async {
        let mut chunks = Vec::new();
        let mut total = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            total += chunk.len();
            chunks.push(chunk);
            if total > limit {
                return Ok((chunks, false));
            }
        }
        Ok::<_, worker::Error>((chunks, true))
    })
    .await;
    match read {
        None => Err(EdgeError::OriginTimeout(timeout)),
        Some(Err(e)) => Err(EdgeError::OriginUnreachable(format!("body cut off: {e}"))),
        Some(Ok((chunks, true))) => Ok(Buffered::Whole(chunks.concat())),
        Some(Ok((chunks, false))) => {
            let read = futures_util::stream::iter(chunks.into_iter().map(Ok));
            let relayed = Response::builder()
                .with_status(response.status_code())
                .with_headers(response.headers().clone())
                .from_stream(read.chain(stream))?;
            Ok(Buffered::TooLarge(relayed))
        }
    }
}
