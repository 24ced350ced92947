//! Read routing over the primary and its streaming replicas, with read-your-writes.
//!
//! Writes go to the primary and answer with a consistency token: the primary's WAL position after
//! the commit ([`write_position`]). A read that presents the token (header
//! `Breakwater-Consistency`) is served by a replica in rotation that has replayed that far, or,
//! when none has within [`ReplicaPolicy::read_your_writes_wait`], by the primary. A read without
//! a token goes to any replica in rotation. The [`monitor`] measures each replica's lag and takes
//! a replica out of rotation while it is unreachable, not a standby, or too far behind.

pub mod lsn;
pub mod monitor;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tokio::sync::{Notify, watch};

pub use lsn::Lsn;
pub use monitor::ReplicaStatus;

use crate::db::Db;
use crate::error::ApiError;

/// The header a write answers with and a read presents: a [`Lsn`].
pub const CONSISTENCY: HeaderName = HeaderName::from_static("breakwater-consistency");
/// Which database served a read (`primary` or `replica-<n>`), for diagnosis.
pub const READ_FROM: HeaderName = HeaderName::from_static("breakwater-read-from");

/// How replicas are judged and waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// A replica further behind the primary than this many bytes of WAL leaves the rotation.
    pub max_lag_bytes: u64,
    /// How often the monitor measures every replica.
    pub check_interval: Duration,
    /// How long a read with a consistency token waits for a replica to catch up before it goes
    /// to the primary.
    pub read_your_writes_wait: Duration,
}

impl Default for ReplicaPolicy {
    fn default() -> Self {
        Self {
            max_lag_bytes: 16 * 1024 * 1024,
            check_interval: Duration::from_millis(500),
            read_your_writes_wait: Duration::from_millis(50),
        }
    }
}

/// Where a read is sent: the primary's read pool and the replicas' pools, with their latest
/// measured state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reads {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    primary: Db,
    replicas: Vec<Db>,
    status: watch::Receiver<Arc<[ReplicaStatus]>>,
    /// Round robin among the eligible replicas.
    next: AtomicUsize,
    /// Reads waiting for read-your-writes, shared with the monitor.
    demand: Arc<Demand>,
    /// The WAL position of this instance's latest write to data that shared caches keep (see
    /// [`Reads::route_shared`]); 0 before any.
    shared_floor: AtomicU64,
    wait: Duration,
}

/// The database chosen for one read.
#[derive(Debug, Clone)]
pub struct Route {
    pub db: Db,
    /// `primary` or `replica-<n>` (1-based, in `--replica-url` order).
    pub source: String,
}

impl Reads {
    /// Reads that all go to `primary` (no replicas configured).
    pub fn primary_only(primary: Db) -> Reads {
        let (_, status) = watch::channel(Arc::from([]));
        Self::new(primary, Vec::new(), status, Arc::default(), Duration::ZERO)
    }

    pub(crate) fn new(
        primary: Db,
        replicas: Vec<Db>,
        status: watch::Receiver<Arc<[ReplicaStatus]>>,
        demand: Arc<Demand>,
        wait: Duration,
    ) -> Reads {
        Reads {
            inner: Arc::new(Inner {
                primary,
                replicas,
                status,
                next: AtomicUsize::new(0),
                demand,
                shared_floor: AtomicU64::new(0),
                wait,
            }),
        }
    }

    /// The replicas' latest measured state, in `--replica-url` order.
    pub fn replicas(&self) -> Arc<[ReplicaStatus]> {
        self.inner.status.borrow().clone()
    }

    /// Resolves when the monitor publishes its next measurement of the replicas: something to
    /// wait on for state that follows replication, instead of a timer. At once when there is no
    /// monitor (no replicas).
    pub async fn next_measurement(&self) {
        let mut status = self.inner.status.clone();
        status.borrow_and_update();
        let _ = status.changed().await;
    }

    /// Each replica's pool, in `--replica-url` order.
    pub fn replica_pools(&self) -> &[Db] {
        &self.inner.replicas
    }

    /// The primary's read pool (a separate bulkhead from writes).
    pub fn primary(&self) -> &Db {
        &self.inner.primary
    }

    /// Closes every read pool.
    pub async fn close(&self) {
        self.inner.primary.close().await;
        for replica in &self.inner.replicas {
            replica.close().await;
        }
    }

    /// Records a write to data that shared caches keep (the catalogue), at WAL position `lsn`.
    pub fn note_shared_write(&self, lsn: Lsn) {
        self.inner
            .shared_floor
            .fetch_max(lsn.raw(), Ordering::Relaxed);
    }

    /// Like [`Reads::route`], for a read whose answer shared caches keep. The edge purges a
    /// product the moment a write to it succeeds, and the next read refills the cache; were that
    /// read served by a replica that has not replayed the write, the old product would be cached
    /// again for its whole lifetime. So such reads also wait for this instance's latest write to
    /// shared data (another instance's writes are not known here: see the README).
    pub async fn route_shared(&self, token: Option<Lsn>) -> Route {
        let floor = Lsn::from_raw(self.inner.shared_floor.load(Ordering::Relaxed));
        let token = match token {
            Some(token) => Some(token.max(floor)),
            None => (floor > Lsn::ZERO).then_some(floor),
        };
        self.route(token).await
    }

