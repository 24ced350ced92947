//! The caller's cart, for a signed-in user only: `GET /api/cart`,
//! `PUT /api/cart/items/{product_id}` and `DELETE /api/cart/items/{product_id}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Json, Router};

use super::AppState;
use crate::auth::AuthenticatedUser;
use crate::cart::{self, Cart, Quantity, QuantityBody};
use crate::error::ApiError;
use crate::overload::OverloadLayer;
use crate::product::ProductId;

/// A cart is its user's alone, and changes with every edit: no cache keeps any answer, errors
/// included.
const CACHE_CONTROL: &str = "private, no-store";

/// The routes of this module, every answer marked [`CACHE_CONTROL`] (a shed one too), behind
/// `writes`, the write bulkhead's overload limiter: carts are read and written on the write
/// pool.
pub fn router(writes: OverloadLayer) -> Router<AppState> {
    Router::new()
        .route("/api/cart", get(show))
        .route(
            "/api/cart/items/{product_id}",
            put(set_item).delete(remove_item),
        )
        .route_layer(writes)
        .layer(axum::middleware::map_response(private_no_store))
}

async fn private_no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

/// `GET /api/cart`: the lines at current prices, and their total.
pub async fn show(
    user: AuthenticatedUser,
    State(state): State<AppState>,
) -> Result<Json<Cart>, ApiError> {
    Ok(Json(cart::load(&state.db, user.user_id).await?))
}

/// `PUT /api/cart/items/{product_id}` `{"quantity": 1..=100}`: sets the line and answers the
/// whole cart; `404` for a product that does not exist.
pub async fn set_item(
    user: AuthenticatedUser,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<QuantityBody>, JsonRejection>,
) -> Result<Json<Cart>, ApiError> {
    let product = product_id(path)?;
    let Json(body) = body.map_err(ApiError::from_json_rejection)?;
    let quantity = Quantity::parse(body)?;
    if !cart::set(&state.db, user.user_id, product, quantity).await? {
        return Err(ApiError::ProductNotFound(product.get()));
    }
    Ok(Json(cart::load(&state.db, user.user_id).await?))
}

/// `DELETE /api/cart/items/{product_id}`: `204`, whether or not the line was there.
pub async fn remove_item(
    user: AuthenticatedUser,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let product = product_id(path)?;
    cart::remove(&state.db, user.user_id, product).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `{product_id}` path segment, parsed.
fn product_id(path: Result<Path<String>, PathRejection>) -> Result<ProductId, ApiError> {
    ProductId::parse(&super::path_segment("product_id", path)?)
}
