//! Cache stage: answers GET/HEAD on routes with a cache policy from the tiers the route names
//! (isolate memory, Cache API, KV, in that order), or fills them from the origin (one fetch per
//! key at a time in an isolate, [`fill`]) with what RFC 9111 allows. Every answer on such a route
//! says what happened in `Cache-Status` (RFC 9211). Anything else, and a request that must not
//! share the tiers, goes on down the path unchanged.
//!
//! The decisions are core's ([`lookup`], [`Entry::store`], [`update_from_304`],
//! [`on_origin_error`], [`breakwater_core::purge::PurgeLog`]); this stage only moves bytes
//! between the runtime, the tiers and the upstream layer.

mod fill;
mod flight;
mod reply;
mod warm;

pub use warm::warm;

use super::Next;
use crate::bindings::control::purge_log;
use crate::bindings::tiers;
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::runtime::{now_millis, now_ms};
use crate::upstream::{self, Forward, Outbound};
use breakwater_core::cache::{
    CacheOptions, HeaderList, Lookup, RequestHead, Timestamp, lookup, lookup_miss, retention,
};
use breakwater_core::config::EdgeConfig;
use breakwater_core::intake::{self, Principal};
use breakwater_core::policy::{Authenticated, Mode, RoutePolicy, Tier};
use breakwater_core::singleflight::Timeouts;
use fill::{Fill, Filled};
use flight::Role;
use reply::{Status, from_origin, from_stored};
use worker::{Method, Response};

/// Largest body buffered for storing; a larger (or unsized) one streams through unstored, so a
/// big download never sits whole in the isolate's memory.
const MAX_BODY: u64 = 1024 * 1024;
/// The cron trigger refreshes a warm path whose freshness ends within this many seconds: the
/// cron period (1 minute in `wrangler.toml`) plus a minute of slack.
const WARM_AHEAD_SECS: u64 = 120;

pub async fn run(ex: &mut Exchange, next: Next) -> Result<Response, EdgeError> {
    let method = ex.req.method();
    if !matches!(method, Method::Get | Method::Head) {
        return next.run(ex).await;
    }
    let config = ex.config.clone();
    let Some(route) = config.cache.route(&ex.path) else {
        return next.run(ex).await;
    };
    let headers = ex.req.headers();
    // A verified token names a user: only routes whose answers do not depend on the user share
    // the tiers with them (`authenticated = "shared"`); there the edge has settled the token, so
    // the `Authorization` header is no longer a credential that makes the answer personal.
    let user = matches!(ex.principal, Principal::User(_));
    let shared_with_user = user && route.authenticated == Authenticated::Shared;
    // Credentials make a response personal: such requests never read or fill a shared tier.
    let credentialed =
        (headers.has("authorization")? && !shared_with_user) || headers.has("cookie")?;
    let reason = if route.mode == Mode::Bypass {
        Some("policy")
    } else if user && !shared_with_user {
        Some("authenticated")
    } else if credentialed {
        Some("credentials")
    } else if route.tiers.is_empty() {
        Some("no-tier")
    } else {
        None
    };
    if let Some(reason) = reason {
        let response = next.run(ex).await?;
        return from_origin(response, &Status::Bypass(reason));
    }
    cached(ex, route, method.as_ref()).await
}

fn now() -> Timestamp {
    Timestamp::from_secs((now_ms() / 1000.0) as u64)
}

/// How the route's policy tunes RFC 9111.
fn options(route: &RoutePolicy) -> CacheOptions<'_> {
    let force = route.mode == Mode::Force;
    CacheOptions {
        keyed_headers: &route.key.headers,
        stale_while_revalidate: u64::from(route.stale_while_revalidate),
        stale_if_error: u64::from(route.stale_if_error),
        // Force: the policy's ceiling is the lifetime, whatever the origin said.
        min_lifetime: if force {
            route.ttl.ceiling.map_or(0, u64::from)
        } else {
            u64::from(route.ttl.floor)
        },
        max_lifetime: route.ttl.ceiling.map(u64::from),
        force,
        ..CacheOptions::default()
    }
}