    /// Picks the database for a read that must see at least `token` (a write's position).
    pub async fn route(&self, token: Option<Lsn>) -> Route {
        if self.inner.replicas.is_empty() {
            return self.on_primary();
        }
        let eligible = |status: &ReplicaStatus| {
            status.in_rotation && token.is_none_or(|t| status.replayed.is_some_and(|r| r >= t))
        };
        if let Some(index) = self.pick(&self.replicas(), eligible) {
            return self.on_replica(index);
        }
        if token.is_none() || !self.replicas().iter().any(|s| s.in_rotation) {
            return self.on_primary();
        }
        // No replica had replayed the write at the last measurement. Ask the monitor to measure
        // more often while reads wait (one query per replica for all of them, not one each),
        // and take the first measurement that has it, or the primary when the wait runs out.
        let _waiting = self.inner.demand.enter();
        let mut status = self.inner.status.clone();
        let replayed = status.wait_for(|statuses| statuses.iter().any(&eligible));
        match tokio::time::timeout(self.inner.wait, replayed).await {
            Ok(Ok(statuses)) => {
                let statuses = statuses.clone();
                self.pick(&statuses, eligible)
                    .map_or_else(|| self.on_primary(), |index| self.on_replica(index))
            }
            _ => self.on_primary(),
        }
    }

    fn pick(
        &self,
        statuses: &[ReplicaStatus],
        eligible: impl Fn(&ReplicaStatus) -> bool,
    ) -> Option<usize> {
        let candidates: Vec<usize> = (0..statuses.len())
            .filter(|&i| eligible(&statuses[i]))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let turn = self.inner.next.fetch_add(1, Ordering::Relaxed);
        Some(candidates[turn % candidates.len()])
    }

    fn on_primary(&self) -> Route {
        Route {
            db: self.inner.primary.clone(),
            source: "primary".to_owned(),
        }
    }

    fn on_replica(&self, index: usize) -> Route {
        Route {
            db: self.inner.replicas[index].clone(),
            source: replica_name(index),
        }
    }
}

/// Reads waiting for a replica to replay their token. While there are any, the monitor measures
/// every [`Demand::FAST_CHECK`] instead of every check interval.
#[derive(Debug, Default)]
pub struct Demand {
    waiting: AtomicUsize,
    wake: Notify,
}

impl Demand {
    /// How often replicas are measured while reads wait: replay on a healthy replica takes a
    /// millisecond or two, and the wait is tens of milliseconds.
    pub const FAST_CHECK: Duration = Duration::from_millis(3);

    /// Counts a waiting read until the guard drops, and wakes the monitor.
    fn enter(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Waiting(self)
    }

    /// Whether any read waits now.
    pub fn any(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Resolves when a read starts waiting.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

struct Waiting<'a>(&'a Demand);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The name replica `index` (0-based) goes by in headers, logs and metrics.
pub fn replica_name(index: usize) -> String {
    format!("replica-{}", index + 1)
}

/// The primary's WAL position now: after a commit, a position at or past that commit. The insert
/// position, not the write position (`pg_current_wal_lsn`): with `synchronous_commit = off` a
/// commit returns before its record is written, and the write position can still be short of it.
/// `None` on
/// SQLite (one file: every read sees every commit) and when the query fails, which must not fail
/// a write that has already committed.
pub async fn write_position(db: &Db) -> Option<Lsn> {
    let Db::Postgres(pool) = db else {
        return None;
    };
    let position: Result<String, _> =
        sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(pool)
            .await;
    match position.map(|text| text.parse::<Lsn>()) {
        Ok(Ok(lsn)) => Some(lsn),
        Ok(Err(error)) => {
            tracing::warn!(%error, "pg_current_wal_insert_lsn() gave an unreadable position");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the WAL position after a write");
            None
        }
    }
}

/// `response` with `position` (see [`write_position`]) as its consistency token, if there is one.
pub fn with_token(mut response: Response, position: Option<Lsn>) -> Response {
    if let Some(lsn) = position {
        let value = HeaderValue::from_str(&lsn.to_string()).expect("an LSN is ASCII");
        response.headers_mut().insert(CONSISTENCY, value);
    }
    response
}

impl Route {
    /// `response` marked with where it was read from.
    pub fn mark(&self, mut response: Response) -> Response {
        let value = HeaderValue::from_str(&self.source).expect("a source name is ASCII");
        response.headers_mut().insert(READ_FROM, value);
        response
    }
}

/// The consistency token a read presents, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consistency(pub Option<Lsn>);

impl<S: Send + Sync> FromRequestParts<S> for Consistency {
    type Rejection = ApiError;

    /// `400` for a malformed or repeated token: silently reading stale data instead would break
    /// the promise the token stands for.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(&CONSISTENCY).iter();
        let (first, second) = (values.next(), values.next());
        let invalid = |reason: String| ApiError::InvalidHeader {
            header: "Breakwater-Consistency",
            reason,
        };
        match (first, second) {
            (None, _) => Ok(Consistency(None)),
            (Some(_), Some(_)) => Err(invalid("must be sent at most once".to_owned())),
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .map(|lsn| Consistency(Some(lsn)))
                .ok_or_else(|| invalid(lsn::InvalidLsn.to_string())),
        }
    }
}
