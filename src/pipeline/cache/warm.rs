//! Cache warming from the cron trigger (`CACHE_WARM`): paths kept fresh before they expire, so
//! the first visitor after an expiry does not wait for the origin.

use super::fill::Fill;
use super::{WARM_AHEAD_SECS, now, options};
use crate::bindings::control::purge_log;
use crate::bindings::tiers;
use crate::upstream::Outbound;
use breakwater_core::cache::HeaderList;
use breakwater_core::config::EdgeConfig;
use breakwater_core::intake;
use breakwater_core::policy::Mode;
use std::rc::Rc;
use worker::{Env, Method};

/// Refreshes the configured warm set (`CACHE_WARM`) from the cron trigger: each path whose
/// stored response is missing, purged, or fresh for less than [`WARM_AHEAD_SECS`] is fetched
/// (conditionally, when stored) and written to its route's tiers.
pub async fn warm(env: &Env, config: &Rc<EdgeConfig>) {
    let log = purge_log::current(env, config.purge_sync).await;
    for path_and_query in &config.warm {
        let (path, query) = intake::split_raw_url(path_and_query);
        let Some(route) = config.cache.route(path).filter(|r| r.mode != Mode::Bypass) else {
            worker::console_warn!("CACHE_WARM: {path_and_query} has no caching route; skipped");
            continue;
        };
        let no_headers = HeaderList::new();
        let key = route.key.key(path, query, |_| None);
        let found = tiers::find(env, &route.tiers, &key, &log).await;
        let opts = options(route);
        if let Some(f) = &found {
            let entry = f.stored.entry();
            let fresh_left = entry
                .lifetime(&opts)
                .seconds
                .saturating_sub(entry.current_age(now()));
            if fresh_left > WARM_AHEAD_SECS {
                continue;
            }
        }
        let fill = Fill {
            env: env.clone(),
            config: config.clone(),
            route: route.clone(),
            key,
            request_headers: no_headers,
            outbound: Outbound::internal(Method::Get, path_and_query),
            epoch: log.epoch(),
        };
        fill.run_to_completion(found.as_ref().map(|f| &f.stored))
            .await;
        worker::console_log!("CACHE_WARM: refreshed {path_and_query}");
    }
}
