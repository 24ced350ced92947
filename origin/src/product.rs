//! The product of the public catalogue, its id, and the queries that read and write it.

use serde::{Deserialize, Serialize};

use crate::db::{Db, on_pool};
use crate::error::ApiError;

/// One catalogue entry, as stored and as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i64,
}

/// A product id taken from a URL: a positive integer, so a query is only ever run for a value
/// that could exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProductId(i64);

impl ProductId {
    /// Parses the `{id}` path segment.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        crate::error::positive_id(raw).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The columns of a [`Product`], in its field order; a macro so that the query texts below can
/// be `const`s built with `concat!`.
macro_rules! columns {
    () => {
        "id, sku, name, description, category, price_cents, currency, stock"
    };
}

/// How many products there are (the `total` of a listing page).
pub const COUNT: &str = "SELECT COUNT(*) FROM products";
/// One listing page: bind the page size and the rows to skip.
pub const PAGE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM products ORDER BY id LIMIT $1 OFFSET $2"
);
/// One product: bind its id.
pub const BY_ID: &str = concat!("SELECT ", columns!(), " FROM products WHERE id = $1");

/// How many products the catalogue holds.
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar::<_, i64>(COUNT).fetch_one(pool).await)
}

/// Up to `limit` products in id order, skipping the first `offset`.
pub async fn page(db: &Db, limit: i64, offset: i64) -> Result<Vec<Product>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as::<_, Product>(PAGE)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
    })
}

/// The product with this id, if there is one.
pub async fn by_id(db: &Db, id: ProductId) -> Result<Option<Product>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as::<_, Product>(BY_ID)
            .bind(id.get())
            .fetch_optional(pool)
            .await
    })
}

/// Writes `updated` over its row only if the row still holds exactly `current`, and says whether
/// it did. An optimistic compare-and-swap in one statement (both backends, no row locks): a write
/// that landed between reading `current` and this call is never overwritten, so a precondition
/// checked against `current` (its ETag) still holds when the row changes.
pub async fn replace(db: &Db, current: &Product, updated: &Product) -> Result<bool, sqlx::Error> {
    debug_assert_eq!(current.id, updated.id, "replace keeps the id");
    let sql = "UPDATE products \
         SET sku = $2, name = $3, description = $4, category = $5, price_cents = $6, \
             currency = $7, stock = $8 \
         WHERE id = $1 AND sku = $9 AND name = $10 AND description = $11 AND category = $12 \
           AND price_cents = $13 AND currency = $14 AND stock = $15";
    let rows = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(current.id)
            .bind(&updated.sku)
            .bind(&updated.name)
            .bind(&updated.description)
            .bind(&updated.category)
            .bind(updated.price_cents)
            .bind(&updated.currency)
            .bind(updated.stock)
            .bind(&current.sku)
            .bind(&current.name)
            .bind(&current.description)
            .bind(&current.category)
            .bind(current.price_cents)
            .bind(&current.currency)
            .bind(current.stock)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(rows == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_integers_are_ids() {
        assert_eq!(ProductId::parse("42").unwrap().get(), 42);
        for bad in ["0", "-1", "abc", "", "1.0", " 1", "99999999999999999999"] {
            assert!(ProductId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
