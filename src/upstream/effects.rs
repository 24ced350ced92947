//! After-write effects: what a write the origin accepted does at the edge. Core decides what it
//! makes stale ([`after_write`]); this records the purge in `CONTROL` before the answer leaves,
//! so the writer's next read is fresh. If the purge fails the write still stands: the entries
//! then live out their (short) lifetimes, and it is logged.

use super::outbound::Outbound;
use crate::bindings::control::purge_log;
use breakwater_core::cache::HeaderList;
use breakwater_core::config::EdgeConfig;
use breakwater_core::invalidate::after_write;
use worker::{Env, Response};

pub async fn purge_after_write(
    env: &Env,
    config: &EdgeConfig,
    outbound: &Outbound,
    response: &Response,
) {
    let headers: HeaderList = response.headers().entries().collect();
    let status = response.status_code();
    let method = outbound.method.as_ref();
    let Some(request) = after_write(method, status, &outbound.target, &headers, &config.cache)
    else {
        return;
    };
    if let Err(e) = purge_log::purge(env, &request).await {
        worker::console_error!(
            "request {}: purge after {status} {method} failed: {e}",
            outbound.request_id()
        );
    }
}
