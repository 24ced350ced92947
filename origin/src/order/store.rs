//! Placing an order in one transaction, and reading one back for its principal.
//!
//! [`place`] prices the lines, then writes the order, its items, one outbox row per consumer and
//! the answer the key replays, and commits them together: either all exist or none does. The
//! order's UNIQUE (principal, idempotency_key) decides a race between duplicates: the loser's
//! insert waits for the winner (on the unique index in Postgres, on the write lock in SQLite),
//! then fails, and [`Placement::KeyTaken`] tells the caller to replay the winner's answer.

use std::collections::HashMap;

use breakwater_core::idempotency::{Fingerprint, IdempotencyKey};
use sqlx::types::Json;
use sqlx::{Database, Pool, QueryBuilder};

use super::outbox::Topic;
use super::request::{OrderRequest, Price};
use super::{Order, OrderId, OrderLine, rfc3339};
use crate::db::{Db, on_pool};
use crate::error::ApiError;
use crate::idempotency::{self, StoredResponse};
use crate::principal::Principal;

/// An order to place: who, under which key, for which request, and when.
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    pub principal: &'a Principal,
    pub key: &'a IdempotencyKey,
    pub fingerprint: &'a Fingerprint,
    pub request: &'a OrderRequest,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// What [`place`] did.
#[derive(Debug)]
pub enum Placement {
    /// The order was committed with this answer, which the key now replays.
    Created(StoredResponse),
    /// Another request committed under this (principal, key) first; nothing was written. Its
    /// stored answer decides what this request gets.
    KeyTaken,
}

const INSERT_ORDER: &str = "INSERT INTO orders \
     (principal, idempotency_key, request_fingerprint, total_cents, currency, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

/// Places `new` and stores `respond(order)` as the key's answer, in one transaction. A product
/// that does not exist (or any other refusal) rolls everything back.
pub async fn place(
    db: &Db,
    new: NewOrder<'_>,
    respond: impl FnOnce(&Order) -> Result<StoredResponse, ApiError>,
) -> Result<Placement, ApiError> {
    let begin = db.begin_write();
    on_pool!(db, pool => {
        // Every early return drops `tx`, which rolls it back.
        let mut tx = pool.begin_with(begin).await?;

        let mut prices = builder(
            pool,
            "SELECT id, price_cents, currency FROM products WHERE id IN (",
        );
        let mut ids = prices.separated(", ");
        for line in new.request.lines() {
            ids.push_bind(line.product_id);
        }
        ids.push_unseparated(")");
        let catalogue: HashMap<i64, Price> = prices
            .build_query_as::<(i64, i64, String)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, cents, currency)| (id, Price { cents, currency }))
            .collect();
        let priced = new.request.price(&catalogue)?;

        let inserted = sqlx::query_scalar::<_, i64>(INSERT_ORDER)
            .bind(new.principal.as_str())
            .bind(new.key.as_str())
            .bind(new.fingerprint.to_string())
            .bind(priced.total_cents)
            .bind(&priced.currency)
            .bind(new.created_at_ms)
            .fetch_one(&mut *tx)
            .await;
        let id = match inserted {
            Ok(id) => id,
            Err(error) if is_unique_violation(&error) => {
                tx.rollback().await?;
                return Ok(Placement::KeyTaken);
            }
            Err(error) => return Err(error.into()),
        };
        let order = priced.into_order(id, new.created_at_ms);

        let mut items = builder(
            pool,
            "INSERT INTO order_items (order_id, line, product_id, quantity, unit_price_cents) ",
        );
        items.push_values(order.items.iter().zip(0_i64..), |mut row, (item, line)| {
            row.push_bind(id)
                .push_bind(line)
                .push_bind(item.product_id)
                .push_bind(item.quantity)
                .push_bind(item.unit_price_cents);
        });
        items.build().execute(&mut *tx).await?;

        let mut outbox = builder(
            pool,
            "INSERT INTO outbox (order_id, topic, payload, created_at, attempts, available_at) ",
        );
        outbox.push_values(Topic::ALL, |mut row, topic| {
            row.push_bind(id)
                .push_bind(topic.as_str())
                .push_bind(Json(topic.payload(&order, new.principal)))
                .push_bind(new.created_at_ms)
                .push_bind(0_i64)
                .push_bind(new.created_at_ms);
        });
        outbox.build().execute(&mut *tx).await?;

        let stored = respond(&order)?;
        sqlx::query(idempotency::INSERT)
            .bind(new.principal.as_str())
            .bind(new.key.as_str())
            .bind(&stored.fingerprint)
            .bind(i64::from(stored.status.as_u16()))
            .bind(&stored.content_type)
            .bind(&stored.location)
            .bind(&stored.body)
            .bind(new.created_at_ms)
            .execute(&mut *tx)
            .await?;

        tx.commit().await?;
        Ok(Placement::Created(stored))
    })
}

/// An order's own row, if the principal placed it; bind the order id, the principal.
pub const ORDER_BY_ID: &str =
    "SELECT total_cents, currency, created_at FROM orders WHERE id = $1 AND principal = $2";
/// An order's items in line order; bind the order id.
pub const ITEMS_OF_ORDER: &str = "SELECT product_id, quantity, unit_price_cents \
     FROM order_items WHERE order_id = $1 ORDER BY line";

/// Order `id` if `principal` placed it. Someone else's order is as absent as one that never
/// existed, so ids reveal nothing across principals.
pub async fn find(
    db: &Db,
    principal: &Principal,
    id: OrderId,
) -> Result<Option<Order>, sqlx::Error> {
    on_pool!(db, pool => {
        let Some((total_cents, currency, created_at_ms)) =
            sqlx::query_as::<_, (i64, String, i64)>(ORDER_BY_ID)
                .bind(id.get())
                .bind(principal.as_str())
                .fetch_optional(pool)
                .await?
        else {
            return Ok(None);
        };
        // Items never change once committed, so reading them outside the order's read is safe.
        let items = sqlx::query_as::<_, (i64, i64, i64)>(ITEMS_OF_ORDER)
            .bind(id.get())
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(product_id, quantity, unit_price_cents)| OrderLine {
                product_id,
                quantity,
                unit_price_cents,
                line_total_cents: unit_price_cents * quantity,
            })
            .collect();
        Ok(Some(Order {
            id: id.get(),
            items,
            total_cents,
            currency,
            created_at: rfc3339(created_at_ms),
        }))
    })
}

/// A query builder for `pool`'s backend (it names the database type the macro arm leaves open).
fn builder<'args, DB: Database>(_pool: &Pool<DB>, sql: &str) -> QueryBuilder<'args, DB> {
    QueryBuilder::new(sql)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.is_unique_violation())
}

/// How many orders carry `idempotency_key`, whoever placed them: what "exactly once" is checked
/// against (by the end-to-end tests and the benchmark's retry storm).
pub async fn count_with_key(db: &Db, idempotency_key: &str) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM orders WHERE idempotency_key = $1";
    on_pool!(db, pool => {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(idempotency_key)
            .fetch_one(pool)
            .await
    })
}
