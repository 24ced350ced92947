//! The router: one module per resource, and the layers every request passes through.
//!
//! Each API route names the request bulkhead whose pool its handler uses, and passes that
//! bulkhead's overload limiter ([`crate::overload`]): `read(..)` for the read pools, `write(..)`
//! for the write pool. The limiter sits inside the outer layers, so a shed request is timed,
//! counted and given its request id like any other answer. Probes, `/metrics`, the public keys
//! and admin writes name none: they are never shed.

mod auth;
mod cart;
mod events;
mod health;
mod metrics;
mod orders;
mod products;
mod rankings;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post, put};
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::admin::AdminToken;
use crate::auth::Auth;
use crate::db::Db;
use crate::edge::{self, EdgeKeys};
use crate::error::ApiError;
use crate::metrics::{Metrics, http as http_metrics};
use crate::outbox::Wakeup;
use crate::overload::RequestBulkheads;
use crate::replica::Reads;
use crate::{problem_layer, request_id, telemetry, trace_context};

/// Longest a request may take end to end; below the edge's own origin timeout, so the edge sees
/// our 504 problem rather than a dropped connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body accepted: a product update is well under 8 KiB; this bounds what a client
/// can make us buffer.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The write bulkhead's pool, on the primary.
    pub db: Db,
    /// Where reads go (see [`crate::replica`]).
    pub reads: Reads,
    /// `None` when admin writes are disabled.
    pub admin_token: Option<AdminToken>,
    /// Signalled after an order commits, so an outbox worker delivers it at once.
    pub outbox_wakeup: Wakeup,
    /// This server's own registry (see [`crate::metrics`]).
    pub metrics: Metrics,
    /// Users' access and refresh tokens and password hashing.
    pub auth: Arc<Auth>,
    /// The keys the edge signs with; none configured, nothing is checked (see [`crate::edge`]).
    pub edge_keys: EdgeKeys,
}

/// The whole HTTP surface of the origin, each API route behind its bulkhead's limiter.
pub fn router(state: AppState, bulkheads: &RequestBulkheads) -> Router {
    // Outermost first: the request id exists before the span is opened, and the problem layer
    // sits outside timeout, panic and body limit so their bare responses become problems too.
    // Two `layer` calls, because axum turns each response back into its own `Response` in
    // between, which `from_fn` needs.
    let outer = ServiceBuilder::new()
        .map_request(request_id::drop_unsafe_incoming)
        .layer(SetRequestIdLayer::x_request_id(request_id::MintRequestId))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                ),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(axum::middleware::from_fn(problem_layer::render));
    let inner = ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let metrics = state.metrics.clone();
    let edge_keys = state.edge_keys.clone();
    let read = |route: MethodRouter<AppState>| route.route_layer(bulkheads.reads.clone());
    let write = |route: MethodRouter<AppState>| route.route_layer(bulkheads.writes.clone());

    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route("/api/products", read(get(products::list)))
        // `PUT` is an admin write: never shed.
        .route(
            "/api/products/{id}",
            read(get(products::show)).merge(put(products::update)),
        )
        .route(
            "/api/orders",
            read(get(orders::list)).merge(write(post(orders::create))),
        )
        .route("/api/orders/{id}", read(get(orders::show)))
        .route("/api/products/{id}/views", write(post(events::view)))
        .route("/api/products/{id}/votes", write(post(events::vote)))
        .route("/internal/events/batch", write(post(events::batch)))
        .route("/api/rankings", read(get(rankings::list)))
        .merge(auth::router(bulkheads.writes.clone()))
        .merge(cart::router(bulkheads.writes.clone()))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        // Inside the body limit and the timeout, outside the routes: the principal a handler
        // reads is the one the edge signed.
        .layer(axum::middleware::from_fn_with_state(
            edge_keys,
            edge::verify,
        ))
        .layer(inner)
        .layer(outer)
        // Outside the request span, so the span can log the trace id this hop settles on.
        .layer(axum::middleware::from_fn(trace_context::continue_trace))
        // Outermost: it counts the status that finally leaves, after the problem layer, and times
        // everything. `Router::layer` runs after routing, so the matched route is known.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            http_metrics::record,
        ))
}

/// The raw text of the path segment `parameter` (`{id}`), or a `400` naming it.
fn path_segment(
    parameter: &'static str,
    path: Result<Path<String>, PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(raw)| raw)
        .map_err(|rejection| ApiError::InvalidPath {
            parameter,
            reason: rejection.body_text(),
        })
}
