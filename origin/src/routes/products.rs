//! The catalogue: `GET /api/products` (paged), `GET /api/products/{id}`, and the admin's
//! `PUT /api/products/{id}`.
//!
//! Reads carry what a shared cache (the edge) needs: `Cache-Control`, a strong `ETag` to
//! revalidate with (see [`crate::conditional`]), and a `Cache-Tag` for every product shown, so
//! that the purge after a write drops exactly the responses that showed the product. A write
//! names those tags in its own `Cache-Tag`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use breakwater_core::{headers, purge};
use serde::Serialize;

use super::AppState;
use crate::admin::Admin;
use crate::conditional::{ETag, Precondition, Preconditions};
use crate::db::Db;
use crate::error::ApiError;
use crate::pagination::Pagination;
use crate::product::{self, Product, ProductId};
use crate::product_patch::{ProductPatch, ProductPatchBody};
use crate::replica::{self, Consistency};

/// Cache tags, written by [`purge::format_tags`] for the edge's [`purge::parse_tags`]. On a read:
/// the tags the response is stored under. On a successful write: the tags the edge must purge
/// because of it.
const CACHE_TAG: HeaderName = HeaderName::from_static(headers::CACHE_TAG);
/// On every listing page, so that one purge can drop them all.
const PRODUCTS_TAG: &str = "products";

/// A product: the edge keeps it 5 minutes, because a write purges it by tag the moment it
/// changes; browsers, which no purge reaches, keep it 1 minute. Past that, the edge may answer
/// from the stale copy for 60 s while it revalidates, and for 10 minutes while the origin fails.
const ITEM_CACHE_CONTROL: &str =
    "public, max-age=60, s-maxage=300, stale-while-revalidate=60, stale-if-error=600";
/// A listing page: half the product's lifetimes, because a page also goes stale without any
/// product on it being written (products added or removed shift the pages and change `total`),
/// which no product tag announces. Same 10-minute cover for an origin outage.
const LIST_CACHE_CONTROL: &str =
    "public, max-age=30, s-maxage=60, stale-while-revalidate=30, stale-if-error=600";
/// The same lifetimes for CDNs (RFC 9213), which take this field over `Cache-Control`. Without
/// it, `s-maxage` would forbid the edge any stale serving: RFC 9111 §5.2.2.10 gives `s-maxage`
/// the semantics of `proxy-revalidate`, which outranks `stale-while-revalidate`.
const ITEM_CDN_CACHE_CONTROL: &str = "max-age=300, stale-while-revalidate=60, stale-if-error=600";
const LIST_CDN_CACHE_CONTROL: &str = "max-age=60, stale-while-revalidate=30, stale-if-error=600";
const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");
/// A write's answer describes one moment: no cache may keep or replay it.
const WRITE_CACHE_CONTROL: &str = "no-store";
/// Compare-and-swap attempts an update makes before answering 409. Losing one means another write
/// landed in between; in a rarely written catalogue, losing three in a row means a hot row, and
/// the client is better placed to decide what to do than a loop here.
const WRITE_ATTEMPTS: usize = 3;

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
    Consistency(token): Consistency,
    method: Method,
    preconditions: Preconditions,
    pagination: Pagination,
) -> Result<Response, ApiError> {
    let route = state.reads.route_shared(token).await;
    let total = product::count(&route.db).await?;
    let items = product::page(
        &route.db,
        i64::from(pagination.per_page()),
        pagination.offset(),
    )
    .await?;
    let tags = purge::format_tags(
        std::iter::once(PRODUCTS_TAG.to_owned()).chain(items.iter().map(|p| product_tag(p.id))),
    );
    let body = ProductPage {
        page: pagination.page(),
        per_page: pagination.per_page(),
        total,
        total_pages: pagination.total_pages(total),
        items,
    };
    let response = preconditions.read_response(
        &method,
        cache_fields(LIST_CACHE_CONTROL, Some(LIST_CDN_CACHE_CONTROL), &tags),
        to_json(&body)?,
    )?;
    Ok(route.mark(response))
}

/// `GET /api/products/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Consistency(token): Consistency,
    method: Method,
    preconditions: Preconditions,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = product_id(path)?;
    let route = state.reads.route_shared(token).await;
    let product = find(&route.db, id).await?;
    let response = preconditions.read_response(
        &method,
        cache_fields(
            ITEM_CACHE_CONTROL,
            Some(ITEM_CDN_CACHE_CONTROL),
            &product_tag(id.get()),
        ),
        to_json(&product)?,
    )?;
    Ok(route.mark(response))
}

/// `PUT /api/products/{id}` (admin): a partial update, `If-Match` honoured. Answers the updated
/// product with its new `ETag`, uncacheable, and a `Cache-Tag` naming what the edge must purge.
///
/// Checked in this order: token, id, body, existence, preconditions. The precondition is checked
/// against the row the compare-and-swap then replaces, so no write that lands in between is lost.
pub async fn update(
    _admin: Admin,
    State(state): State<AppState>,
    preconditions: Preconditions,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ProductPatchBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = product_id(path)?;
    let Json(body) = body.map_err(ApiError::from_json_rejection)?;
    let patch = ProductPatch::parse(body)?;
    for _ in 0..WRITE_ATTEMPTS {
        let current = find(&state.db, id).await?;
        let etag = ETag::of(&to_json(&current)?);
        match preconditions.evaluate(&Method::PUT, &etag) {
            Precondition::Proceed => {}
            Precondition::NotModified | Precondition::Failed => {
                return Err(ApiError::PreconditionFailed);
            }
        }
        let updated = patch.apply(current.clone());
        if product::replace(&state.db, &current, &updated).await? {
            tracing::info!(product = id.get(), "product updated");
            let json = to_json(&updated)?;
            let mut fields = cache_fields(
                WRITE_CACHE_CONTROL,
                None,
                &purge::format_tags([product_tag(id.get()).as_str(), PRODUCTS_TAG]),
            );
            fields.insert(header::ETAG, ETag::of(&json).to_header_value());
            fields.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let position = replica::write_position(&state.db).await;
            if let Some(lsn) = position {
                state.reads.note_shared_write(lsn);
            }
            return Ok(replica::with_token(
                (fields, json).into_response(),
                position,
            ));
        }
    }
    Err(ApiError::WriteConflict)
}

/// The `{id}` path segment, parsed.
pub(super) fn product_id(path: Result<Path<String>, PathRejection>) -> Result<ProductId, ApiError> {
    ProductId::parse(&super::path_segment("id", path)?)
}

async fn find(db: &Db, id: ProductId) -> Result<Product, ApiError> {
    product::by_id(db, id)
        .await?
        .ok_or(ApiError::ProductNotFound(id.get()))
}

/// The cache tag of one product.
fn product_tag(id: i64) -> String {
    format!("product:{id}")
}

/// `Cache-Control`, `CDN-Cache-Control` if given, and the cache tags.
pub(super) fn cache_fields(
    cache_control: &'static str,
    cdn: Option<&'static str>,
    tags: &str,
) -> HeaderMap {
    let mut fields = HeaderMap::new();
    fields.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Some(cdn) = cdn {
        fields.insert(CDN_CACHE_CONTROL, HeaderValue::from_static(cdn));
    }
    fields.insert(
        CACHE_TAG,
        HeaderValue::from_str(tags).expect("tags are ASCII words, digits and separators"),
    );
    fields
}

/// The exact bytes sent, which the ETag is computed from.
fn to_json(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|_| ApiError::Internal)
}
