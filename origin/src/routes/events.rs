//! Views and votes: `POST /internal/events/batch`, where the edge's queue consumer delivers the
//! events it answered `202` for, and the synchronous twins `POST /api/products/{id}/views` and
//! `POST /api/products/{id}/votes`, which apply one event at once (the benchmark's baseline for
//! write-behind, and what a deployment without the queue would call).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use breakwater_core::writebehind::{BatchRequest, Event, EventId, EventKind, ProductId};
use serde::Deserialize;

use super::AppState;
use crate::admin::Admin;
use crate::clock;
use crate::error::ApiError;
use crate::events::{self, store};

/// `POST /internal/events/batch` (admin token): applies the batch in one transaction and
/// answers what each event did. Only the edge calls it. A body core's [`BatchRequest`] refuses is
/// a `422` whose detail names the offending field (`events[3].id: ...`).
pub async fn batch(
    _admin: Admin,
    State(state): State<AppState>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(batch) = body.map_err(ApiError::from_json_rejection)?;
    let outcome = store::apply(&state.db, &batch, clock::unix_ms()).await?;
    if !outcome.rejected.is_empty() {
        tracing::warn!(
            batch = %outcome.batch_id,
            rejected = outcome.rejected.len(),
            "events rejected"
        );
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(outcome)).into_response())
}

/// The body of a synchronous vote.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    pub value: i64,
}

/// `POST /api/products/{id}/views`: counts one view now (`204`).
pub async fn view(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    apply_one(&state, path, EventKind::View, 1).await
}

/// `POST /api/products/{id}/votes` with `{"value": 1}` or `{"value": -1}`: counts one vote now
/// (`204`).
pub async fn vote(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<VoteBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json_rejection)?;
    apply_one(&state, path, EventKind::Vote, body.value).await
}

async fn apply_one(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    kind: EventKind,
    value: i64,
) -> Result<Response, ApiError> {
    let product = super::products::product_id(path)?.get();
    if !kind.allows(value) {
        return Err(ApiError::InvalidField {
            field: "value".into(),
            reason: "must be 1 or -1".to_owned(),
        });
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|_| ApiError::Internal)?;
    let now = clock::unix_ms();
    // The product id is positive and the value suits the kind (both checked above), and the
    // clock never goes below zero, so the event is valid and is a batch of its own.
    let batch = ProductId::new(product)
        .and_then(|product| {
            let at = u64::try_from(now).map_err(|e| e.to_string())?;
            Event::new(EventId::random(random), kind, product, value, at)
        })
        .and_then(events::single)
        .map_err(|_| ApiError::Internal)?;
    let outcome = store::apply(&state.db, &batch, now).await?;
    if !outcome.rejected.is_empty() {
        return Err(ApiError::ProductNotFound(product));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
