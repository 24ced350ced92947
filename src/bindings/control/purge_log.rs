//! The isolate's view of the purge log kept by the `CONTROL` Durable Object (see
//! [`breakwater_core::purge`]): a copy refreshed at most every `PURGE_SYNC_MS`, and the calls that
//! record a purge.
//!
//! If `CONTROL` cannot be reached the isolate keeps its last copy and says so in the log: cached
//! answers keep flowing, and purges issued meanwhile take effect once it is back. The
//! alternative, bypassing every cache while one object is unreachable, would send the whole
//! load to the origin at the worst moment.

use super::client as control;
use crate::error::EdgeError;
use crate::runtime::now_ms;
use breakwater_core::config::EdgeConfig;
use breakwater_core::purge::{PurgeLog, PurgeRequest};
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

struct Snapshot {
    log: Rc<PurgeLog>,
    checked_ms: f64,
}

thread_local! {
    static COPY: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
}

/// The purge log, at most `PURGE_SYNC_MS` old (twice that through a shard).
pub async fn current(env: &Env, config: &EdgeConfig) -> Rc<PurgeLog> {
    let sync = config.purge_sync;
    let now = now_ms();
    let (known, due) = COPY.with_borrow_mut(|copy| match copy {
        Some(c) if now - c.checked_ms < sync.as_millis() as f64 => (Some(c.log.clone()), false),
        Some(c) => {
            // Claim the check, so concurrent requests use the old copy instead of asking too.
            c.checked_ms = now;
            (Some(c.log.clone()), true)
        }
        None => (None, true),
    });
    if !due && let Some(log) = known {
        return log;
    }
    let epoch = known.as_ref().map(|l| l.epoch());
    match control::fetch_log(env, config.control_shards, epoch).await {
        Ok(Some(log)) => remember(log),
        Ok(None) => known.unwrap_or_default(),
        Err(e) => {
            worker::console_warn!("purge log: CONTROL unreachable, using the last copy: {e}");
            known.unwrap_or_else(|| remember(PurgeLog::default()))
        }
    }
}

/// Records `request` (validated) in `CONTROL`; this isolate sees it at once, others within
/// `PURGE_SYNC_MS` (twice that through a shard). Returns the purge's epoch.
pub async fn purge(env: &Env, request: &PurgeRequest) -> Result<u64, EdgeError> {
    let log = control::purge(env, request)
        .await?
        .map_err(|reason| EdgeError::Internal(format!("CONTROL refused the purge: {reason}")))?;
    let epoch = log.epoch();
    remember(log);
    Ok(epoch)
}

fn remember(log: PurgeLog) -> Rc<PurgeLog> {
    let log = Rc::new(log);
    COPY.set(Some(Snapshot {
        log: log.clone(),
        checked_ms: now_ms(),
    }));
    log
}
