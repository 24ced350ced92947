//! Liveness (`/health`) and readiness (`/ready`) probes.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

/// Probes describe this instance at this moment; no cache may keep them.
const NO_STORE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-store");

/// The process is up and serving HTTP. Never touches the database, so a database outage does not
/// get healthy instances restarted.
pub async fn health() -> impl IntoResponse {
    ([NO_STORE], Json(json!({ "status": "ok" })))
}

/// The instance can do real work: the database answers a round trip.
pub async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.db.ping().await?;
    Ok(([NO_STORE], Json(json!({ "status": "ready" }))))
}
