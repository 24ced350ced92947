//! W3C trace continuation: the origin answers with a `traceparent` that continues the caller's
//! trace as a hop of its own, or starts a trace when the caller sent none.

use breakwater_core::trace::TraceContext;

use crate::helpers::{Backend, on_each_backend, spawn_app};

const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn answered(response: &reqwest::Response) -> TraceContext {
    let value = response.headers()["traceparent"].to_str().unwrap();
    TraceContext::parse(value).unwrap_or_else(|| panic!("invalid traceparent {value:?}"))
}

on_each_backend!(a_sent_trace_id_comes_back_with_the_origins_own_parent_id);
async fn a_sent_trace_id_comes_back_with_the_origins_own_parent_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let caller = TraceContext::parse(CALLER).unwrap();
    // A handler's answer and a problem alike.
    for path in ["/api/products/1", "/api/products/0", "/nowhere"] {
        let response = app.get_with(path, &[("traceparent", CALLER)]).await;
        let ours = answered(&response);
        assert_eq!(ours.trace_id, caller.trace_id, "{path}");
        assert_ne!(
            ours.span_id, caller.span_id,
            "{path}: the origin is a hop of its own"
        );
        assert_eq!(ours.sampled, caller.sampled, "{path}");
    }
}

on_each_backend!(without_a_valid_traceparent_each_request_starts_a_trace);
async fn without_a_valid_traceparent_each_request_starts_a_trace(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = answered(&app.get("/health").await);
    let second = answered(&app.get("/health").await);
    assert_ne!(first.trace_id, second.trace_id);
    let invalid = "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01";
    let restarted = answered(&app.get_with("/health", &[("traceparent", invalid)]).await);
    assert_ne!(restarted.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
}
