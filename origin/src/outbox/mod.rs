//! Outbox workers: the rows an order writes in its own transaction (see
//! [`crate::order::outbox`]) are claimed, delivered to their consumer, retried with jittered
//! backoff, and dead-lettered after too many failures, from where an operator replays them.
//!
//! - [`claim`]: leasing a batch of due rows in one statement (`FOR UPDATE SKIP LOCKED` on
//!   Postgres), and settling each one afterwards.
//! - [`backoff`]: the pure retry decision.
//! - [`consumers`]: confirmation (a file per order), inventory and analytics, each idempotent.
//! - [`relay`]: one tick: claim, deliver, settle; what tests drive by hand with their own clock.
//! - [`worker`]: the tasks that tick in a loop, woken by each order, until shutdown.
//! - [`dead_letter`] and [`command`]: listing and replaying dead letters (`dead-letters` CLI).

pub mod backoff;
pub mod claim;
pub mod command;
pub mod consumers;
pub mod dead_letter;
pub mod relay;
pub mod worker;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use backoff::{Backoff, RetryPolicy};
pub use relay::{Outcome, Relay, Settled};
pub use worker::Workers;

/// Workers each origin instance runs unless told otherwise.
pub const DEFAULT_WORKERS: usize = 2;
/// Rows one tick claims: enough to amortise the claim, few enough that one slow consumer holds
/// back little.
pub const DEFAULT_BATCH_SIZE: u32 = 16;
/// How long a claim keeps a row from other workers: a worker that dies mid-batch loses its rows
/// for this long, and one delivery may take at most this long before it counts as failed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Attempts before a message is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Where confirmations are written, relative to the working directory (next to the default
/// SQLite file).
pub const DEFAULT_CONFIRMATION_DIR: &str = "data/confirmations";
/// First retry window; it doubles per attempt. With the cap below, eight attempts span at most
/// about two minutes.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// How often an idle worker looks for due rows: a new order wakes it at once, so this only bounds
/// how late a retry (or an order placed on another instance) is picked up.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How the outbox is worked. `Default` is what the binary runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Worker tasks; 0 starts none (tests then deliver by hand through [`Relay::deliver_due`]).
    pub workers: usize,
    pub batch_size: NonZeroU32,
    pub lease: Duration,
    pub max_attempts: NonZeroU32,
    pub backoff: Backoff,
    pub poll_interval: Duration,
    /// The confirmation consumer's sink: one `order-<id>.json` per order.
    pub confirmation_dir: PathBuf,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            workers: DEFAULT_WORKERS,
            batch_size: NonZeroU32::new(DEFAULT_BATCH_SIZE).unwrap_or(NonZeroU32::MIN),
            lease: DEFAULT_LEASE,
            max_attempts: NonZeroU32::new(DEFAULT_MAX_ATTEMPTS).unwrap_or(NonZeroU32::MIN),
            backoff: Backoff::new(BACKOFF_BASE, BACKOFF_CAP),
            poll_interval: POLL_INTERVAL,
            confirmation_dir: PathBuf::from(DEFAULT_CONFIRMATION_DIR),
        }
    }
}

impl OutboxSettings {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            backoff: self.backoff,
            max_attempts: self.max_attempts,
        }
    }
}

/// A source of Unix milliseconds, passed in so that tests can drive time.
pub type Clock = fn() -> i64;

/// The system clock as Unix milliseconds.
pub use crate::clock::unix_ms as system_clock;

/// A random number for jitter and temporary file names.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without the OS generator, no jitter (and a fixed temporary name) is still correct.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Wakes an idle worker: the order route signals it after each commit, so delivery starts
/// without waiting for the next poll. A signal with no worker waiting is kept for the next one to
/// wait, so a commit that lands mid-batch is not missed.
#[derive(Debug, Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    pub fn new() -> Self {
        Self::default()
    }

    /// New rows were committed.
    pub fn signal(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next signal (or at once for one that came while no worker waited).
    pub async fn wait(&self) {
        self.0.notified().await;
    }
}
