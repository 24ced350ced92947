//! The consumers of order messages, each idempotent, because delivery is at least once (a worker
//! can die after the effect and before the row is marked delivered, or outlive its lease).
//!
//! - confirmation: writes `order-<id>.json` into the sink directory through a temporary file and
//!   a rename, so a redelivery replaces the file with identical bytes and a reader never sees a
//!   half-written one;
//! - inventory: takes the ordered units out of stock (never below zero);
//! - analytics: adds the order's units, the order and its revenue to each product's sales.
//!
//! The two database consumers record the message in `processed_messages` in the transaction of
//! the effect and apply the effect only if that insert added the row (T-QU-03).

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::claim::Message;
use crate::db::{Db, on_pool};
use crate::order::outbox::Topic;

/// Why a delivery failed. Each one is retried, then dead-lettered with this text.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("malformed {topic} payload: {source}")]
    Payload {
        topic: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the payload names order {payload}, the outbox row order {row}")]
    OrderMismatch { payload: i64, row: i64 },
    #[error("cannot write confirmation {path}: {source}")]
    Sink {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What identifies a message to a consumer across redeliveries: its order and topic.
pub fn message_id(order_id: i64, topic: Topic) -> String {
    format!("order-{order_id}/{}", topic.as_str())
}

/// The file the confirmation of `order_id` is written to, inside the sink directory.
pub fn confirmation_file(dir: &Path, order_id: i64) -> PathBuf {
    dir.join(format!("order-{order_id}.json"))
}

/// The confirmation payload, and what the confirmation file holds (plus the message id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub order_id: i64,
    pub principal: String,
    pub total_cents: i64,
    pub currency: String,
}

#[derive(Debug, Deserialize)]
struct Lines<L> {
    order_id: i64,
    /// Absent from analytics rows written before the rankings existed: they count nothing.
    #[serde(default = "Vec::new")]
    items: Vec<L>,
}

#[derive(Debug, Deserialize)]
struct StockLine {
    product_id: i64,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
struct SaleLine {
    product_id: i64,
    quantity: i64,
    line_total_cents: i64,
}

/// Records the message for its consumer; touches one row exactly when it was new.
const PROCESS: &str = "INSERT INTO processed_messages (consumer, message_id, processed_at) \
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// `CASE` rather than `GREATEST`/`MAX`, which the two backends spell differently.
const TAKE_STOCK: &str = "UPDATE products \
     SET stock = CASE WHEN stock > $2 THEN stock - $2 ELSE 0 END WHERE id = $1";
const COUNT_SALE: &str = "INSERT INTO product_sales (product_id, units, orders, revenue_cents) \
     VALUES ($1, $2, 1, $3) \
     ON CONFLICT (product_id) DO UPDATE SET \
         units = product_sales.units + excluded.units, \
         orders = product_sales.orders + 1, \
         revenue_cents = product_sales.revenue_cents + excluded.revenue_cents";

/// The three consumers, with what they write to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Consumers {
    db: Db,
    confirmation_dir: Arc<PathBuf>,
}

impl Consumers {
    pub fn new(db: Db, confirmation_dir: PathBuf) -> Self {
        Self {
            db,
            confirmation_dir: Arc::new(confirmation_dir),
        }
    }

    /// Applies `message` with its topic's consumer, at most once in effect however often it is
    /// delivered.
    pub async fn deliver(&self, message: &Message, now_ms: i64) -> Result<(), DeliveryError> {
        let topic = Topic::parse(&message.topic)
            .ok_or_else(|| DeliveryError::UnknownTopic(message.topic.clone()))?;
        match topic {
            Topic::Confirmation => self.confirm(message).await,
            Topic::Inventory => {
                let lines: Lines<StockLine> = parse(topic, message)?;
                self.apply_once(topic, message, now_ms, lines.items, |line| {
                    (TAKE_STOCK, [line.product_id, line.quantity])
                })
                .await
            }
            Topic::Analytics => {
                let lines: Lines<SaleLine> = parse(topic, message)?;
                self.apply_once(topic, message, now_ms, lines.items, |line| {
                    (
                        COUNT_SALE,
                        [line.product_id, line.quantity, line.line_total_cents],
                    )
                })
                .await
            }
        }
    }

    async fn confirm(&self, message: &Message) -> Result<(), DeliveryError> {
        let confirmation: Confirmation =
            serde_json::from_str(&message.payload).map_err(|source| DeliveryError::Payload {
                topic: Topic::Confirmation.as_str(),
                source,
            })?;
        check_order(confirmation.order_id, message)?;
        #[derive(Serialize)]
        struct File<'a> {
            message_id: String,
            #[serde(flatten)]
            confirmation: &'a Confirmation,
        }
        let bytes = serde_json::to_vec_pretty(&File {
            message_id: message_id(message.order_id, Topic::Confirmation),
            confirmation: &confirmation,
        })
        .map_err(|source| DeliveryError::Payload {
            topic: Topic::Confirmation.as_str(),
            source,
        })?;
        let dir = Arc::clone(&self.confirmation_dir);
        let path = confirmation_file(&dir, message.order_id);
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &target, &bytes))
            .await
            .map_err(io::Error::other)
            .and_then(|written| written)
            .map_err(|source| DeliveryError::Sink {
                path: path.display().to_string(),
                source,
            })
    }

    /// In one transaction: records the message for `topic`'s consumer and, only if it was new,
    /// runs the statement `effect` gives for each line (its binds in order).
    async fn apply_once<L, const N: usize>(
        &self,
        topic: Topic,
        message: &Message,
        now_ms: i64,
        lines: Vec<L>,
        effect: impl Fn(&L) -> (&'static str, [i64; N]),
    ) -> Result<(), DeliveryError> {
        let id = message_id(message.order_id, topic);
        let begin = self.db.begin_write();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin_with(begin).await?;
            let new = sqlx::query(PROCESS)
                .bind(topic.as_str())
                .bind(&id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !new {
                // A redelivery: the effect committed with the first one.
                return Ok(());
            }
            for line in &lines {
                let (sql, binds) = effect(line);
                let mut query = sqlx::query(sql);
                for bind in binds {
                    query = query.bind(bind);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

fn parse<L: serde::de::DeserializeOwned>(
    topic: Topic,
    message: &Message,
) -> Result<Lines<L>, DeliveryError> {
    let lines: Lines<L> =
        serde_json::from_str(&message.payload).map_err(|source| DeliveryError::Payload {
            topic: topic.as_str(),
            source,
        })?;
    check_order(lines.order_id, message)?;
    Ok(lines)
}

fn check_order(payload: i64, message: &Message) -> Result<(), DeliveryError> {
    if payload == message.order_id {
        Ok(())
    } else {
        Err(DeliveryError::OrderMismatch {
            payload,
            row: message.order_id,
        })
    }
}

/// Writes `bytes` to `path` in `dir` (created if missing) so that the file is either absent,
/// the old version or the whole new one: a uniquely named temporary file, flushed to disk, then
/// renamed over the target. Two workers racing on one message each rename a complete file.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.{:016x}.tmp", super::random_u64()));
    let written = std::fs::File::create_new(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temporary, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let sink = dir.path().join("confirmations");
        let path = confirmation_file(&sink, 7);
        write_atomically(&sink, &path, b"first").unwrap();
        write_atomically(&sink, &path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(&sink)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["order-7.json"]);
    }

    #[test]
    fn a_sink_that_is_a_file_is_an_io_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = confirmation_file(file.path(), 7);
        assert!(write_atomically(file.path(), &path, b"x").is_err());
    }

    #[test]
    fn message_ids_name_the_order_and_the_topic() {
        assert_eq!(message_id(42, Topic::Inventory), "order-42/inventory");
    }
}
