//! Measures every replica against the primary, on an interval: how far its replay is behind, and
//! whether it belongs in the read rotation.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use super::{Demand, Lsn, ReplicaPolicy, replica_name};
use crate::db::Db;
use crate::metrics::Metrics;

/// One measurement of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `replica-<n>`.
    pub name: String,
    /// How far it has replayed the primary's WAL; `None` when it could not be asked.
    pub replayed: Option<Lsn>,
    /// Bytes of WAL the primary has written that it has not replayed.
    pub lag_bytes: Option<u64>,
    /// Whether reads may go to it.
    pub in_rotation: bool,
    /// Why it is out of rotation.
    pub problem: Option<String>,
}

/// The verdict on one replica, from what was measured: a pure function of the readings.
pub fn assess(
    name: String,
    primary: Option<Lsn>,
    replica: Result<Lsn, String>,
    max_lag_bytes: u64,
) -> ReplicaStatus {
    let (replayed, problem) = match replica {
        Ok(lsn) => (Some(lsn), None),
        Err(problem) => (None, Some(problem)),
    };
    let lag_bytes = replayed.zip(primary).map(|(r, p)| p.bytes_since(r));
    let problem = problem.or_else(|| match lag_bytes {
        None => Some("the primary's WAL position is unknown".to_owned()),
        Some(lag) if lag > max_lag_bytes => Some(format!(
            "{lag} bytes behind the primary (limit {max_lag_bytes})"
        )),
        Some(_) => None,
    });
    ReplicaStatus {
        name,
        replayed,
        lag_bytes,
        in_rotation: problem.is_none(),
        problem,
    }
}

/// How far `replica` has replayed. A server that is not in recovery is not a replica (a
/// misconfigured URL pointing at a primary), and reading from it would skip the tokens' promise.
pub async fn replayed(replica: &Db) -> Result<Lsn, String> {
    let Db::Postgres(pool) = replica else {
        return Err("replicas must be Postgres".to_owned());
    };
    let (position, in_recovery): (Option<String>, bool) =
        sqlx::query_as("SELECT pg_last_wal_replay_lsn()::text, pg_is_in_recovery()")
            .fetch_one(pool)
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
    match (in_recovery, position) {
        (true, Some(text)) => text.parse().map_err(|e| format!("{e}")),
        _ => Err("not a standby (pg_is_in_recovery() is false)".to_owned()),
    }
}

async fn primary_position(primary: &PgPool) -> Option<Lsn> {
    let text: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
        .fetch_one(primary)
        .await
        .map_err(|error| tracing::warn!(%error, "cannot read the primary's WAL position"))
        .ok()?;
    text.parse().ok()
}

/// Measures every replica once, each bounded by `timeout`.
pub async fn measure(
    primary: &PgPool,
    replicas: &[Db],
    max_lag_bytes: u64,
    timeout: Duration,
) -> Vec<ReplicaStatus> {
    let primary = tokio::time::timeout(timeout, primary_position(primary))
        .await
        .ok()
        .flatten();
    let mut statuses = Vec::with_capacity(replicas.len());
    for (index, replica) in replicas.iter().enumerate() {
        let reading = tokio::time::timeout(timeout, replayed(replica))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
        statuses.push(assess(replica_name(index), primary, reading, max_lag_bytes));
    }
    statuses
}

/// Sets each replica's lag and rotation gauges in `/metrics` (a replica whose lag could not be
/// measured keeps no lag series rather than a stale one).
pub fn publish(metrics: &Metrics, statuses: &[ReplicaStatus]) {
    for status in statuses {
        match status.lag_bytes {
            Some(lag) => metrics.set_replica_lag(&status.name, lag),
            None => metrics.forget_replica(&status.name),
        }
        metrics.set_replica_in_rotation(&status.name, status.in_rotation);
    }
}

/// How long one measurement waits for each server. Not the check interval, which may be a few
/// milliseconds: a loaded but healthy replica must not drop out of rotation for answering in 30.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Measures on every `policy.check_interval` (every [`Demand::FAST_CHECK`] while reads wait for
/// read-your-writes) and publishes to `status` and `metrics`, logging each replica that leaves or
/// rejoins the rotation. Ends when every receiver is gone.
pub async fn run(
    primary: PgPool,
    replicas: Vec<Db>,
    policy: ReplicaPolicy,
    status: watch::Sender<Arc<[ReplicaStatus]>>,
    demand: Arc<Demand>,
    metrics: Metrics,
) {
    loop {
        let pause = if demand.any() {
            Demand::FAST_CHECK
        } else {
            policy.check_interval
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = demand.woken() => {}
            () = status.closed() => return,
        }
        let measured = measure(&primary, &replicas, policy.max_lag_bytes, ANSWER_WITHIN).await;
        let before = status.borrow().clone();
        for (old, new) in before.iter().zip(&measured) {
            if old.in_rotation != new.in_rotation {
                match &new.problem {
                    Some(problem) => {
                        tracing::warn!(replica = %new.name, %problem, "replica out of rotation")
                    }
                    None => {
                        tracing::info!(replica = %new.name, lag_bytes = new.lag_bytes, "replica back in rotation")
                    }
                }
            }
        }
        publish(&metrics, &measured);
        status.send_replace(measured.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(text: &str) -> Lsn {
        text.parse().unwrap()
    }

    #[test]
    fn a_replica_within_the_limit_is_in_rotation_with_its_lag() {
        let status = assess(
            "replica-1".into(),
            Some(lsn("0/2000")),
            Ok(lsn("0/1000")),
            4096,
        );
        assert!(status.in_rotation);
        assert_eq!(status.lag_bytes, Some(4096));
        assert_eq!(status.problem, None);
    }

    #[test]
    fn too_far_behind_unreachable_or_unmeasurable_is_out() {
        let behind = assess("r".into(), Some(lsn("0/2001")), Ok(lsn("0/1000")), 4096);
        assert!(!behind.in_rotation);
        assert!(behind.problem.unwrap().contains("4097 bytes behind"));

        let down = assess(
            "r".into(),
            Some(lsn("0/2000")),
            Err("unreachable: refused".into()),
            4096,
        );
        assert!(!down.in_rotation);
        assert_eq!(down.lag_bytes, None);

        let no_primary = assess("r".into(), None, Ok(lsn("0/1000")), 4096);
        assert!(
            !no_primary.in_rotation,
            "lag cannot be judged without the primary"
        );
    }

    #[test]
    fn a_replica_ahead_of_an_older_primary_reading_has_no_lag() {
        // The primary is read before the replica, so a busy replica can be ahead of that reading.
        let ahead = assess("r".into(), Some(lsn("0/1000")), Ok(lsn("0/1800")), 0);
        assert_eq!(ahead.lag_bytes, Some(0));
        assert!(ahead.in_rotation);
    }
}
