//! Stage 3, origin: proxy the request to `ORIGIN_URL` with a timeout, forwarding the request id
//! and trace context. An unreachable origin is `502`, a slow one `504`, both as problem+json.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::respond;
use breakwater_core::headers::{REQUEST_ID, TRACEPARENT};
use breakwater_core::intake::{self, Limits};
use futures_util::future::{Either, select};
use std::pin::pin;
use worker::{
    AbortController, Delay, Fetch, Method, Request, RequestInit, RequestRedirect, Response,
};

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    Ok(Flow::Respond(fetch(ex, None).await?))
}

/// The one proxy to the origin, used by this stage and by the cache stage on a miss.
///
/// `keep_only`: on cacheable routes the cache stage passes the keyed request headers; every other
/// end-to-end header is then withheld, so one client's unkeyed headers (conditionals, odd
/// `Accept`s) cannot shape a response that is stored and served to everyone.
pub async fn fetch(ex: &mut Exchange, keep_only: Option<&[String]>) -> Result<Response, EdgeError> {
    let raw_url = ex.req.inner().url();
    let (raw_path, query) = intake::split_raw_url(&raw_url);
    let url = format!("{}{raw_path}{query}", ex.config.origin_url);

    let headers = respond::relay_headers(ex.req.headers())?;
    if let Some(keyed) = keep_only {
        for (name, _) in ex.req.headers().entries() {
            if !keyed.iter().any(|k| k.eq_ignore_ascii_case(&name)) && name != "host" {
                headers.delete(&name)?;
            }
        }
    }
    // The origin's own host, not the edge's; the edge's travels as X-Forwarded-Host.
    if let Some(host) = ex.req.headers().get("host")? {
        headers.set("x-forwarded-host", &host)?;
    }
    headers.delete("host")?;
    headers.set(REQUEST_ID, &ex.request_id)?;
    headers.set(TRACEPARENT, &ex.trace.to_header())?;

    let method = ex.req.method();
    let mut init = RequestInit::new();
    init.with_method(method.clone())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !matches!(method, Method::Get | Method::Head) {
        // Buffered, so the limit holds even without a Content-Length (chunked uploads).
        let body = ex.req.bytes().await?;
        let max = Limits::default().max_body_bytes;
        if body.len() as u64 > max {
            return Err(EdgeError::Rejected(intake::Rejection::BodyTooLarge {
                len: body.len() as u64,
                max,
            }));
        }
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let request = Request::new_with_init(&url, &init)?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let timeout = ex.config.origin_timeout;
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
