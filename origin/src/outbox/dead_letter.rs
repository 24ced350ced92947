//! Dead letters: messages given up after their last allowed attempt, kept with their error until
//! an operator replays them. Never deleted automatically (T-QU-02: a dead-letter queue that drops
//! messages silently loses orders' effects).
//!
//! Burying marks the outbox row dead (so no claim sees it) and records the dead letter in one
//! transaction; a replay clears the mark, resets the attempts, makes the row due at once, and
//! stamps the dead letter `replayed_at`, again in one transaction. Replaying twice does nothing
//! the second time, and the consumers being idempotent, a replayed message that had in fact been
//! applied is not applied again.

use serde::Serialize;

use super::claim::{FENCE, Message};
use crate::db::{Db, on_pool};

/// One dead letter, as `dead-letters list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub outbox_id: i64,
    pub order_id: i64,
    pub topic: String,
    pub attempts: i64,
    pub last_error: String,
    /// Unix milliseconds.
    pub dead_at: i64,
    /// Unix milliseconds; `None` while the letter waits for a replay.
    pub replayed_at: Option<i64>,
}

/// Which dead letters a replay puts back in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every one not replayed yet.
    All,
    /// These, where not replayed yet.
    Ids(Vec<i64>),
}

/// Moves `message` (claimed as its attempt [`Message::attempt`]) to the dead letters with
/// `error`, recording `attempts` attempts, at `now_ms`. False when the claim was superseded, in
/// which case nothing is written.
pub async fn bury(
    db: &Db,
    message: &Message,
    attempts: u32,
    error: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let mark = format!(
        "UPDATE outbox SET dead_at = $3, last_error = $4, attempts = $5 WHERE {FENCE} \
         RETURNING order_id, topic"
    );
    let record = "INSERT INTO dead_letters \
         (outbox_id, order_id, topic, attempts, last_error, dead_at) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    let begin = db.begin_write();
    on_pool!(db, pool => {
        let mut tx = pool.begin_with(begin).await?;
        let Some((order_id, topic)) = sqlx::query_as::<_, (i64, String)>(&mark)
            .bind(message.id)
            .bind(i64::from(message.attempt))
            .bind(now_ms)
            .bind(error)
            .bind(i64::from(attempts))
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        sqlx::query(record)
            .bind(message.id)
            .bind(order_id)
            .bind(topic)
            .bind(i64::from(attempts))
            .bind(error)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// Dead letters waiting for a replay, for `/metrics`.
pub const WAITING_COUNT: &str = "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL";

/// How many dead letters wait for a replay ([`WAITING_COUNT`]).
pub async fn waiting_count(db: &Db) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar::<_, i64>(WAITING_COUNT).fetch_one(pool).await)
}

/// Dead letters oldest first: those waiting for a replay, or all of them with
/// `include_replayed`.
pub async fn list(db: &Db, include_replayed: bool) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let filter = if include_replayed {
        ""
    } else {
        "WHERE replayed_at IS NULL "
    };
    let sql = format!(
        "SELECT id, outbox_id, order_id, topic, attempts, last_error, dead_at, replayed_at \
         FROM dead_letters {filter}ORDER BY id"
    );
    on_pool!(db, pool => sqlx::query_as::<_, DeadLetter>(&sql).fetch_all(pool).await)
}

/// Puts the selected dead letters back in the outbox at `now_ms` (attempts from zero, due at
/// once) and returns the ids of those replayed, ascending. Ids that do not exist or were already
/// replayed are left out.
pub async fn replay(db: &Db, selection: &Selection, now_ms: i64) -> Result<Vec<i64>, sqlx::Error> {
    // `$2` is the dead letter's id when one is selected.
    let (which, ids): (&str, Vec<Option<i64>>) = match selection {
        Selection::All => ("", vec![None]),
        Selection::Ids(ids) => ("AND id = $2", ids.iter().copied().map(Some).collect()),
    };
    let revive = format!(
        "UPDATE outbox \
         SET attempts = 0, available_at = $1, claimed_at = NULL, dead_at = NULL, \
             last_error = NULL \
         WHERE dead_at IS NOT NULL AND id IN \
             (SELECT outbox_id FROM dead_letters WHERE replayed_at IS NULL {which})"
    );
    let stamp = format!(
        "UPDATE dead_letters SET replayed_at = $1 WHERE replayed_at IS NULL {which} RETURNING id"
    );
    let begin = db.begin_write();
    let mut replayed: Vec<i64> = on_pool!(db, pool => {
        let mut tx = pool.begin_with(begin).await?;
        let mut replayed = Vec::new();
        for id in ids {
            let mut revive = sqlx::query(&revive).bind(now_ms);
            let mut stamp = sqlx::query_scalar::<_, i64>(&stamp).bind(now_ms);
            if let Some(id) = id {
                revive = revive.bind(id);
                stamp = stamp.bind(id);
            }
            revive.execute(&mut *tx).await?;
            replayed.extend(stamp.fetch_all(&mut *tx).await?);
        }
        tx.commit().await?;
        replayed
    });
    replayed.sort_unstable();
    replayed.dedup();
    Ok(replayed)
}
