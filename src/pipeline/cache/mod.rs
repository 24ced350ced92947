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
use crate::bindings::tiers::{self, memory::Stored};
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::runtime::{now_millis, now_ms};
use crate::upstream::{self, Outbound};
use breakwater_core::cache::{
    AfterWait, Gate, HeaderList, Plan, RequestFacts, RequestHead, Timestamp, after_wait,
    flight_timeouts, gate, options, plan, shared_request_headers,
};
use breakwater_core::intake::{self, Principal};
use breakwater_core::policy::{RoutePolicy, Tier};
use fill::{Fill, Filled};
use flight::Role;
use reply::{Status, from_origin, from_stored};
use std::rc::Rc;
use worker::Response;

pub async fn run(ex: &mut Exchange, next: Next) -> Result<Response, EdgeError> {
    let config = ex.config.clone();
    let Some(route) = config.cache.route(&ex.path) else {
        return next.run(ex).await;
    };
    let method = ex.head.method.clone();
    let facts = RequestFacts {
        method: method.as_ref(),
        verified_user: matches!(ex.principal, Principal::User(_)),
        cookie: ex.head.has("cookie"),
    };
    match gate(route, &facts) {
        Gate::NextStage => next.run(ex).await,
        Gate::Bypass(reason) => {
            let response = next.run(ex).await?;
            answer(ex, response, Status::Bypass(reason.as_str()))
        }
        Gate::Tiers => cached(ex, route, method.as_ref()).await,
    }
}

fn now() -> Timestamp {
    Timestamp::from_secs((now_ms() / 1000.0) as u64)
}

async fn cached(
    ex: &mut Exchange,
    route: &RoutePolicy,
    method: &str,
) -> Result<Response, EdgeError> {
    let (_, query) = intake::split_raw_url(&ex.head.url);
    let user = matches!(ex.principal, Principal::User(_));
    // Only a verified user's differ from the request's own (no `Authorization`): no copy else.
    let request_headers = if user {
        Rc::new(shared_request_headers(ex.head.headers.iter(), true))
    } else {
        ex.head.headers.clone()
    };
    let key = route.key.key(&ex.path, query, |name| {
        request_headers.get(name).map(|v| v.into_owned())
    });
    let opts = options(route);
    let request = RequestHead::new(method, &request_headers);

    let log = purge_log::current(&ex.env, &ex.config).await;
    let found = tiers::find(&ex.env, &route.tiers, &key, &request_headers, &log).await;
    let stored = found.as_ref().and_then(|f| f.stored.clone());
    match plan(stored.as_ref().map(|s| s.entry()), &request, now(), &opts) {
        Plan::Serve { detail, refresh } => {
            if let (Some(found), Some(stored)) = (&found, &stored) {
                promote(ex, route, &key, found);
                if refresh {
                    let epoch = log.epoch();
                    refresh_in_background(ex, route, &key, &request_headers, epoch, found, stored)
                        .await?;
                }
                let status = Status::Hit {
                    tier: found.tier,
                    detail,
                };
                return serve(ex, stored, &request, status);
            }
            // `Serve` always comes with what was found; without it, fill like any miss.
        }
        Plan::OnlyIfCached => {
            ex.cache = Status::Miss(None).outcome();
            return reply::only_if_cached();
        }
        Plan::Forward => {
            let request_time = now();
            let response = fetch_shared(ex, route).await?;
            if let (Some(found), Some(stored)) = (&found, &stored)
                && method == "HEAD"
            {
                let freshen = fill::Freshen {
                    route,
                    key: &key,
                    found,
                    stored,
                };
                freshen.with_head(ex, &request, &response, request_time);
            }
            return answer(ex, response, Status::Miss(None));
        }
        Plan::Fill(_) => {}
    }

    // Held to the end, tier writes included, so the waiters find the result in any tier.
    let timeouts = flight_timeouts(ex.config.origin_timeout);
    let _leader = match flight::join(&key, now_millis(), timeouts) {
        Role::Lead(leader) => leader,
        Role::Follow { signal, wait_ms } => {
            let found = if flight::wait(signal, wait_ms).await {
                let log = purge_log::current(&ex.env, &ex.config).await;
                tiers::find(&ex.env, &route.tiers, &key, &request_headers, &log).await
            } else {
                None
            };
            let stored = found
                .as_ref()
                .and_then(|f| f.stored.clone().map(|s| (f.tier, s)));
            let entry = stored.as_ref().map(|(_, s)| s.entry());
            return match (after_wait(entry, &request, now(), &opts), stored) {
                (AfterWait::Collapsed, Some((tier, stored))) => {
                    let status = Status::Collapsed(tier);
                    serve(ex, &stored, &request, status)
                }
                // The leader stored nothing we can use, or took too long: fetch ourselves.
                (outcome, _) => {
                    let response = fetch_shared(ex, route).await?;
                    answer(ex, response, Status::Miss(Some(outcome.as_str())))
                }
            };
        }
    };

    let variants = found
        .as_ref()
        .map(|f| f.variants.clone())
        .unwrap_or_else(|| Rc::new([]));
    let fill = Fill::new(ex, route, &key, &request_headers, &variants, log.epoch()).await?;
    let started = now_ms();
    let filled = fill.run(stored.as_ref()).await;
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
            serve(ex, &stored, &request, status)
        }
        Filled::ServedStale { stored, detail } => {
            let tier = found.map_or(Tier::Memory, |f| f.tier);
            let status = Status::Hit {
                tier,
                detail: Some(detail),
            };
            serve(ex, &stored, &request, status)
        }
        Filled::NotStored { response, reason } => answer(ex, response, Status::Miss(Some(reason))),
    }
}

