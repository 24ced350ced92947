//! The isolate's calls to `CONTROL`, each a typed command ([`breakwater_core::control`]) through
//! the one Durable Object client ([`durable::call`]).
//!
//! Reports and purge-log reads, the calls every isolate makes every interval, go to the
//! isolate's shard when `CONTROL_SHARDS` is set ([`breakwater_core::control::relay`]); the rest
//! go to the root instance.

use super::{BINDING, INSTANCE};
use crate::bindings::durable::{self, CallError, Command};
use crate::runtime::random_u64;
use breakwater_core::breaker::{Permit, View};
use breakwater_core::control::{
    AcquireBreaker, Check, GetDeadLetters, Health, KeepDeadLetters, ListDeadLetters, Overview,
    Page, Purge, ReadHealth, ReadOverview, ReadPurgeLog, RecordChecks, RemoveDeadLetters, Report,
    ReportProbe, SendReport, Status,
};
use breakwater_core::control::{RelayReadPurgeLog, RelayReport};
use breakwater_core::purge::{PurgeLog, PurgeRequest};
use breakwater_core::writebehind::DeadLetter;
use std::cell::Cell;
use std::time::Duration;
use worker::Env;

/// How long an isolate waits for `CONTROL`.
const TIMEOUT: Duration = Duration::from_secs(5);

async fn call<C: Command>(env: &Env, command: &C) -> Result<C::Reply, CallError> {
    durable::call(env, BINDING, INSTANCE, command, TIMEOUT).await
}

thread_local! {
    /// This isolate's draw among the shards, made once.
    static DRAW: Cell<u64> = Cell::new(random_u64());
}

/// The name of this isolate's shard among `shards`; `None` without shards.
fn shard(shards: u64) -> Option<String> {
    (shards > 0).then(|| format!("shard-{}", DRAW.get() % shards))
}

/// The purge log, or `None` when it is still at `known_epoch`: from this isolate's shard's copy
/// among `shards`, or the root's with none.
pub async fn fetch_log(
    env: &Env,
    shards: u64,
    known_epoch: Option<u64>,
) -> Result<Option<PurgeLog>, CallError> {
    match shard(shards) {
        Some(name) => {
            let command = RelayReadPurgeLog { known_epoch };
            durable::call(env, BINDING, &name, &command, TIMEOUT).await
        }
        None => call(env, &ReadPurgeLog { known_epoch }).await,
    }
}

/// Records `request`; the new log, or why the request is invalid.
pub async fn purge(
    env: &Env,
    request: &PurgeRequest,
) -> Result<Result<PurgeLog, String>, CallError> {
    call(env, &Purge(request.clone())).await
}

/// Sends an isolate's counts to its shard among `shards`, or the root with none; returns the
/// status to act on.
pub async fn report(env: &Env, shards: u64, report: &Report) -> Result<Status, CallError> {
    match shard(shards) {
        Some(name) => {
            let command = RelayReport(report.clone());
            durable::call(env, BINDING, &name, &command, TIMEOUT).await
        }
        None => call(env, &SendReport(report.clone())).await,
    }
}

/// A permit to call `origin` while its breaker is not closed.
pub async fn acquire(env: &Env, origin: &str) -> Result<Permit, CallError> {
    let origin = origin.to_owned();
    call(env, &AcquireBreaker { origin }).await
}

/// A half-open probe's outcome; returns `origin`'s breaker's state.
pub async fn report_probe(env: &Env, probe: ReportProbe) -> Result<View, CallError> {
    call(env, &probe).await
}

/// Every origin's health record.
pub async fn health(env: &Env) -> Result<Health, CallError> {
    call(env, &ReadHealth).await
}

/// Records health checks; returns the new records.
pub async fn record_checks(env: &Env, checks: Vec<Check>) -> Result<Health, CallError> {
    call(env, &RecordChecks(checks)).await
}

/// Keeps dead letters (the dead-letter queue's consumer).
pub async fn keep_dead_letters(env: &Env, letters: &[DeadLetter]) -> Result<(), CallError> {
    call(env, &KeepDeadLetters(letters.to_vec()))
        .await
        .map(drop)
}

/// A page of dead letters after the id `after`.
pub async fn list_dead_letters(
    env: &Env,
    after: Option<&str>,
    limit: usize,
) -> Result<Page, CallError> {
    let after = after.map(str::to_owned);
    call(env, &ListDeadLetters { after, limit }).await
}

/// The dead letters with these ids (those that exist).
pub async fn dead_letters_by_id(env: &Env, ids: &[String]) -> Result<Vec<DeadLetter>, CallError> {
    call(env, &GetDeadLetters { ids: ids.to_vec() }).await
}

/// Removes dead letters that were replayed, each only if its `at` still matches.
pub async fn remove_dead_letters(env: &Env, letters: &[(String, u64)]) -> Result<(), CallError> {
    let letters = letters.to_vec();
    call(env, &RemoveDeadLetters { letters }).await.map(drop)
}

/// The metrics summed across the deployment and the controls' state, from the root.
pub async fn overview(env: &Env) -> Result<Overview, CallError> {
    call(env, &ReadOverview).await
}
