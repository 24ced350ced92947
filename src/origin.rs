//! Stage 3, origin: proxy the request to an origin of the pool (`ORIGINS`, else `ORIGIN_URL`)
//! with a timeout, forwarding the request id and trace context; a request harmless to repeat is
//! retried once on another origin if the first gave no answer. An unreachable origin is `502`, a
//! slow one `504`, both as problem+json.

use crate::error::EdgeError;
use crate::exchange::{Exchange, now_ms, random};
use crate::pipeline::Flow;
use crate::{pool, signals};
use crate::{purge, respond};
use breakwater_core::cache::{HeaderList, invalidations, is_origin_error, is_safe_method};
use breakwater_core::config::EdgeConfig;
use breakwater_core::headers::{PRINCIPAL, REQUEST_ID, TRACEPARENT, is_hop_by_hop};
use breakwater_core::idempotency::HEADER as IDEMPOTENCY_KEY;
use breakwater_core::intake::{self, Limits, Principal};
use breakwater_core::policy::Mode;
use breakwater_core::pool::{Failure, retry};
use breakwater_core::purge::{MAX_ITEMS, PurgeRequest, parse_tags};
use breakwater_core::trace::{self, TraceContext};
use futures_util::future::{Either, select};
use std::pin::pin;
use std::time::Duration;
use worker::{
    AbortController, Delay, Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
    Response,
};

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let response = fetch(ex, None).await?;
    if !is_safe_method(ex.req.method().as_ref()) {
        purge_after_write(ex, &response).await;
    }
    Ok(Flow::Respond(response))
}

/// A write the origin accepted makes stored responses stale: the tags it names in `Cache-Tag`,
/// and the target URI with any same-origin `Location`/`Content-Location` (RFC 9111 §4.4). The
/// purge completes before the answer leaves, so the writer's next read is fresh. If it fails
/// the write still stands: the entries then live out their (short) lifetimes, and it is logged.
async fn purge_after_write(ex: &Exchange, response: &Response) {
    let headers: HeaderList = response.headers().entries().collect();
    let url = ex.req.inner().url();
    let status = response.status_code();
    let uris = invalidations(ex.req.method().as_ref(), status, &url, &headers);
    if uris.is_empty() {
        return;
    }
    let mut request = PurgeRequest {
        tags: headers
            .get("cache-tag")
            .map(|v| parse_tags(&v))
            .unwrap_or_default(),
        // Only URLs a route caches: a purge record for anything else would churn the bounded
        // log (and, through its floor, purge more than needed) without invalidating anything.
        keys: uris
            .iter()
            .map(|uri| intake::split_raw_url(uri))
            .filter(|(path, _)| {
                ex.config
                    .cache
                    .route(path)
                    .is_some_and(|r| r.mode != Mode::Bypass)
            })
            .map(|(path, query)| ex.config.cache.url_key(path, query))
            .collect(),
        prefixes: Vec::new(),
    };
    if request.tags.is_empty() && request.keys.is_empty() {
        return;
    }
    request
        .tags
        .truncate(MAX_ITEMS - request.keys.len().min(MAX_ITEMS));
    let outcome = match request.validate() {
        Ok(()) => purge::purge(&ex.env, &request)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        worker::console_error!(
            "request {}: purge after {status} write failed: {e}",
            ex.request_id
        );
    }
}

/// The one proxy to the origin, used by this stage and by the cache stage on a miss.
pub async fn fetch(ex: &mut Exchange, keep_only: Option<&[String]>) -> Result<Response, EdgeError> {
    let outbound = Outbound::from_exchange(ex, keep_only).await?;
    send(&ex.env, &ex.config, &outbound).await
}

