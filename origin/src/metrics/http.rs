//! Requests, errors and duration per route (RED), recorded by a middleware around the whole
//! router.
//!
//! Series are keyed by the matched route *template* (`/api/products/{id}`), never the raw path:
//! one series per template keeps the number of series bounded whatever clients send. Requests
//! that match no route share `route="unmatched"`, and methods outside the standard set share
//! `method="other"`, for the same reason.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::Metrics;

/// The `route` of a request no route matched (the 404 fallback).
pub const UNMATCHED: &str = "unmatched";
/// The `method` of a request with a non-standard method.
pub const OTHER_METHOD: &str = "other";
/// Request durations in seconds, 1 ms to 10 s (the request timeout): a cache-friendly read takes
/// a few milliseconds, a write tens, and anything near the top is about to time out.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// RFC 9110's methods plus PATCH; anything else is [`OTHER_METHOD`].
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

/// The request counter and duration histogram.
pub(super) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by matched route template (`unmatched` when none matched), \
             method and status code; the 5xx ones are the errors",
            requests.clone(),
        );
        let duration: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to sending its response head, by matched route \
             template and method",
            Unit::Seconds,
            duration.clone(),
        );
        Self { requests, duration }
    }

    pub(super) fn record(&self, route: &str, method: &str, status: StatusCode, took: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method,
                status: status.as_u16(),
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method,
            })
            .observe(took.as_secs_f64());
    }
}

/// Middleware: records every request with the status it finally leaves with. Added with
/// `Router::layer`, it runs after routing, so the matched route is known.
pub async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method().as_str());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.record_request(&route, method, response.status(), started.elapsed());
    response
}

fn method_label(method: &str) -> &'static str {
    METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or(OTHER_METHOD)
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::metrics::sorted_lines;

    async fn send(app: &Router, method: &str, uri: &str) -> StatusCode {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn requests_are_counted_by_template_method_and_status() {
        let metrics = Metrics::new();
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .route("/boom", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                record,
            ));
        for uri in ["/items/1", "/items/2", "/boom", "/nope/1", "/nope/2"] {
            send(&app, "GET", uri).await;
        }
        assert_eq!(send(&app, "BREW", "/items/3").await, 405);

        let text = metrics.render().await.unwrap();
        assert_eq!(
            sorted_lines(&text, "breakwater_origin_http_requests_total"),
            [
                "breakwater_origin_http_requests_total{route=\"/boom\",method=\"GET\",status=\"503\"} 1",
                "breakwater_origin_http_requests_total{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 2",
                "breakwater_origin_http_requests_total{route=\"/items/{id}\",method=\"other\",status=\"405\"} 1",
                "breakwater_origin_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2",
            ]
        );
        assert!(
            sorted_lines(
                &text,
                "# TYPE breakwater_origin_http_request_duration_seconds histogram"
            )
            .len()
                == 1,
            "{text}"
        );
        assert!(
            text.lines().any(|l| l
                == "breakwater_origin_http_request_duration_seconds_count{route=\"/items/{id}\",method=\"GET\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("/items/1") && !text.contains("/nope"),
            "{text}"
        );
    }

    #[test]
    fn buckets_rise_from_a_millisecond_to_the_request_timeout() {
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(DURATION_BUCKETS[0], 0.001);
        assert_eq!(
            DURATION_BUCKETS.last().copied(),
            Some(crate::routes::REQUEST_TIMEOUT.as_secs_f64())
        );
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("get"), OTHER_METHOD);
        assert_eq!(method_label("PROPFIND"), OTHER_METHOD);
    }
}
