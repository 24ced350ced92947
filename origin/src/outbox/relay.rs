//! One tick of the outbox: claim a batch of due rows, deliver each to its consumer, settle each
//! (delivered, retry later, or dead letter). The workers call [`Relay::deliver_due`] in a loop
//! with the system clock; tests call it with their own `now`, so attempts, backoff and
//! dead-lettering are driven without waiting.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::backoff::{AfterFailure, RetryPolicy};
use super::claim::{self, Message};
use super::consumers::Consumers;
use super::{OutboxSettings, dead_letter};
use crate::db::Db;

/// Outcomes kept for a subscriber that lags; one that falls further behind misses the oldest.
const EVENT_BUFFER: usize = 1024;

/// How one claimed message was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The consumer applied it.
    Delivered,
    /// It failed and is due again at `available_at` (Unix milliseconds).
    Retrying { available_at: i64, error: String },
    /// It failed its last allowed attempt and is now a dead letter.
    DeadLettered { error: String },
    /// Its lease ran out before it was settled and another claim owns it now.
    Superseded,
}

impl Settled {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying { .. } => "retrying",
            Self::DeadLettered { .. } => "dead-lettered",
            Self::Superseded => "superseded",
        }
    }
}

/// What a tick did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub outbox_id: i64,
    pub order_id: i64,
    pub topic: String,
    /// Which attempt this was (1-based).
    pub attempt: u32,
    pub settled: Settled,
}

/// Claims, delivers and settles outbox messages. Cheap to clone: the workers share one.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    consumers: Consumers,
    policy: RetryPolicy,
    batch_size: NonZeroU32,
    lease: Duration,
    random: fn() -> u64,
    events: broadcast::Sender<Outcome>,
}

impl Relay {
    /// A relay over `db` configured by `settings`, with OS randomness for jitter.
    pub fn new(db: Db, settings: &OutboxSettings) -> Self {
        Self::with_random(db, settings, super::random_u64)
    }

    /// Like [`Relay::new`] with this source of jitter (tests pin it to make delays exact).
    pub fn with_random(db: Db, settings: &OutboxSettings, random: fn() -> u64) -> Self {
        let consumers = Consumers::new(db.clone(), settings.confirmation_dir.clone());
        Self {
            inner: Arc::new(Inner {
                db,
                consumers,
                policy: settings.retry_policy(),
                batch_size: settings.batch_size,
                lease: settings.lease,
                random,
                events: broadcast::channel(EVENT_BUFFER).0,
            }),
        }
    }

    /// Every outcome from now on, as each message is settled: what a test waits on instead of
    /// sleeping, and a hook for metrics.
    pub fn subscribe(&self) -> broadcast::Receiver<Outcome> {
        self.inner.events.subscribe()
    }

    pub fn batch_size(&self) -> NonZeroU32 {
        self.inner.batch_size
    }

