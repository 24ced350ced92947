//! The public catalogue: `GET /api/products` (paged) and `GET /api/products/{id}`.

use axum::Json;
use axum::extract::{Path, State, rejection::PathRejection};
use axum::http::header::{self, HeaderName};
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;
use crate::pagination::Pagination;
use crate::product::{self, Product, ProductId};

/// The header the edge reads to know which purges invalidate this response.
const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");
/// Listings change whenever any product does, so they are kept briefly and refreshed in the
/// background.
const LIST_CACHE_CONTROL: &str = "public, max-age=60, stale-while-revalidate=30";
/// A single product is purged by its tag on change, so it can live longer.
const ITEM_CACHE_CONTROL: &str = "public, max-age=300";

/// One page of the catalogue.
#[derive(Debug, Serialize)]
pub struct ProductPage {
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
    pub total_pages: i64,
    pub items: Vec<Product>,
}

/// `GET /api/products?page=&per_page=`. A page past the end is an empty page, not an error, so
/// a client that raced a shrinking catalogue still gets `total` to recover with.
pub async fn list(
    State(state): State<AppState>,
    pagination: Pagination,
) -> Result<impl IntoResponse, ApiError> {
    let total = product::count(&state.db).await?;
    let items = product::page(
        &state.db,
        i64::from(pagination.per_page()),
        pagination.offset(),
    )
    .await?;
    let body = ProductPage {
        page: pagination.page(),
        per_page: pagination.per_page(),
        total,
        total_pages: pagination.total_pages(total),
        items,
    };
    Ok((
        [
            (header::CACHE_CONTROL, LIST_CACHE_CONTROL.to_owned()),
            (CACHE_TAG, "products".to_owned()),
        ],
        Json(body),
    ))
}

/// `GET /api/products/{id}`.
pub async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(raw) = path.map_err(|rejection| ApiError::InvalidPath {
        parameter: "id",
        reason: rejection.body_text(),
    })?;
    let id = ProductId::parse(&raw)?;
    let product = product::by_id(&state.db, id)
        .await?
        .ok_or(ApiError::ProductNotFound(id.get()))?;
    Ok((
        [
            (header::CACHE_CONTROL, ITEM_CACHE_CONTROL.to_owned()),
            (CACHE_TAG, format!("product:{}", id.get())),
        ],
        Json(product),
    ))
}