async fn cached(
    ex: &mut Exchange,
    route: &RoutePolicy,
    method: &str,
) -> Result<Response, EdgeError> {
    let raw_url = ex.req.inner().url();
    let (_, query) = intake::split_raw_url(&raw_url);
    // A token holder on a shared route is served as anyone would be: the verified header must
    // not make core's RFC 9111 §3.5 rule refuse to store or serve (it is never forwarded here).
    let request_headers: HeaderList = ex
        .req
        .headers()
        .entries()
        .filter(|(name, _)| {
            !(name == "authorization" && matches!(ex.principal, Principal::User(_)))
        })
        .collect();
    let key = route.key.key(&ex.path, query, |name| {
        request_headers.get(name).map(|v| v.into_owned())
    });
    let opts = options(route);
    let request = RequestHead::new(method, &request_headers);

    let log = purge_log::current(&ex.env, ex.config.purge_sync).await;
    let found = tiers::find(&ex.env, &route.tiers, &key, &log).await;
    let decision = match &found {
        Some(f) => lookup(f.stored.entry(), &request, now(), &opts),
        None => lookup_miss(&request),
    };
    if let Some(found) = &found
        && decision.serves_stored()
    {
        promote(ex, route, found);
        if decision == Lookup::StaleWhileRevalidate {
            refresh_in_background(ex, route, &key, &request_headers, found, log.epoch()).await?;
        }
        // A stale answer (stale-while-revalidate, max-stale) names its reason in the detail.
        let detail = (decision != Lookup::Fresh).then(|| decision.as_str());
        let status = Status::Hit {
            tier: found.tier,
            detail,
        };
        return from_stored(&found.stored, &request, now(), &status);
    }
    if decision == Lookup::GatewayTimeout {
        return reply::only_if_cached();
    }
    // HEAD cannot fill the tiers (no body to store); forward it as a plain miss.
    if method == "HEAD" {
        let response = fetch_shared(ex, route).await?;
        return from_origin(response, &Status::Miss(None));
    }

    // Held to the end, tier writes included, so the waiters find the result in any tier.
    let _leader = match flight::join(&key, now_millis(), flight_timeouts(&ex.config)) {
        Role::Lead(leader) => leader,
        Role::Follow { signal, wait_ms } => {
            if flight::wait(signal, wait_ms).await {
                let log = purge_log::current(&ex.env, ex.config.purge_sync).await;
                if let Some(found) = tiers::find(&ex.env, &route.tiers, &key, &log).await
                    && lookup(found.stored.entry(), &request, now(), &opts).serves_stored()
                {
                    return from_stored(
                        &found.stored,
                        &request,
                        now(),
                        &Status::Collapsed(found.tier),
                    );
                }
            }
            // The leader stored nothing we can use, or took too long: fetch ourselves, unled.
            let response = fetch_shared(ex, route).await?;
            return from_origin(response, &Status::Miss(Some("collapse-failed")));
        }
    };

    let fill = Fill {
        env: ex.env.clone(),
        config: ex.config.clone(),
        route: route.clone(),
        key,
        request_headers: request_headers.clone(),
        outbound: Outbound::from_exchange(ex, Forward::Shared(&route.key.headers)).await?,
        epoch: log.epoch(),
    };
    let started = now_ms();
    let filled = fill.run(found.as_ref().map(|f| &f.stored)).await;
    ex.timing.record("origin", now_ms() - started);
    match filled? {
        Filled::Stored {
            stored,
            status,
            writes,
        } => {
            // Awaited, not deferred: a miss already waits on the origin, and the next request,
            // in any isolate, should find what this one paid for.
            writes.await;
            from_stored(&stored, &request, now(), &status)
        }
        Filled::ServedStale { stored, detail } => {
            let tier = found.map_or(Tier::Memory, |f| f.tier);
            let status = Status::Hit {
                tier,
                detail: Some(detail),
            };
            from_stored(&stored, &request, now(), &status)
        }
        Filled::NotStored { response, reason } => {
            from_origin(response, &Status::Miss(Some(reason)))
        }
    }
}

/// A leader is given the origin timeout plus a margin before followers stop trusting it.
fn flight_timeouts(config: &EdgeConfig) -> Timeouts {
    let origin_timeout_ms = config.origin_timeout.as_millis() as u64;
    Timeouts {
        max_leader_age_ms: origin_timeout_ms + 1000,
        max_follower_wait_ms: origin_timeout_ms,
    }
}

/// Copies a lower tier's hit into the tiers above it: memory now, the Cache API after the answer.
fn promote(ex: &Exchange, route: &RoutePolicy, found: &tiers::Found) {
    let above = tiers::above(&route.tiers, found.tier);
    if above.is_empty() {
        return;
    }
    let keep = retention(found.stored.entry(), now(), &options(route));
    let writes = tiers::write(
        &ex.env,
        &above,
        &found.stored,
        keep,
        ex.config.memory_tier_bytes,
    );
    ex.ctx.wait_until(writes);
}

/// Starts a `stale-while-revalidate` refresh after the answer, unless one is already running
/// for this key in the isolate.
async fn refresh_in_background(
    ex: &mut Exchange,
    route: &RoutePolicy,
    key: &str,
    request_headers: &HeaderList,
    found: &tiers::Found,
    epoch: u64,
) -> Result<(), EdgeError> {
    let Role::Lead(leader) = flight::join(key, now_millis(), flight_timeouts(&ex.config)) else {
        return Ok(());
    };
    let fill = Fill {
        env: ex.env.clone(),
        config: ex.config.clone(),
        route: route.clone(),
        key: key.to_owned(),
        request_headers: request_headers.clone(),
        outbound: Outbound::from_exchange(ex, Forward::Shared(&route.key.headers)).await?,
        epoch,
    };
    let stored = found.stored.clone();
    ex.ctx.wait_until(async move {
        fill.run_to_completion(Some(&stored)).await;
        drop(leader);
    });
    Ok(())
}

/// The request as a shared fill would send it (keyed headers only), unstored: a `HEAD`, or a
/// follower whose leader stored nothing usable. Timed as `origin`.
async fn fetch_shared(ex: &mut Exchange, route: &RoutePolicy) -> Result<Response, EdgeError> {
    let started = now_ms();
    let outbound = Outbound::from_exchange(ex, Forward::Shared(&route.key.headers)).await?;
    let result = upstream::send(&ex.env, &ex.config, &outbound).await;
    ex.timing.record("origin", now_ms() - started);
    result
}
