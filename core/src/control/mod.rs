//! The `CONTROL` Durable Object's contract and its decisions: cluster-wide control state (the
//! purge log, the SLO burn-rate controller, one circuit breaker and one health record per
//! origin) changed only by the pure transitions of [`ControlState`], one per command. The
//! object on the edge is a load → apply → store adapter; write-behind dead letters, a paged
//! storage index, stay with it.
//!
//! | concept | commands |
//! |---|---|
//! | purge log | [`ReadPurgeLog`], [`Purge`] |
//! | SLO controller + breakers + fleet concurrency limits | [`SendReport`] |
//! | a shard's relay of both ([`relay`]) | [`RelayReport`], [`RelayReadPurgeLog`] |
//! | one breaker | [`AcquireBreaker`], [`ReportProbe`] |
//! | health records | [`ReadHealth`], [`RecordChecks`] |
//! | the operators' view: summed metrics and the controls' state | [`ReadOverview`] |
//! | dead letters | [`KeepDeadLetters`], [`ListDeadLetters`], [`GetDeadLetters`], [`RemoveDeadLetters`] |

mod commands;
pub mod relay;
mod state;
#[cfg(test)]
mod tests;

pub use commands::*;
pub use state::{Changed, ControlState, Notice};

use crate::breaker::{Breaker, Counts, View};
use crate::concurrency::{GlobalLimits, merge_limits};
use crate::metrics::Metrics;
use crate::pool::HealthRecord;
use crate::pool::health::CheckResult;
use crate::purge::PurgeRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One breaker per origin, by base URL.
pub type Breakers = BTreeMap<String, Breaker>;
/// Each checked origin's health record, by base URL.
pub type Health = BTreeMap<String, HealthRecord>;

/// One active health check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub origin: String,
    /// When it was sent.
    pub at_ms: u64,
    pub result: CheckResult,
}

/// What an isolate counted since its last report, or a shard's sum of its isolates' reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Answered requests, and those that failed for the origin's sake.
    pub requests: u64,
    pub errors: u64,
    /// Requests shadow mode would have shed.
    pub would_shed: u64,
    /// Origin calls made while the origin's breaker was closed, by origin base URL.
    pub breakers: BTreeMap<String, Counts>,
    /// Each origin's concurrency limit and demand, as partial aggregates of the isolates counted
    /// in this report (one isolate's, or a shard's sum).
    #[serde(default)]
    pub concurrency: GlobalLimits,
    /// What the isolate answered and called, for the metrics ([`crate::metrics`]).
    #[serde(default)]
    pub metrics: Metrics,
}

impl Report {
    /// Adds another isolate's (or shard's) report to this one.
    pub fn merge(&mut self, other: &Report) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.would_shed += other.would_shed;
        for (origin, counts) in &other.breakers {
            let mine = self.breakers.entry(origin.clone()).or_default();
            mine.calls += counts.calls;
            mine.failures += counts.failures;
            mine.slow += counts.slow;
        }
        merge_limits(&mut self.concurrency, &other.concurrency);
        self.metrics.merge(&other.metrics);
    }

    /// Adds back a report that could not be delivered. Its counts still happened; its
    /// concurrency snapshot is dropped, being of an interval that is over (summed with the next
    /// one it would count the same isolates twice).
    pub fn put_back(&mut self, undelivered: Report) {
        self.merge(&Report {
            concurrency: GlobalLimits::new(),
            ..undelivered
        });
    }
}

/// What isolates act on until their next report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The admission fraction the controller computed, and the one to enforce (1 in shadow mode).
    pub fraction: f64,
    pub effective: f64,
    /// Each origin's breaker that is not closed (absent: closed), by origin base URL.
    pub breakers: BTreeMap<String, View>,
    /// The active health checks' records (absent: never checked, healthy).
    #[serde(default)]
    pub health: Health,
    /// Each origin's concurrency limit across the fleet, for isolates to take their share of.
    #[serde(default)]
    pub limits: GlobalLimits,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            fraction: 1.0,
            effective: 1.0,
            breakers: BTreeMap::new(),
            health: Health::new(),
            limits: GlobalLimits::new(),
        }
    }
}

/// The operators' view of the deployment ([`ReadOverview`]): the metrics summed from every
/// report since `since_ms`, and the state of the controls as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// When the root `CONTROL` object started summing (counters restart with it).
    pub since_ms: u64,
    pub now_ms: u64,
    pub metrics: Metrics,
    /// The admission fraction computed from the burn rate, and the one enforced.
    pub fraction: f64,
    pub effective: f64,
    /// The burn rates over the SLO's short and long windows (`None`: too few requests to tell).
    pub burn_short: Option<f64>,
    pub burn_long: Option<f64>,
    /// The chance a request of each priority is shed at the enforced fraction.
    pub shed: BTreeMap<String, f64>,
    /// Every origin's breaker seen so far, closed ones included.
    pub breakers: BTreeMap<String, View>,
    pub health: Health,
    /// The purge log's epoch and its latest records.
    pub purge_epoch: u64,
    pub purges: Vec<PurgeRecord>,
}