/// A request for the origin, owned, so a background refresh can send it after the client's
/// request is answered.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Path and query on the origin; [`send`] picks which origin.
    pub path: String,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Outbound {
    /// A `GET` of `path_and_query` on the origin that no client sent (the cron trigger's), with
    /// a fresh request id and trace.
    pub fn internal(path_and_query: &str) -> Self {
        let request_id = trace::request_id(None, random());
        let trace = TraceContext::continue_or_start(None, random());
        Self {
            path: path_and_query.to_owned(),
            method: Method::Get,
            headers: vec![
                (REQUEST_ID.into(), request_id),
                (TRACEPARENT.into(), trace.to_header()),
            ],
            body: None,
        }
    }

    /// The client's request, addressed to the origin.
    ///
    /// `keep_only`: on cacheable routes the cache stage passes the keyed request headers; every
    /// other end-to-end header is then withheld, so one client's unkeyed headers (conditionals,
    /// odd `Accept`s) cannot shape a response that is stored and served to everyone.
    pub async fn from_exchange(
        ex: &mut Exchange,
        keep_only: Option<&[String]>,
    ) -> Result<Self, EdgeError> {
        let raw_url = ex.req.inner().url();
        let (raw_path, query) = intake::split_raw_url(&raw_url);
        let path = format!("{raw_path}{query}");

        let incoming = ex.req.headers();
        let connection = incoming.get("connection")?;
        let mut headers: Vec<(String, String)> = incoming
            .entries()
            .filter(|(name, _)| {
                !is_hop_by_hop(name, connection.as_deref()) && name != "host" && name != PRINCIPAL
            })
            .filter(|(name, _)| {
                keep_only.is_none_or(|keyed| keyed.iter().any(|k| k.eq_ignore_ascii_case(name)))
            })
            .collect();
        // The origin's own host, not the edge's; the edge's travels as X-Forwarded-Host.
        if let Some(host) = incoming.get("host")? {
            headers.push(("x-forwarded-host".into(), host));
        }
        headers.push((REQUEST_ID.into(), ex.request_id.clone()));
        headers.push((TRACEPARENT.into(), ex.trace.to_header()));
        // Shared (cached) responses must not depend on who asked; an anonymous caller has no
        // identity to pass on (the origin refuses work that needs one).
        if keep_only.is_none() && ex.principal != Principal::Anonymous {
            headers.push((PRINCIPAL.into(), ex.principal.key()));
        }

        let method = ex.req.method();
        let body = if matches!(method, Method::Get | Method::Head) {
            None
        } else {
            Some(ex.body(Limits::default().max_body_bytes).await?.to_vec())
        };
        Ok(Self {
            path,
            method,
            headers,
            body,
        })
    }
}

/// Sends `outbound` to the origin the pool picks ([`pool::start`]). If it fails without an
/// answer and repeating it is harmless ([`retry::retryable`]), it is sent once more to another
/// eligible, healthy origin, within the isolate's retry budget ([`pool::retry`]).
pub async fn send(
    env: &Env,
    config: &EdgeConfig,
    outbound: &Outbound,
) -> Result<Response, EdgeError> {
    let first = pool::start(config);
    let failed = first.index;
    let result = attempt(env, config, outbound, first).await;
    let failure = match &result {
        Err(EdgeError::BreakerOpen { .. }) => Failure::NotSent,
        Err(EdgeError::OriginUnreachable(_)) => Failure::NoConnection,
        Err(EdgeError::OriginTimeout(_)) => Failure::Timeout,
        _ => return result,
    };
    let keyed = outbound
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY));
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
        config.pool.origins[failed].url,
        config.pool.origins[second.index].url
    );
    attempt(env, config, outbound, second).await
}

/// Sends `outbound` to `call`'s origin through its circuit breaker: refused at once while it is
/// open, sent as a probe while it is half-open, counted toward it while closed (a 5xx, a timeout
/// or no connection is a failure; an answer slower than the breaker's `slow_call_ms` is slow).
/// The outcome counts toward the origin's ejection.
async fn attempt(
    env: &Env,
    config: &EdgeConfig,
    outbound: &Outbound,
    call: pool::Call,
) -> Result<Response, EdgeError> {
    let origin = &config.pool.origins[call.index].url;
    let probe = signals::breaker_permit(env, origin)
        .await
        .map_err(|retry_after_ms| EdgeError::BreakerOpen { retry_after_ms })?;
    let url = format!("{origin}{}", outbound.path);
    let started = now_ms();
    let result = send_once(&url, outbound, config.origin_timeout).await;
    let latency_ms = (now_ms() - started) as u64;
    let failed = result
        .as_ref()
        .map_or(true, |r| is_origin_error(r.status_code()));
    call.finish(config, !failed);
    match probe {
        Some(id) => signals::probe_done(env, origin, id, !failed, latency_ms).await,
        None => {
            signals::record_origin_call(origin, failed, latency_ms >= config.breaker.slow_call_ms)
        }
    }
    result
}

/// Sends `outbound` once, answering `502` if the origin cannot be reached and `504` if its
/// response head takes longer than `timeout`. The response comes back with mutable headers,
/// hop-by-hop fields removed.
pub(crate) async fn send_once(
    url: &str,
    outbound: &Outbound,
    timeout: Duration,
) -> Result<Response, EdgeError> {
    let headers = Headers::new();
    for (name, value) in &outbound.headers {
        headers.append(name, value)?;
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
    match select(
        pin!(fetch.send_with_signal(&signal)),
        pin!(Delay::from(timeout)),
    )
    .await
    {
        Either::Left((Ok(response), _)) => {
            let headers = respond::relay_headers(response.headers())?;
            Ok(respond::rebuild(response, headers))
        }
        Either::Left((Err(e), _)) => Err(EdgeError::OriginUnreachable(e.to_string())),
        Either::Right(_) => {
            controller.abort();
            Err(EdgeError::OriginTimeout(timeout))
        }
    }
}
