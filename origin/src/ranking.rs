//! The rankings: products by units sold, as the analytics consumer counts them (table
//! `product_sales`), and the `?limit=` that bounds one read.

use std::num::NonZeroU32;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;

use crate::db::{Db, on_pool};
use crate::error::ApiError;

/// Products ranked when the client does not say.
pub const DEFAULT_LIMIT: u32 = 10;
/// Most products one request may ask for.
pub const MAX_LIMIT: u32 = 100;

/// One ranked product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    /// 1 for the best seller.
    pub rank: i64,
    /// The product's id.
    pub id: i64,
    pub name: String,
    /// Units sold.
    pub units: i64,
    /// Orders that included the product.
    pub orders: i64,
}

/// `?limit=`, in `1..=MAX_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(NonZeroU32);

impl Default for Limit {
    fn default() -> Self {
        Self(NonZeroU32::new(DEFAULT_LIMIT).unwrap_or(NonZeroU32::MIN))
    }
}

impl Limit {
    /// Parses a raw query string. Other parameters are ignored (cache busters); `limit` empty,
    /// malformed, out of range or repeated is an error naming it.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut limit = None;
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if name != "limit" {
                continue;
            }
            let invalid = |reason: String| ApiError::InvalidQuery {
                parameter: "limit",
                reason,
            };
            if limit.is_some() {
                return Err(invalid("is given more than once".to_owned()));
            }
            let parsed = value
                .parse::<NonZeroU32>()
                .ok()
                .filter(|n| n.get() <= MAX_LIMIT)
                .ok_or_else(|| invalid(format!("must be an integer from 1 to {MAX_LIMIT}")))?;
            limit = Some(Self(parsed));
        }
        Ok(limit.unwrap_or_default())
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Limit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query())
    }
}

/// The `limit` best sellers: most units first, ties by product id, products still in the
/// catalogue only. The ranking index yields them in order.
pub async fn top(db: &Db, limit: Limit) -> Result<Vec<Ranked>, sqlx::Error> {
    let sql = "SELECT s.product_id, p.name, s.units, s.orders \
         FROM product_sales s JOIN products p ON p.id = s.product_id \
         ORDER BY s.units DESC, s.product_id LIMIT $1";
    let rows: Vec<(i64, String, i64, i64)> = on_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(i64::from(limit.get()))
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .zip(1..)
        .map(|((id, name, units, orders), rank)| Ranked {
            rank,
            id,
            name,
            units,
            orders,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_bounds_and_errors() {
        assert_eq!(Limit::from_query(None).unwrap().get(), DEFAULT_LIMIT);
        assert_eq!(Limit::from_query(Some("x=1")).unwrap().get(), DEFAULT_LIMIT);
        assert_eq!(Limit::from_query(Some("limit=1")).unwrap().get(), 1);
        assert_eq!(Limit::from_query(Some("limit=100")).unwrap().get(), 100);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=",
            "limit=-1",
            "limit=ten",
            "limit=1&limit=2",
        ] {
            match Limit::from_query(Some(bad)) {
                Err(ApiError::InvalidQuery { parameter, .. }) => assert_eq!(parameter, "limit"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