/// Answers from `stored` with `status` in `Cache-Status`, and counts it under that outcome.
fn serve(
    ex: &mut Exchange,
    stored: &Stored,
    request: &RequestHead<'_>,
    status: Status,
) -> Result<Response, EdgeError> {
    ex.cache = status.outcome();
    from_stored(stored, request, now(), &status)
}

/// Relays the origin's `response` with `status` in `Cache-Status`, and counts it under that
/// outcome.
fn answer(ex: &mut Exchange, response: Response, status: Status) -> Result<Response, EdgeError> {
    ex.cache = status.outcome();
    from_origin(response, &status)
}

/// Copies a lower tier's hit into the tiers above it: memory now, the Cache API after the answer.
/// Refreshes a stale hit after the answer, if this request leads `key`'s flight: one refresh
/// per key at a time in the isolate, and only the leader builds one.
async fn refresh_in_background(
    ex: &mut Exchange,
    route: &RoutePolicy,
    key: &str,
    request_headers: &HeaderList,
    epoch: u64,
    found: &tiers::Found,
    stored: &Rc<Stored>,
) -> Result<(), EdgeError> {
    let timeouts = flight_timeouts(ex.config.origin_timeout);
    let Role::Lead(leader) = flight::join(key, now_millis(), timeouts) else {
        return Ok(());
    };
    let fill = Fill::new(ex, route, key, request_headers, &found.variants, epoch).await?;
    let stored = stored.clone();
    ex.ctx.wait_until(async move {
        fill.run_to_completion(Some(&stored)).await;
        drop(leader);
    });
    Ok(())
}

fn promote(ex: &Exchange, route: &RoutePolicy, key: &str, found: &tiers::Found) {
    let above = tiers::above(&route.tiers, found.tier);
    if above.is_empty() {
        return;
    }
    let keep = fill::retention_of(&found.variants, &options(route));
    let writes = tiers::write(
        &ex.env,
        &above,
        key,
        &found.variants,
        keep,
        ex.config.memory_tier_bytes,
    );
    ex.ctx.wait_until(writes);
}

/// The request as the client sent it (the shared forwarding rules), relayed unstored: a `HEAD`,
/// a range or conditional with nothing stored, or a follower whose leader stored nothing usable.
/// Timed as `origin`.
async fn fetch_shared(ex: &mut Exchange, route: &RoutePolicy) -> Result<Response, EdgeError> {
    let started = now_ms();
    let outbound = Outbound::from_exchange(ex, fill::forward(route)).await?;
    let result = upstream::send(&ex.env, &ex.config, &outbound).await;
    ex.timing.record("origin", now_ms() - started);
    result
}