    /// Claims the rows due at `now_ms` (up to the batch size), delivers them concurrently, each
    /// within the lease, and settles each at `now_ms`. Returns what happened to each, by outbox
    /// id. On a database error the rows not yet settled stay leased and come due again when the
    /// lease ends.
    pub async fn deliver_due(&self, now_ms: i64) -> Result<Vec<Outcome>, sqlx::Error> {
        let inner = &*self.inner;
        let messages = claim::claim(&inner.db, now_ms, inner.lease, inner.batch_size).await?;
        // The lease covers the whole batch, so every delivery must end before it does.
        let deadline = tokio::time::Instant::now() + inner.lease;
        let max_attempts = inner.policy.max_attempts.get();
        let started: Vec<(Message, Option<JoinHandle<_>>)> = messages
            .into_iter()
            .map(|message| {
                // Past the last attempt: the previous claim's lease ran out unsettled.
                let task = (message.attempt <= max_attempts).then(|| {
                    let consumers = inner.consumers.clone();
                    let message = message.clone();
                    // A task of its own, so a panicking consumer fails only its message.
                    tokio::spawn(async move { consumers.deliver(&message, now_ms).await })
                });
                (message, task)
            })
            .collect();

        let mut outcomes = Vec::with_capacity(started.len());
        for (message, task) in started {
            let settled = match task {
                Some(task) => {
                    let result = finish(task, deadline, inner.lease).await;
                    self.settle(&message, result, now_ms).await?
                }
                None => {
                    let error = format!(
                        "attempt {max_attempts} did not finish within its lease of {:?} (the \
                         worker stopped or the consumer hung)",
                        inner.lease
                    );
                    self.bury(&message, max_attempts, error, now_ms).await?
                }
            };
            let outcome = Outcome {
                outbox_id: message.id,
                order_id: message.order_id,
                topic: message.topic,
                attempt: message.attempt,
                settled,
            };
            log(&outcome);
            // No subscriber is the normal case.
            let _ = inner.events.send(outcome.clone());
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn settle(
        &self,
        message: &Message,
        result: Result<(), String>,
        now_ms: i64,
    ) -> Result<Settled, sqlx::Error> {
        let inner = &*self.inner;
        let error = match result {
            Ok(()) => {
                let mine = claim::mark_delivered(&inner.db, message, now_ms).await?;
                return Ok(if mine {
                    Settled::Delivered
                } else {
                    Settled::Superseded
                });
            }
            Err(error) => error,
        };
        match inner
            .policy
            .after_failure(message.attempt, now_ms, (inner.random)())
        {
            AfterFailure::RetryAt(available_at) => {
                let mine = claim::schedule_retry(&inner.db, message, &error, available_at).await?;
                Ok(if mine {
                    Settled::Retrying {
                        available_at,
                        error,
                    }
                } else {
                    Settled::Superseded
                })
            }
            AfterFailure::DeadLetter => self.bury(message, message.attempt, error, now_ms).await,
        }
    }

    async fn bury(
        &self,
        message: &Message,
        attempts: u32,
        error: String,
        now_ms: i64,
    ) -> Result<Settled, sqlx::Error> {
        let mine = dead_letter::bury(&self.inner.db, message, attempts, &error, now_ms).await?;
        Ok(if mine {
            Settled::DeadLettered { error }
        } else {
            Settled::Superseded
        })
    }
}

/// The consumer's result, or why there is none: it panicked, or it ran past `deadline` (then it
/// is cancelled, and the attempt counts as failed).
async fn finish(
    mut task: JoinHandle<Result<(), super::consumers::DeliveryError>>,
    deadline: tokio::time::Instant,
    lease: Duration,
) -> Result<(), String> {
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(Ok(delivered)) => delivered.map_err(|error| error.to_string()),
        Ok(Err(join_error)) if join_error.is_panic() => Err("the consumer panicked".to_owned()),
        Ok(Err(join_error)) => Err(format!("the consumer was cancelled: {join_error}")),
        Err(_elapsed) => {
            task.abort();
            Err(format!(
                "the consumer did not finish within the lease of {lease:?}"
            ))
        }
    }
}

fn log(outcome: &Outcome) {
    let Outcome {
        outbox_id,
        order_id,
        topic,
        attempt,
        settled,
    } = outcome;
    match settled {
        Settled::Delivered | Settled::Superseded => tracing::debug!(
            outbox_id,
            order_id,
            topic,
            attempt,
            outcome = settled.as_str(),
            "outbox message settled"
        ),
        Settled::Retrying {
            available_at,
            error,
        } => tracing::warn!(
            outbox_id,
            order_id,
            topic,
            attempt,
            available_at,
            error,
            "outbox delivery failed; will retry"
        ),
        Settled::DeadLettered { error } => tracing::error!(
            outbox_id,
            order_id,
            topic,
            attempt,
            error,
            "outbox message dead-lettered; replay with `breakwater-origin dead-letters replay`"
        ),
    }
}
