//! A shard of the control plane: what a `CONTROL` object relaying for a group of isolates does,
//! so that the root object's load depends on the number of shards, not of isolates.
//!
//! Isolates send their reports and purge-log reads to their shard ([`RelayReport`],
//! [`RelayReadPurgeLog`]). The shard sums the reports it receives and passes the sum on to the
//! root at most once per report interval, answering every isolate with the status the root
//! last answered; it refreshes its copy of the purge log from the root at most once per purge
//! sync interval and answers reads from the copy. Isolates therefore act on a status at most
//! two report intervals old, and see a purge at most two sync intervals after it is recorded.
//!
//! The relay's state is soft: a shard that is evicted loses at most one interval of counts and
//! starts again by asking the root.
//!
//! [`RelayReport`]: super::RelayReport
//! [`RelayReadPurgeLog`]: super::RelayReadPurgeLog

use super::{Report, Status};
use crate::purge::PurgeLog;

/// One shard's state.
#[derive(Debug, Default)]
pub struct Relay {
    /// Counts received and not yet passed on.
    pending: Report,
    /// What the root answered last; admit-all until it first answered.
    status: Status,
    /// When the last report was passed on; `None` before the first.
    forwarded_ms: Option<u64>,
    forwarding: bool,
    log: Option<PurgeLog>,
    log_checked_ms: Option<u64>,
}

impl Relay {
    /// Takes an isolate's report at `now_ms`. `Some(sum)`: pass `sum` on to the root now and
    /// give its answer to [`Relay::forwarded`]; `None`: answer [`Relay::status`].
    pub fn report(&mut self, report: &Report, now_ms: u64, interval_ms: u64) -> Option<Report> {
        self.pending.merge(report);
        let due = self
            .forwarded_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= interval_ms);
        if !due || self.forwarding {
            return None;
        }
        self.forwarding = true;
        self.forwarded_ms = Some(now_ms);
        Some(std::mem::take(&mut self.pending))
    }

    /// The root's answer to `sum`: its status, or `None` when it could not be reached (the
    /// counts wait for the next interval).
    pub fn forwarded(&mut self, sum: Report, answer: Option<Status>) {
        self.forwarding = false;
        match answer {
            Some(status) => self.status = status,
            None => self.pending.put_back(sum),
        }
    }

    /// The status to answer isolates with: the root's last, or admit-all before it answered.
    pub fn status(&self) -> Status {
        self.status.clone()
    }

    /// Whether the copy of the purge log must be refreshed from the root at `now_ms` first;
    /// `Some(known epoch)` when it must (the caller then gives the answer to
    /// [`Relay::log_refreshed`]). A shard with a copy claims the refresh, so concurrent reads
    /// answer from the copy meanwhile; one without a copy has nothing to answer with, and every
    /// read asks.
    pub fn log_due(&mut self, now_ms: u64, sync_ms: u64) -> Option<Option<u64>> {
        let Some(log) = &self.log else {
            return Some(None);
        };
        let fresh = self
            .log_checked_ms
            .is_some_and(|at| now_ms.saturating_sub(at) < sync_ms);
        if fresh {
            return None;
        }
        self.log_checked_ms = Some(now_ms);
        Some(Some(log.epoch()))
    }

    /// The root's answer to a refresh: a newer log, or `None` when the copy is current.
    pub fn log_refreshed(&mut self, newer: Option<PurgeLog>, now_ms: u64) {
        if let Some(log) = newer
            && self.log.as_ref().is_none_or(|l| log.epoch() >= l.epoch())
        {
            self.log = Some(log);
        }
        self.log_checked_ms = Some(now_ms);
    }

    /// The copy, unless the reader already has its epoch (or a newer one).
    pub fn read_log(&self, known_epoch: Option<u64>) -> Option<PurgeLog> {
        self.log
            .as_ref()
            .filter(|log| known_epoch.is_none_or(|known| log.epoch() > known))
            .cloned()
    }
}
