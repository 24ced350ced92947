//! The `x-request-id` of each request: the caller's own when core's rule accepts it, else a fresh
//! one. tower-http sets and echoes the header; this module only supplies the rule.

use axum::http::{HeaderValue, Request};
use breakwater_core::{headers, trace};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Mints request ids in the same shape the edge does (`breakwater_core::trace::request_id`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MintRequestId;

impl MakeRequestId for MintRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let mut random = [0u8; 16];
        // Without randomness there is no id worth minting; the request still proceeds.
        getrandom::fill(&mut random).ok()?;
        let id = trace::request_id(None, random);
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Drops an incoming id that core would not keep (too long, or characters that could forge a log
/// line), so the set-request-id layer that runs next mints a clean one instead.
pub fn drop_unsafe_incoming<B>(mut request: Request<B>) -> Request<B> {
    let keep = match request.headers().get(headers::REQUEST_ID) {
        None => true,
        Some(value) => value
            .to_str()
            .is_ok_and(|id| trace::request_id(Some(id), [0; 16]) == id),
    };
    if !keep {
        request.headers_mut().remove(headers::REQUEST_ID);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(id: &str) -> Request<()> {
        Request::builder()
            .header(headers::REQUEST_ID, id)
            .body(())
            .unwrap()
    }

    #[test]
    fn safe_ids_are_kept_and_unsafe_ones_dropped() {
        let kept = drop_unsafe_incoming(incoming("abc-123"));
        assert_eq!(kept.headers()[headers::REQUEST_ID], "abc-123");
        let dropped = drop_unsafe_incoming(incoming("a b"));
        assert!(dropped.headers().get(headers::REQUEST_ID).is_none());
    }

    #[test]
    fn minted_ids_are_fresh_and_pass_the_rule() {
        let request = incoming("unused");
        let a = MintRequestId.make_request_id(&request).unwrap();
        let b = MintRequestId.make_request_id(&request).unwrap();
        assert_ne!(a.header_value(), b.header_value());
        let a = a.header_value().to_str().unwrap();
        assert_eq!(trace::request_id(Some(a), [0; 16]), a);
    }
}
