//! Claiming due outbox rows and settling them once delivered or failed.
//!
//! A claim is one statement: it picks the rows that are neither delivered nor dead and whose
//! `available_at` has come, oldest first, and leases them by pushing `available_at` to the end of
//! the lease, counting the attempt as it does. No other claim takes a leased row, and a worker
//! that dies simply lets its lease run out, after which the rows are due again. On Postgres the
//! scan locks the rows it picks with `FOR UPDATE SKIP LOCKED`, so concurrent claimers skip each
//! other's rows instead of waiting or double-claiming; SQLite runs one writer at a time, which
//! serialises claims by itself.
//!
//! The attempt count doubles as a fencing token: settling a row requires the count the claim
//! returned, so a worker whose lease ran out (and whose row was claimed again) cannot overwrite
//! what the newer claim decides.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::db::{Db, on_pool};

/// A claimed outbox row: one message for one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The outbox row.
    pub id: i64,
    pub order_id: i64,
    /// As stored; [`crate::order::outbox::Topic::parse`] reads it.
    pub topic: String,
    /// The JSON payload, as text.
    pub payload: String,
    /// Which attempt this claim is (1 for the first); also the row's fencing token.
    pub attempt: u32,
}

/// The scan both backends share; `{lock}` is where Postgres adds its row locks. `$1` is now.
fn claim_sql(db: &Db) -> String {
    let (materialized, lock) = match db {
        // MATERIALIZED: the locked batch is computed exactly once, never re-run per outer row.
        Db::Postgres(_) => ("MATERIALIZED ", " FOR UPDATE SKIP LOCKED"),
        Db::Sqlite(_) => ("", ""),
    };
    format!(
        "WITH due AS {materialized}(\
             SELECT id FROM outbox \
             WHERE delivered_at IS NULL AND dead_at IS NULL AND available_at <= $1 \
             ORDER BY available_at, id \
             LIMIT $3{lock}) \
         UPDATE outbox SET attempts = attempts + 1, claimed_at = $1, available_at = $2 \
         WHERE id IN (SELECT id FROM due) \
         RETURNING id, order_id, topic, CAST(payload AS TEXT), attempts"
    )
}

/// Leases up to `limit` rows due at `now_ms` until `now_ms + lease`, and returns them oldest
/// first.
pub async fn claim(
    db: &Db,
    now_ms: i64,
    lease: Duration,
    limit: NonZeroU32,
) -> Result<Vec<Message>, sqlx::Error> {
    let sql = claim_sql(db);
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let rows: Vec<(i64, i64, String, String, i64)> = on_pool!(db, pool => {
        sqlx::query_as(&sql)
            .bind(now_ms)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(i64::from(limit.get()))
            .fetch_all(pool)
            .await?
    });
    let mut messages: Vec<Message> = rows
        .into_iter()
        .map(|(id, order_id, topic, payload, attempts)| Message {
            id,
            order_id,
            topic,
            payload,
            attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
        })
        .collect();
    // RETURNING promises no order.
    messages.sort_by_key(|message| message.id);
    Ok(messages)
}

/// The row matched by a settle: still this claim's, and neither delivered nor dead.
pub(crate) const FENCE: &str =
    "id = $1 AND attempts = $2 AND delivered_at IS NULL AND dead_at IS NULL";

/// Marks `message` delivered at `now_ms`. False when the claim was superseded (its lease ran out
/// and the row was claimed again): the newer claim settles it, and the consumer, being
/// idempotent, applies it at most once either way.
pub async fn mark_delivered(db: &Db, message: &Message, now_ms: i64) -> Result<bool, sqlx::Error> {
    let sql = format!("UPDATE outbox SET delivered_at = $3, last_error = NULL WHERE {FENCE}");
    let rows = on_pool!(db, pool => {
        sqlx::query(&sql)
            .bind(message.id)
            .bind(i64::from(message.attempt))
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(rows == 1)
}

/// Records why `message` failed and makes it due again at `available_at`. False when the claim
/// was superseded.
pub async fn schedule_retry(
    db: &Db,
    message: &Message,
    error: &str,
    available_at: i64,
) -> Result<bool, sqlx::Error> {
    let sql = format!("UPDATE outbox SET available_at = $3, last_error = $4 WHERE {FENCE}");
    let rows = on_pool!(db, pool => {
        sqlx::query(&sql)
            .bind(message.id)
            .bind(i64::from(message.attempt))
            .bind(available_at)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(rows == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim's scan is served by the partial index, in the claim's order (no sort step), so
    /// it reads only due rows however many delivered ones accumulate.
    #[tokio::test]
    async fn the_claim_scan_walks_the_pending_index_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.sqlite").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(pool) = &db else {
            unreachable!("a sqlite URL")
        };
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT id FROM outbox \
             WHERE delivered_at IS NULL AND dead_at IS NULL AND available_at <= 5 \
             ORDER BY available_at, id LIMIT 16",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let steps: Vec<_> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            steps.iter().any(|step| step.contains("outbox_pending")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.contains("TEMP B-TREE")),
            "{steps:?}"
        );
        db.close().await;
    }
}
