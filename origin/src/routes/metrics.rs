//! `GET /metrics`: the origin's Prometheus metrics (see [`crate::metrics`]). Outside `/api/`, so
//! the edge never forwards it: scrape the origin directly, from inside its network.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::metrics;

/// Every metric in the Prometheus text format. Scraped gauges are computed now, so this may run
/// queries (bounded by [`metrics::scrape::HOOK_TIMEOUT`]); a value that cannot be had is left out.
pub async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.metrics.render().await.map_err(|error| {
        tracing::error!(%error, "cannot encode the metrics");
        ApiError::Internal
    })?;
    let headers = [
        (header::CONTENT_TYPE, metrics::CONTENT_TYPE),
        // Each scrape describes one moment of one instance.
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, text).into_response())
}
