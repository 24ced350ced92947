//! The isolate's side of the cluster-wide controls kept in `CONTROL`: the admission fraction
//! (from the SLO burn rate), and per origin its circuit breaker and active health record.
//!
//! Requests add to local counters (requests, errors, origin calls); at most every
//! `CONTROL_REPORT_MS` one report carries them to `CONTROL`, after the answer, and brings back the
//! status (current, or up to two report intervals old through a shard), which the isolate then
//! uses until the next report. The report also carries the isolate's concurrency measurements,
//! and the status brings back the fleet's limits ([`breakwater_core::concurrency::shares`]). No
//! request waits for `CONTROL` except a half-open breaker's probe permit. The same reports carry
//! the isolate's metrics ([`breakwater_core::metrics`]), which `CONTROL` sums.

use super::client as control;
use crate::runtime::{now_millis, now_ms};
use breakwater_core::breaker::{Counts, Permit, Phase, View};
use breakwater_core::concurrency::GlobalLimits;
use breakwater_core::config::EdgeConfig;
use breakwater_core::control::{Report, ReportProbe, Status};
use breakwater_core::metrics::RecentError;
use breakwater_core::pool::HealthRecord;
use std::cell::RefCell;
use worker::Env;

#[derive(Default)]
struct Local {
    /// The last status `CONTROL` sent; `None` until the first report (then: admit all, closed).
    status: Option<Status>,
    pending: Report,
    last_report_ms: f64,
    reporting: bool,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// The status this isolate acts on.
pub fn status() -> Status {
    LOCAL.with_borrow(|l| l.status.clone().unwrap_or_default())
}

/// Whether this isolate knows `origin`'s breaker to be open at `now_ms` (a request to it would
/// be refused without asking `CONTROL`).
pub fn breaker_open(origin: &str, now_ms: u64) -> bool {
    LOCAL.with_borrow(|l| {
        l.status
            .as_ref()
            .and_then(|s| s.breakers.get(origin))
            .is_some_and(|v| v.phase == Phase::Open && v.open_until_ms.is_some_and(|u| u > now_ms))
    })
}

/// `origin`'s active health record as of the last report, if it has been checked.
pub fn health(origin: &str) -> Option<HealthRecord> {
    LOCAL.with_borrow(|l| l.status.as_ref()?.health.get(origin).cloned())
}

/// Counts one answered request the edge did not refuse itself: `error` when it failed.
pub fn record_request(error: bool, would_shed: bool) {
    LOCAL.with_borrow_mut(|l| {
        l.pending.requests += 1;
        l.pending.errors += u64::from(error);
        l.pending.would_shed += u64::from(would_shed);
    });
}

/// Counts one answer for the metrics, refused or not: under its route label, status and cache
/// outcome ([`breakwater_core::metrics`]).
pub fn record_answer(route: &str, status: u16, cache: &str) {
    LOCAL.with_borrow_mut(|l| l.pending.metrics.count_request(route, status, cache));
}

/// Keeps a failed or refused answer for the dashboard's recent errors.
pub fn record_error(error: RecentError) {
    LOCAL.with_borrow_mut(|l| l.pending.metrics.record_error(error));
}

/// Counts a request the edge (or an overloaded origin) turned away, by reason.
pub fn record_refusal(reason: &str) {
    LOCAL.with_borrow_mut(|l| l.pending.metrics.count_refusal(reason));
}

/// Times one call to `origin`, answered or not.
pub fn observe_origin(origin: &str, ms: u64) {
    LOCAL.with_borrow_mut(|l| l.pending.metrics.observe_origin(origin, ms));
}

/// Times one Durable Object call.
pub fn observe_durable_object(binding: &str, command: &str, ms: u64) {
    LOCAL.with_borrow_mut(|l| {
        l.pending
            .metrics
            .observe_durable_object(binding, command, ms)
    });
}

/// Counts one call to `origin` made while its breaker was closed.
pub fn record_origin_call(origin: &str, failed: bool, slow: bool) {
    LOCAL.with_borrow_mut(|l| {
        let c: &mut Counts = l.pending.breakers.entry(origin.to_owned()).or_default();
        c.calls += 1;
        c.failures += u32::from(failed);
        c.slow += u32::from(slow);
    });
}

/// Whether a report is due; if so the caller runs [`report`] after the answer.
pub fn report_due(config: &EdgeConfig) -> bool {
    let now = now_ms();
    LOCAL.with_borrow_mut(|l| {
        let due =
            !l.reporting && now - l.last_report_ms >= config.control_report.as_millis() as f64;
        if due {
            l.reporting = true;
        }
        due
    })
}

/// Sends the pending counts and `concurrency` (this interval's measurements) to `CONTROL`
/// (through the isolate's shard among `shards`), keeps the status it answers and returns the
/// fleet's concurrency limits in it. On failure the counts are put back for the next report and
/// the old status stays.
pub async fn report(env: Env, shards: u64, concurrency: GlobalLimits) -> Option<GlobalLimits> {
    let mut pending = LOCAL.with_borrow_mut(|l| std::mem::take(&mut l.pending));
    pending.concurrency = concurrency;
    let result = control::report(&env, shards, &pending).await;
    LOCAL.with_borrow_mut(|l| {
        l.reporting = false;
        l.last_report_ms = now_ms();
        match result {
            Ok(status) => {
                let limits = status.limits.clone();
                l.status = Some(status);
                Some(limits)
            }
            Err(e) => {
                worker::console_warn!("CONTROL report failed, kept for the next one: {e}");
                l.pending.put_back(pending);
                None
            }
        }
    })
}

/// May a request go to the origin now? `Ok(None)`: yes, as ordinary traffic. `Ok(Some(id))`:
/// yes, as half-open probe `id` (report it with [`probe_done`]). `Err(ms)`: no, the breaker is
/// open for about `ms` more.
pub async fn breaker_permit(env: &Env, origin: &str) -> Result<Option<u64>, u64> {
    let Some(view) = status().breakers.get(origin).copied() else {
        return Ok(None);
    };
    let now = now_millis();
    match view.phase {
        Phase::Closed => return Ok(None),
        Phase::Open => {
            if let Some(until) = view.open_until_ms.filter(|&u| u > now) {
                return Err(until - now);
            }
        }
        Phase::HalfOpen => {}
    }
    match control::acquire(env, origin).await {
        Ok(Permit::Allowed) => {
            adopt(
                origin,
                View {
                    phase: Phase::Closed,
                    open_until_ms: None,
                },
            );
            Ok(None)
        }
        Ok(Permit::Probe { id }) => Ok(Some(id)),
        Ok(Permit::Rejected { retry_after_ms }) => {
            // Treat it as open until then, so this isolate's next requests do not ask again.
            adopt(
                origin,
                View {
                    phase: Phase::Open,
                    open_until_ms: Some(now_millis() + retry_after_ms.max(1)),
                },
            );
            Err(retry_after_ms.max(1))
        }
        // CONTROL unreachable while the breaker is open: stay closed to the origin a little
        // longer rather than flood it.
        Err(e) => {
            worker::console_warn!("breaker permit: CONTROL unreachable: {e}");
            Err(1_000)
        }
    }
}

/// Reports probe `id`'s result and adopts the breaker state `CONTROL` answers.
pub async fn probe_done(env: &Env, origin: &str, id: u64, success: bool, latency_ms: u64) {
    let probe = ReportProbe {
        origin: origin.to_owned(),
        id,
        success,
        latency_ms,
    };
    match control::report_probe(env, probe).await {
        Ok(view) => adopt(origin, view),
        Err(e) => worker::console_warn!("breaker probe {id}: report failed: {e}"),
    }
}

/// Takes `view` as `origin`'s breaker's state until the next report.
fn adopt(origin: &str, view: View) {
    LOCAL.with_borrow_mut(|l| {
        let status = l.status.get_or_insert_with(Status::default);
        if view.phase == Phase::Closed {
            status.breakers.remove(origin);
        } else {
            status.breakers.insert(origin.to_owned(), view);
        }
    });
}
