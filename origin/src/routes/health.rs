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

/// The instance can do real work: the primary answers a round trip. Replicas are reported with
/// their last measurement but do not decide readiness: while none is in rotation, the primary
/// serves the reads.
pub async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.db.ping().await?;
    let replicas: Vec<_> = state
        .reads
        .replicas()
        .iter()
        .map(|replica| {
            json!({
                "name": replica.name,
                "in_rotation": replica.in_rotation,
                "lag_bytes": replica.lag_bytes,
                "problem": replica.problem,
            })
        })
        .collect();
    let body = json!({
        "status": "ready",
        "database": state.db.backend(),
        "replicas": replicas,
    });
    Ok(([NO_STORE], Json(body)))
}
