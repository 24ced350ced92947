//! Every command `CONTROL` takes, each with its answer ([`Command::Reply`]).

use super::{Check, Health, Overview, Report, Status};
use crate::breaker::{Permit, View};
use crate::purge::{PurgeLog, PurgeRequest};
use crate::rpc::Command;
use crate::writebehind::DeadLetter;
use serde::{Deserialize, Serialize};

/// The purge log, unless it is still at `known_epoch` (then `None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadPurgeLog {
    pub known_epoch: Option<u64>,
}

impl Command for ReadPurgeLog {
    const NAME: &'static str = "read-purge-log";
    type Reply = Option<PurgeLog>;
}

/// Records a purge; answers the new log, or why the request is invalid (nothing recorded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purge(pub PurgeRequest);

impl Command for Purge {
    const NAME: &'static str = "purge";
    type Reply = Result<PurgeLog, String>;
}

/// An isolate's counts; answers the status isolates act on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendReport(pub Report);

impl Command for SendReport {
    const NAME: &'static str = "report";
    type Reply = Status;
}

/// An isolate's counts, sent to its shard ([`super::relay`]); answers the status the root last
/// answered the shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayReport(pub Report);

impl Command for RelayReport {
    const NAME: &'static str = "relay-report";
    type Reply = Status;
}

/// [`ReadPurgeLog`] from the shard's copy ([`super::relay`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayReadPurgeLog {
    pub known_epoch: Option<u64>,
}

impl Command for RelayReadPurgeLog {
    const NAME: &'static str = "relay-read-purge-log";
    type Reply = Option<PurgeLog>;
}

/// A permit to call `origin` while its breaker is not closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcquireBreaker {
    pub origin: String,
}

impl Command for AcquireBreaker {
    const NAME: &'static str = "acquire-breaker";
    type Reply = Permit;
}

/// A half-open probe's outcome; answers that origin's breaker's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportProbe {
    pub origin: String,
    pub id: u64,
    pub success: bool,
    pub latency_ms: u64,
}

impl Command for ReportProbe {
    const NAME: &'static str = "report-probe";
    type Reply = View;
}

/// Every origin's health record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadHealth;

impl Command for ReadHealth {
    const NAME: &'static str = "read-health";
    type Reply = Health;
}

/// The metrics summed since the object started, and the controls' state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadOverview;

impl Command for ReadOverview {
    const NAME: &'static str = "read-overview";
    type Reply = Overview;
}

/// The cron trigger's health checks; answers the new records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordChecks(pub Vec<Check>);

impl Command for RecordChecks {
    const NAME: &'static str = "record-checks";
    type Reply = Health;
}

/// Keeps dead letters (the dead-letter queue's consumer); answers how many.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeepDeadLetters(pub Vec<DeadLetter>);

impl Command for KeepDeadLetters {
    const NAME: &'static str = "keep-dead-letters";
    type Reply = usize;
}

/// A page of at most `limit` dead letters after the id `after`, in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListDeadLetters {
    pub after: Option<String>,
    pub limit: usize,
}

/// A page of the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub dead_events: Vec<DeadLetter>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<String>,
}

impl Command for ListDeadLetters {
    const NAME: &'static str = "list-dead-letters";
    type Reply = Page;
}

/// The dead letters with these ids (those that exist).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetDeadLetters {
    pub ids: Vec<String>,
}

impl Command for GetDeadLetters {
    const NAME: &'static str = "get-dead-letters";
    type Reply = Vec<DeadLetter>;
}

/// Removes replayed dead letters, each (id, `at`) only if its `at` still matches (one that was
/// dead-lettered anew meanwhile stays); answers how many were removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveDeadLetters {
    pub letters: Vec<(String, u64)>,
}

impl Command for RemoveDeadLetters {
    const NAME: &'static str = "remove-dead-letters";
    type Reply = usize;
}
