//! `POST /api/orders` (idempotent: see [`crate::idempotency`]), `GET /api/orders` (the caller's
//! orders, newest first) and `GET /api/orders/{id}`, all for the principal the edge names (see
//! [`crate::principal`]).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use breakwater_core::idempotency::{Fingerprint, IdempotencyKey, fingerprint};
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;
use crate::idempotency::{self, StoredResponse};
use crate::json_body::JsonWithBytes;
use crate::order::{self, NewOrder, Order, OrderBody, OrderId, OrderRequest, Placement, history};
use crate::pagination::Pagination;
use crate::principal::Principal;
use crate::replica::{self, Consistency};

/// An order is its buyer's alone: no shared cache may keep it, and the buyer's browser need not.
const READ_CACHE_CONTROL: &str = "private, no-store";

/// `POST /api/orders`: `201` with the order and its `Location`, or the first answer again
/// (`Idempotent-Replayed: true`) when the key already completed this very request.
///
/// Checked in this order: principal (401), key (400), content type and JSON (415, 400, 422),
/// the key's stored answer (replay or 422), the order's rules (422), and then, inside the
/// transaction, the products (422). Both answers carry the consistency token to read the order
/// back with (see [`crate::replica`]).
pub async fn create(
    principal: Principal,
    idempotency::Key(key): idempotency::Key,
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    body: JsonWithBytes<OrderBody>,
) -> Result<Response, ApiError> {
    let response = place_or_replay(&state, &principal, &key, &method, &uri, body).await?;
    let position = replica::write_position(&state.db).await;
    Ok(replica::with_token(response, position))
}

async fn place_or_replay(
    state: &AppState,
    principal: &Principal,
    key: &IdempotencyKey,
    method: &Method,
    uri: &Uri,
    body: JsonWithBytes<OrderBody>,
) -> Result<Response, ApiError> {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let fingerprint = fingerprint(method.as_str(), path_and_query, &body.bytes);
    // A retry is answered from its record before the body is judged again: the answer must not
    // change because a product or a rule changed since the first attempt.
    if let Some(stored) = idempotency::find(&state.db, principal, key).await? {
        return stored.replay_for(&fingerprint);
    }
    let request = OrderRequest::parse(body.value)?;
    let new = NewOrder {
        principal,
        key,
        fingerprint: &fingerprint,
        request: &request,
        created_at_ms: crate::clock::unix_ms(),
    };
    match order::place(&state.db, new, |order| created(order, &fingerprint)).await? {
        Placement::Created(stored) => {
            tracing::info!(order = stored.location.as_deref(), "order placed");
            state.outbox_wakeup.signal();
            Ok(stored.into_response(false))
        }
        // A duplicate committed while this one ran; its answer is committed with it.
        Placement::KeyTaken => match idempotency::find(&state.db, principal, key).await? {
            Some(stored) => stored.replay_for(&fingerprint),
            None => {
                tracing::error!("an idempotency key is taken but has no stored answer");
                Err(ApiError::Internal)
            }
        },
    }
}

/// One page of the caller's orders, newest first; the same shape as a page of products.
#[derive(Debug, Serialize)]
pub struct OrderPage {
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
    pub total_pages: i64,
    pub items: Vec<Order>,
}

/// `GET /api/orders?page=&per_page=`: the caller's orders, newest first (ties in time by id).
/// A page past the end is an empty page, as for products.
pub async fn list(
    principal: Principal,
    State(state): State<AppState>,
    Consistency(token): Consistency,
    pagination: Pagination,
) -> Result<Response, ApiError> {
    let route = state.reads.route(token).await;
    let total = history::count(&route.db, &principal).await?;
    let items = history::page(
        &route.db,
        &principal,
        i64::from(pagination.per_page()),
        pagination.offset(),
    )
    .await?;
    let body = OrderPage {
        page: pagination.page(),
        per_page: pagination.per_page(),
        total,
        total_pages: pagination.total_pages(total),
        items,
    };
    Ok(route.mark(private_json(to_json(&body)?)))
}

/// `GET /api/orders/{id}`: the caller's own order, else `404`.
pub async fn show(
    principal: Principal,
    State(state): State<AppState>,
    Consistency(token): Consistency,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = OrderId::parse(&super::path_segment("id", path)?)?;
    let route = state.reads.route(token).await;
    let order = order::find(&route.db, &principal, id)
        .await?
        .ok_or(ApiError::OrderNotFound(id.get()))?;
    Ok(route.mark(private_json(to_json(&order)?)))
}

/// A read of the caller's own data: JSON that no cache keeps.
fn private_json(body: Vec<u8>) -> Response {
    let headers = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(READ_CACHE_CONTROL),
        ),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
    ];
    (headers, body).into_response()
}

/// The answer to a placed order, which its key replays from then on.
fn created(order: &Order, fingerprint: &Fingerprint) -> Result<StoredResponse, ApiError> {
    Ok(StoredResponse {
        fingerprint: fingerprint.to_string(),
        status: StatusCode::CREATED,
        content_type: "application/json".to_owned(),
        location: Some(format!("/api/orders/{}", order.id)),
        body: to_json(order)?,
    })
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|_| ApiError::Internal)
}
