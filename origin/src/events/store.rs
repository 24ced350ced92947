//! Applying a batch of events: one transaction that records the batch, records each new event id,
//! and adds the new events to `product_stats`. An event id recorded before is a duplicate; an
//! event for a product that does not exist is rejected (it can never apply, so the edge
//! dead-letters it) and is not recorded.

use std::collections::{BTreeMap, HashSet};

use breakwater_core::writebehind::{BatchRequest, BatchResponse, Event, EventKind, Rejected};
use sqlx::{Database, Pool, QueryBuilder};

use crate::db::{Db, on_pool};

/// One event as `processed_events` stores it: both backends have signed 64-bit integers only.
struct EventRow<'a> {
    id: &'a str,
    kind: EventKind,
    product_id: i64,
    value: i64,
    /// Unix milliseconds.
    at: i64,
}

impl<'a> From<&'a Event> for EventRow<'a> {
    fn from(event: &'a Event) -> Self {
        Self {
            id: event.id().as_str(),
            kind: event.kind(),
            product_id: event.product_id().get(),
            value: event.value(),
            // `Event::new` keeps `at` within an i64, for this column.
            at: i64::try_from(event.at()).unwrap_or(i64::MAX),
        }
    }
}

/// What a batch adds to one product.
#[derive(Debug, Default, Clone, Copy)]
struct Delta {
    views: i64,
    upvotes: i64,
    downvotes: i64,
}

const RECORD_EVENT: &str = "INSERT INTO processed_events (event_id, batch_id, kind, product_id, value, at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING";
const ADD_STATS: &str = "INSERT INTO product_stats (product_id, views, upvotes, downvotes, score) \
     VALUES ($1, $2, $3, $4, $3 - $4) ON CONFLICT (product_id) DO UPDATE SET \
     views = product_stats.views + excluded.views, \
     upvotes = product_stats.upvotes + excluded.upvotes, \
     downvotes = product_stats.downvotes + excluded.downvotes, \
     score = product_stats.score + excluded.score";
const RECORD_BATCH: &str = "INSERT INTO event_batches (batch_id, first_seen, deliveries, events, applied) \
     VALUES ($1, $2, 1, $3, $4) ON CONFLICT (batch_id) DO UPDATE SET \
     deliveries = event_batches.deliveries + 1, \
     applied = event_batches.applied + excluded.applied";

/// Applies `batch` in one transaction at `now_ms`, and answers what this delivery did.
pub async fn apply(
    db: &Db,
    batch: &BatchRequest,
    now_ms: i64,
) -> Result<BatchResponse, sqlx::Error> {
    let begin = db.begin_write();
    on_pool!(db, pool => {
        let mut tx = pool.begin_with(begin).await?;

        let wanted: HashSet<i64> = batch.events.iter().map(|e| e.product_id().get()).collect();
        let mut query = builder(pool, "SELECT id FROM products WHERE id IN (");
        let mut ids = query.separated(", ");
        for id in &wanted {
            ids.push_bind(*id);
        }
        ids.push_unseparated(")");
        let existing: HashSet<i64> = query
            .build_query_scalar::<i64>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();

        let mut outcome = BatchResponse {
            batch_id: batch.batch_id.clone(),
            applied: 0,
            duplicates: 0,
            rejected: Vec::new(),
        };
        // Ordered, so concurrent batches lock product rows in the same order.
        let mut deltas: BTreeMap<i64, Delta> = BTreeMap::new();
        for event in &batch.events {
            let row = EventRow::from(event);
            if !existing.contains(&row.product_id) {
                outcome.rejected.push(Rejected {
                    id: event.id().clone(),
                    reason: format!("product {} does not exist", row.product_id),
                });
                continue;
            }
            let recorded = sqlx::query(RECORD_EVENT)
                .bind(row.id)
                .bind(batch.batch_id.as_str())
                .bind(row.kind.as_str())
                .bind(row.product_id)
                .bind(row.value)
                .bind(row.at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if recorded == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.applied += 1;
            let delta = deltas.entry(row.product_id).or_default();
            match (row.kind, row.value) {
                (EventKind::View, _) => delta.views += 1,
                (EventKind::Vote, 1) => delta.upvotes += 1,
                (EventKind::Vote, _) => delta.downvotes += 1,
            }
        }
        for (product_id, delta) in deltas {
            sqlx::query(ADD_STATS)
                .bind(product_id)
                .bind(delta.views)
                .bind(delta.upvotes)
                .bind(delta.downvotes)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(RECORD_BATCH)
            .bind(batch.batch_id.as_str())
            .bind(now_ms)
            .bind(i64::try_from(batch.events.len()).unwrap_or(i64::MAX))
            .bind(i64::try_from(outcome.applied).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    })
}

/// How many transactions have applied event batches (every delivery of every batch), for the
/// benchmark's transactions per 1,000 events.
pub async fn transactions(db: &Db) -> Result<i64, sqlx::Error> {
    let sql = "SELECT CAST(COALESCE(SUM(deliveries), 0) AS BIGINT) FROM event_batches";
    on_pool!(db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
}

fn builder<'args, DB: Database>(_pool: &Pool<DB>, sql: &str) -> QueryBuilder<'args, DB> {
    QueryBuilder::new(sql)
}
