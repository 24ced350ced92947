//! Structured logging: the subscriber set-up and the span every request runs in.

use axum::http::Request;
use breakwater_core::{headers, trace::TraceContext};
use tracing::Span;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

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
/// the W3C trace id lets these lines be joined with the edge's.
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
    );
    if let Some(trace) = header(headers::TRACEPARENT).and_then(TraceContext::parse) {
        span.record("trace_id", trace.trace_id_hex());
    }
    span
}
