//! Active health checks, run from the cron trigger: each origin of the pool whose check is due
//! (`ORIGINS.health.interval_ms` since the last, as `CONTROL` recorded it) gets a `GET` of the
//! health path, all at once, each with the check timeout; a `2xx` in time passes. The results go
//! to `CONTROL`, which keeps each origin's [`HealthRecord`](breakwater_core::pool::HealthRecord)
//! and hands the records to isolates with their next report
//! ([`crate::bindings::control::signals`]).
//!
//! The cron trigger sets the pace: checks run at most once per trigger, so the effective
//! interval is the longer of `interval_ms` and the cron schedule.

use super::call::send_once;
use super::outbound::Outbound;
use crate::bindings::control::client as control;
use crate::runtime::now_millis;
use breakwater_core::config::EdgeConfig;
use breakwater_core::control::Check;
use breakwater_core::pool::health::CheckResult;
use futures_util::future::join_all;
use std::time::Duration;
use worker::{Env, Method};

/// Checks the due origins and records the results.
pub async fn check(env: &Env, config: &EdgeConfig) {
    let health = &config.pool.health;
    let now = now_millis();
    let known = match control::health(env).await {
        Ok(known) => known,
        Err(e) => {
            worker::console_error!("health checks skipped: CONTROL unreachable: {e}");
            return;
        }
    };
    let due = config
        .pool
        .origins
        .iter()
        .filter(|o| known.get(&o.url).is_none_or(|r| r.due(health, now)));
    let checks = join_all(due.map(|o| async move {
        Check {
            origin: o.url.clone(),
            at_ms: now,
            result: probe(&o.url, &health.path, health.timeout_ms).await,
        }
    }))
    .await;
    if checks.is_empty() {
        return;
    }
    if let Err(e) = control::record_checks(env, checks).await {
        worker::console_error!("health checks not recorded: {e}");
    }
}

async fn probe(origin: &str, path: &str, timeout_ms: u64) -> CheckResult {
    let outbound = Outbound::internal(Method::Get, path);
    let url = format!("{origin}{}", outbound.path);
    // A public path: nothing to vouch for.
    match send_once(&url, &outbound, Duration::from_millis(timeout_ms), None).await {
        Ok(r) if (200..300).contains(&r.status_code()) => Ok(()),
        Ok(r) => Err(format!("answered {}", r.status_code())),
        Err(e) => Err(e.to_string()),
    }
}
