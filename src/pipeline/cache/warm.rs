//! Cache warming from the cron trigger (`CACHE_WARM`): paths kept fresh before they expire, so
//! the first visitor after an expiry does not wait for the origin.

use super::fill::Fill;
use super::now;
use crate::bindings::control::purge_log;
use crate::bindings::tiers;
use crate::upstream::Outbound;
use breakwater_core::cache::{HeaderList, options, warm as warm_due, warms};
use breakwater_core::config::EdgeConfig;
use breakwater_core::intake;
use std::rc::Rc;
use worker::{Env, Method};

/// Refreshes the configured warm set (`CACHE_WARM`) from the cron trigger: each path whose
/// stored response is missing, purged, or fresh for less than [`WARM_AHEAD_SECS`](breakwater_core::cache::WARM_AHEAD_SECS) is fetched
/// (conditionally, when stored) and written to its route's tiers.
pub async fn warm(env: &Env, config: &Rc<EdgeConfig>) {
    let log = purge_log::current(env, config).await;
    for path_and_query in &config.warm {
        let (path, query) = intake::split_raw_url(path_and_query);
        let Some(route) = config.cache.route(path).filter(|r| warms(r)) else {
            worker::console_warn!("CACHE_WARM: {path_and_query} has no caching route; skipped");
            continue;
        };
        let no_headers = HeaderList::new();
        let key = route.key.key(path, query, |_| None);
        let found = tiers::find(env, &route.tiers, &key, &no_headers, &log).await;
        let stored = found.as_ref().and_then(|f| f.stored.clone());
        let entry = stored.as_ref().map(|s| s.entry());
        if !warm_due(entry, now(), &options(route)).needs_refresh() {
            continue;
        }
        let fill = Fill {
            env: env.clone(),
            config: config.clone(),
            route: route.clone(),
            key,
            request_headers: no_headers,
            outbound: Outbound::internal(Method::Get, path_and_query),
            epoch: log.epoch(),
            variants: found.map_or_else(|| Rc::new([]) as _, |f| f.variants),
        };
        fill.run_to_completion(stored.as_ref()).await;
        worker::console_log!("CACHE_WARM: refreshed {path_and_query}");
    }
}
