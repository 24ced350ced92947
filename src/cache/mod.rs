//! Stage 3, cache: answers GET/HEAD on routes with a cache policy from the tiers the route names
//! (isolate memory, Cache API, KV, in that order), or fetches from the origin (one fetch per key
//! at a time in an isolate) and stores what RFC 9111 allows in every tier. Every answer on such a
//! route says what happened in `Cache-Status` (RFC 9211).
//!
//! The decisions are core's ([`lookup`], [`Entry::store`], [`update_from_304`],
//! [`on_origin_error`], [`breakwater_core::purge::PurgeLog`]); this stage only moves bytes
//! between the runtime, the tiers and the origin. [`Fill`] is the one way the cache is filled
//! from the origin: on a miss, in a `stale-while-revalidate` refresh, and by the cron trigger.

mod flight;
mod memory;
mod reply;
mod tiers;

use crate::error::EdgeError;
use crate::exchange::{Exchange, now_ms};
use crate::origin::{self, Outbound};
use crate::pipeline::Flow;
use crate::purge;
use breakwater_core::cache::{
    CacheOptions, Entry, HeaderList, Lookup, OnOriginError, Record, RequestHead, Revalidated,
    Timestamp, conditional_headers, is_origin_error, lookup, lookup_miss, on_origin_error,
    retention, update_from_304,
};
use breakwater_core::config::EdgeConfig;
use breakwater_core::intake::{self, Principal};
use breakwater_core::policy::{Authenticated, Mode, RoutePolicy, Tier};
use breakwater_core::singleflight::Timeouts;
use flight::Role;
use futures_util::future::LocalBoxFuture;
use memory::Stored;
use reply::{Status, from_origin, from_stored};
use std::rc::Rc;
use worker::{Env, Method, Response};

/// Largest body buffered for storing; a larger (or unsized) one streams through unstored, so a
/// big download never sits whole in the isolate's memory.
const MAX_BODY: u64 = 1024 * 1024;
/// The cron trigger refreshes a warm path whose freshness ends within this many seconds: the
/// cron period (1 minute in `wrangler.toml`) plus a minute of slack.
const WARM_AHEAD_SECS: u64 = 120;

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let method = ex.req.method();
    if !matches!(method, Method::Get | Method::Head) {
        return Ok(Flow::Next);
    }
    let config = ex.config.clone();
    let Some(route) = config.cache.route(&ex.path) else {
        return Ok(Flow::Next);
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
        let response = fetch_origin(ex, None).await?;
        return Ok(Flow::Respond(from_origin(
            response,
            &Status::Bypass(reason),
        )?));
    }
    Ok(Flow::Respond(cached(ex, route, method.as_ref()).await?))
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

    let log = purge::current(&ex.env, ex.config.purge_sync).await;
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
        let response = fetch_origin(ex, Some(&route.key.headers)).await?;
        return from_origin(response, &Status::Miss(None));
    }

    // Held to the end, tier writes included, so the waiters find the result in any tier.
    let _leader = match flight::join(&key, now_ms() as u64, flight_timeouts(&ex.config)) {
        Role::Lead(leader) => leader,
        Role::Follow { signal, wait_ms } => {
            if flight::wait(signal, wait_ms).await {
                let log = purge::current(&ex.env, ex.config.purge_sync).await;
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
            let response = fetch_origin(ex, Some(&route.key.headers)).await?;
            return from_origin(response, &Status::Miss(Some("collapse-failed")));
        }
    };

    let fill = Fill {
        env: ex.env.clone(),
        config: ex.config.clone(),
        route: route.clone(),
        key,
        request_headers: request_headers.clone(),
        outbound: Outbound::from_exchange(ex, Some(&route.key.headers)).await?,
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
    let Role::Lead(leader) = flight::join(key, now_ms() as u64, flight_timeouts(&ex.config)) else {
        return Ok(());
    };
    let fill = Fill {
        env: ex.env.clone(),
        config: ex.config.clone(),
        route: route.clone(),
        key: key.to_owned(),
        request_headers: request_headers.clone(),
        outbound: Outbound::from_exchange(ex, Some(&route.key.headers)).await?,
        epoch,
    };
    let stored = found.stored.clone();
    ex.ctx.wait_until(async move {
        fill.run_to_completion(Some(&stored)).await;
        drop(leader);
    });
    Ok(())
}

/// Refreshes the configured warm set (`CACHE_WARM`) from the cron trigger: each path whose
/// stored response is missing, purged, or fresh for less than [`WARM_AHEAD_SECS`] is fetched
/// (conditionally, when stored) and written to its route's tiers.
pub async fn warm(env: &Env, config: &Rc<EdgeConfig>) {
    let log = purge::current(env, config.purge_sync).await;
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
            outbound: Outbound::internal(path_and_query),
            epoch: log.epoch(),
        };
        fill.run_to_completion(found.as_ref().map(|f| &f.stored))
            .await;
        worker::console_log!("CACHE_WARM: refreshed {path_and_query}");
    }
}

/// Everything needed to fill the cache for one key from the origin, owned, so the same code runs
/// in the foreground, after the answer, and from the cron trigger.
struct Fill {
    env: Env,
    config: Rc<EdgeConfig>,
    route: RoutePolicy,
    key: String,
    /// The client's headers: `Vary`'s secondary key and the request directives read them.
    request_headers: HeaderList,
    /// What goes to the origin: keyed headers only (see [`Outbound::from_exchange`]).
    outbound: Outbound,
    /// The purge epoch known before asking the origin; what is stored is stamped with it.
    epoch: u64,
}

