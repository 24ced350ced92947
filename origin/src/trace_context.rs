//! W3C Trace Context at the origin: each request continues the trace the edge sends in
//! `traceparent` (or starts one when there is none, or it is invalid), as one more hop with a
//! span id of its own, and the response carries that hop's `traceparent` back.
//!
//! The rule is core's ([`TraceContext::continue_or_start`], which the edge applies too); this
//! module only draws the randomness and moves headers. The context is put in the request's
//! extensions before the request span opens, so [`crate::telemetry::request_span`] logs the same
//! trace id the response names.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use breakwater_core::headers::TRACEPARENT;
use breakwater_core::trace::TraceContext;

/// This hop's trace context, for a request that has one (see [`continue_trace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTrace(pub TraceContext);

/// The context of this hop: the caller's trace with a fresh span id when `incoming` holds exactly
/// one valid `traceparent`, else a new trace. Several `traceparent` fields are ambiguous, so they
/// start a new trace rather than pick one.
pub fn for_request(incoming: &HeaderMap, random: [u8; 24]) -> TraceContext {
    let mut values = incoming.get_all(TRACEPARENT).iter();
    let single = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    };
    TraceContext::continue_or_start(single, random)
}

/// Middleware: settles this hop's context, records it in the request extensions, and answers with
/// its `traceparent`. Without randomness no span id can be minted: the request then proceeds
/// without a context of its own, and the span logs the caller's trace id if it sent one.
pub async fn continue_trace(mut request: Request, next: Next) -> Response {
    let mut random = [0u8; 24];
    let trace = getrandom::fill(&mut random)
        .ok()
        .map(|()| for_request(request.headers(), random));
    if let Some(trace) = trace {
        request.extensions_mut().insert(RequestTrace(trace));
    }
    let mut response = next.run(request).await;
    if let Some(trace) = trace {
        let value = HeaderValue::from_str(&trace.to_header())
            .expect("a traceparent is lowercase hex and dashes");
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::extract::Extension;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(TRACEPARENT, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn one_valid_traceparent_is_continued_with_our_own_span() {
        let trace = for_request(&headers(&[CALLER]), [7; 24]);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.span_id, [7; 8]);
        assert!(trace.sampled);
    }

    #[test]
    fn none_invalid_or_several_start_a_new_trace() {
        let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        for incoming in [
            headers(&[]),
            headers(&["00-00000000000000000000000000000000-00f067aa0ba902b7-01"]),
            headers(&["not a traceparent"]),
            headers(&[CALLER, other]),
        ] {
            let trace = for_request(&incoming, [9; 24]);
            assert_eq!(trace.trace_id, [9; 16], "{incoming:?}");
            assert_eq!(trace.span_id, [9; 8]);
        }
    }

    #[tokio::test]
    async fn the_handler_and_the_response_see_the_same_continued_context() {
        let app = Router::new()
            .route(
                "/",
                get(
                    |Extension(RequestTrace(trace)): Extension<RequestTrace>| async move {
                        trace.to_header()
                    },
                ),
            )
            .layer(axum::middleware::from_fn(continue_trace));
        let request = Request::get("/")
            .header(TRACEPARENT, CALLER)
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let answered = response.headers()[TRACEPARENT].to_str().unwrap().to_owned();
        let seen = to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(answered.as_bytes(), &seen[..]);

        let ours = TraceContext::parse(&answered).expect("a valid traceparent");
        let caller = TraceContext::parse(CALLER).unwrap();
        assert_eq!(ours.trace_id, caller.trace_id);
        assert_ne!(ours.span_id, caller.span_id, "our hop has its own span id");
        assert_eq!(ours.sampled, caller.sampled);
    }
}
