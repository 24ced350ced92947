//! Structured logging: the subscriber set-up and the span every request runs in.

use axum::http::Request;
use breakwater_core::{headers, trace::TraceContext};
use tracing::Span;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::trace_context::RequestTrace;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Multi-line, coloured, for a developer's terminal.
    Pretty,
}

/// Installs the global subscriber. The filter comes from `RUST_LOG`, defaulting to `info`.
pub fn init(format: LogFormat) -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().pretty()).try_init(),
    }
}

/// The span of one request. It runs inside the request-id layer, so the id is always present;
/// the W3C trace id lets these lines be joined with the edge's, and `span_id` is this hop's own
/// (the parent id the response's `traceparent` names; see [`crate::trace_context`]).
///
/// INFO level on purpose: at DEBUG (tower-http's default) the span, and with it the request id,
/// would vanish from every line logged under the default `info` filter.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = header(headers::REQUEST_ID).unwrap_or_default(),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    match request.extensions().get::<RequestTrace>() {
        Some(RequestTrace(ours)) => {
            span.record("trace_id", ours.trace_id_hex());
            span.record("span_id", ours.span_id_hex());
        }
        // No context of our own (no randomness): still join the caller's trace if it sent one.
        None => {
            if let Some(caller) = header(headers::TRACEPARENT).and_then(TraceContext::parse) {
                span.record("trace_id", caller.trace_id_hex());
            }
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::trace::TraceLayer;

    use super::*;
    use crate::trace_context;

    const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    /// Log lines, shared with the subscriber that writes them.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The JSON line of the event logged with `message`, as `init` writes them.
    async fn logged_while_answering(traceparent: Option<&str>) -> (serde_json::Value, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(move || writer.clone()),
        );
        let _default = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route("/", get(|| async { tracing::info!("handled") }))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(axum::middleware::from_fn(trace_context::continue_trace));
        let mut request = Request::get("/");
        if let Some(value) = traceparent {
            request = request.header(headers::TRACEPARENT, value);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let answered = response.headers()[headers::TRACEPARENT]
            .to_str()
            .unwrap()
            .to_owned();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["message"] == "handled")
            .unwrap_or_else(|| panic!("no `handled` line in {text}"));
        (line, answered)
    }

    #[tokio::test]
    async fn the_span_logs_the_callers_trace_and_the_span_id_the_response_names() {
        let caller = format!("00-{CALLER_TRACE}-00f067aa0ba902b7-01");
        let (line, answered) = logged_while_answering(Some(&caller)).await;
        let ours = TraceContext::parse(&answered).unwrap();
        assert_eq!(line["span"]["trace_id"], CALLER_TRACE, "{line}");
        assert_eq!(line["span"]["span_id"], ours.span_id_hex(), "{line}");
        assert_ne!(ours.span_id_hex(), "00f067aa0ba902b7");
    }

    #[tokio::test]
    async fn without_a_caller_trace_the_span_logs_the_new_one() {
        let (line, answered) = logged_while_answering(None).await;
        let ours = TraceContext::parse(&answered).unwrap();
        assert_eq!(line["span"]["trace_id"], ours.trace_id_hex(), "{line}");
    }
}