/// What filling produced.
enum Filled {
    /// Stored (or re-stored after a `304`): serve it. `writes` fills the tiers below memory.
    Stored {
        stored: Rc<Stored>,
        status: Status,
        writes: LocalBoxFuture<'static, ()>,
    },
    /// The origin failed and the stored response may answer instead (stale-if-error).
    ServedStale {
        stored: Rc<Stored>,
        detail: &'static str,
    },
    /// The origin's response, relayed as is: it may not be stored, for `reason`.
    NotStored {
        response: Response,
        reason: &'static str,
    },
}

impl Fill {
    /// Asks the origin, conditionally when `stored` has a validator, and stores what RFC 9111
    /// and the route allow. An origin error with a stored response falls back to it where
    /// `stale-if-error` allows.
    async fn run(&self, stored: Option<&Rc<Stored>>) -> Result<Filled, EdgeError> {
        let opts = options(&self.route);
        let request = RequestHead::new("GET", &self.request_headers);
        let mut outbound = self.outbound.clone();
        if let Some(s) = stored {
            outbound.headers.extend(
                conditional_headers(s.entry())
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned())),
            );
        }
        let request_time = now();
        let fetched = origin::send(&self.env, &self.config, &outbound).await;
        let response_time = now();

        let failed = match &fetched {
            Ok(r) => is_origin_error(r.status_code()),
            Err(e) => matches!(
                e,
                EdgeError::OriginUnreachable(_)
                    | EdgeError::OriginTimeout(_)
                    | EdgeError::BreakerOpen { .. }
            ),
        };
        if failed && let Some(s) = stored {
            let detail = match on_origin_error(s.entry(), &request, now(), &opts) {
                OnOriginError::ServeFresh => Some("origin-error"),
                OnOriginError::ServeStale => Some("stale-if-error"),
                OnOriginError::Fail(_) => None,
            };
            if let Some(detail) = detail {
                return Ok(Filled::ServedStale {
                    stored: s.clone(),
                    detail,
                });
            }
        }
        let mut response = fetched?;
        let response_headers: HeaderList = response.headers().entries().collect();

        if response.status_code() == 304
            && let Some(s) = stored
        {
            let confirmed = update_from_304(
                s.entry(),
                &request,
                &response_headers,
                request_time,
                response_time,
                &opts,
            );
            return match confirmed {
                Revalidated::Updated(entry) => {
                    Ok(self.keep(entry, s.body.clone(), Status::Revalidated))
                }
                // Still ours to serve this once, but no longer storable: relay the stored body
                // with the updated headers.
                Revalidated::Uncacheable { headers, reason } => Ok(Filled::NotStored {
                    response: reply::relay(s.entry().status(), &headers, &s.body)?,
                    reason: reason.as_str(),
                }),
                // The 304 is for another representation: ask again, unconditionally.
                Revalidated::Mismatch => Box::pin(self.run(None)).await,
            };
        }

        let entry = match Entry::store(
            &request,
            response.status_code(),
            &response_headers,
            request_time,
            response_time,
            &opts,
        ) {
            Ok(entry) => entry,
            Err(reason) => {
                return Ok(Filled::NotStored {
                    response,
                    reason: reason.as_str(),
                });
            }
        };
        let length = response_headers
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        if length.is_none_or(|len| len > MAX_BODY) {
            return Ok(Filled::NotStored {
                response,
                reason: "too-large",
            });
        }
        let body: Rc<[u8]> = response.bytes().await?.into();
        Ok(self.keep(entry, body, Status::Stored))
    }

    /// Stores `entry` + `body` in memory now and returns the writes to the other tiers.
    fn keep(&self, entry: Entry, body: Rc<[u8]>, status: Status) -> Filled {
        let keep = retention(&entry, now(), &options(&self.route));
        let stored = Rc::new(Stored {
            record: Record {
                key: self.key.clone(),
                epoch: self.epoch,
                entry,
            },
            body,
        });
        let writes = tiers::write(
            &self.env,
            &self.route.tiers,
            &stored,
            keep,
            self.config.memory_tier_bytes,
        );
        Filled::Stored {
            stored,
            status,
            writes: Box::pin(writes),
        }
    }

    /// [`Fill::run`] with its tier writes awaited, for work that is already off the request
    /// path. Failures are logged: the stored response stays as it was.
    async fn run_to_completion(&self, stored: Option<&Rc<Stored>>) {
        match self.run(stored).await {
            Ok(Filled::Stored { writes, .. }) => writes.await,
            Ok(Filled::ServedStale { .. }) => {
                worker::console_warn!(
                    "refresh of {:?}: the origin failed; kept the stored response",
                    self.key
                )
            }
            Ok(Filled::NotStored { reason, .. }) => {
                worker::console_warn!("refresh of {:?}: not storable ({reason})", self.key)
            }
            Err(e) => worker::console_warn!("refresh of {:?} failed: {e}", self.key),
        }
    }
}

/// The origin proxy, timed under its own `Server-Timing` name.
async fn fetch_origin(
    ex: &mut Exchange,
    keep_only: Option<&[String]>,
) -> Result<Response, EdgeError> {
    let started = now_ms();
    let result = origin::fetch(ex, keep_only).await;
    ex.timing.record("origin", now_ms() - started);
    result
}
