//! `GET /api/rankings?limit=`: the best-selling products, cacheable like the catalogue and
//! tagged `rankings`.

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use serde::Serialize;

use super::AppState;
use super::products::cache_fields;
use crate::conditional::Preconditions;
use crate::error::ApiError;
use crate::ranking::{self, Limit, Ranked};

/// On every rankings response. Nothing purges it (sales change with every order): it simply
/// expires.
const RANKINGS_TAG: &str = "rankings";
/// Sales move with every order, so the lifetimes of a catalogue listing page: a minute at the
/// edge, half that in browsers, with the same cover for an origin outage.
const CACHE_CONTROL: &str =
    "public, max-age=30, s-maxage=60, stale-while-revalidate=30, stale-if-error=600";
/// For CDNs (RFC 9213); see the products routes for why it is needed beside `s-maxage`.
const CDN_CACHE_CONTROL: &str = "max-age=60, stale-while-revalidate=30, stale-if-error=600";

#[derive(Debug, Serialize)]
struct Rankings {
    limit: u32,
    items: Vec<Ranked>,
}

/// `GET /api/rankings?limit=` (default 10, at most 100), with `ETag` and `304`.
pub async fn list(
    State(state): State<AppState>,
    method: Method,
    preconditions: Preconditions,
    limit: Limit,
) -> Result<Response, ApiError> {
    let items = ranking::top(&state.db, limit).await?;
    let body = Rankings {
        limit: limit.get(),
        items,
    };
    let json = serde_json::to_vec(&body).map_err(|_| ApiError::Internal)?;
    preconditions.read_response(
        &method,
        cache_fields(CACHE_CONTROL, Some(CDN_CACHE_CONTROL), RANKINGS_TAG),
        json,
    )
}
