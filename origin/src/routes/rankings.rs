//! `GET /api/rankings?by=&limit=`: the best products by sales, views or votes, cacheable like the
//! catalogue and tagged `rankings`.

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use serde::Serialize;

use super::AppState;
use super::products::cache_fields;
use crate::conditional::Preconditions;
use crate::error::ApiError;
use crate::ranking::{self, By, Limit, Ranked};

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
    by: &'static str,
    limit: u32,
    items: Vec<Ranked>,
}

/// `GET /api/rankings?by=sales|views|votes&limit=` (default sales and 10, at most 100), with
/// `ETag` and `304`. Read from a replica when there is one: rankings are minutes stale anyway.
pub async fn list(
    State(state): State<AppState>,
    method: Method,
    preconditions: Preconditions,
    by: By,
    limit: Limit,
) -> Result<Response, ApiError> {
    let route = state.reads.route(None).await;
    let items = ranking::top(&route.db, by, limit).await?;
    let body = Rankings {
        by: by.as_str(),
        limit: limit.get(),
        items,
    };
    let json = serde_json::to_vec(&body).map_err(|_| ApiError::Internal)?;
    let response = preconditions.read_response(
        &method,
        cache_fields(CACHE_CONTROL, Some(CDN_CACHE_CONTROL), RANKINGS_TAG),
        json,
    )?;
    Ok(route.mark(response))
}
