//! Stage 3, cache: answers GET/HEAD on routes with a cache policy from the isolate-memory tier,
//! or fetches from the origin (one fetch per key at a time) and stores what RFC 9111 allows.
//! Every answer on such a route says what happened in `Cache-Status` (RFC 9211).
//!
//! The decisions are core's ([`lookup`], [`Entry::store`], [`on_origin_error`]); this stage
//! only moves bytes between the runtime, the tier and the origin.

mod flight;
mod memory;
mod reply;

use crate::error::EdgeError;
use crate::exchange::{Exchange, now_ms};
use crate::origin;
use crate::pipeline::Flow;
use breakwater_core::cache::{
    CacheOptions, Entry, HeaderList, Lookup, OnOriginError, RequestHead, Timestamp,
    is_origin_error, lookup, lookup_miss, on_origin_error,
};
use breakwater_core::intake;
use breakwater_core::policy::{Mode, RoutePolicy, Tier};
use breakwater_core::singleflight::Timeouts;
use flight::Role;
use memory::Stored;
use reply::{Status, from_origin, from_stored};
use std::rc::Rc;
use worker::{Method, Response};

/// Largest body buffered for storing; a larger (or unsized) one streams through unstored, so a
/// big download never sits whole in the isolate's memory.
const MAX_BODY: u64 = 1024 * 1024;

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
    // Credentials make a response personal: such requests never read or fill a shared tier.
    let credentialed = headers.has("authorization")? || headers.has("cookie")?;
    let reason = if route.mode == Mode::Bypass {
        Some("policy")
    } else if credentialed {
        Some("credentials")
    } else if !route.tiers.contains(&Tier::Memory) {
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

/// The request's headers as core reads them.
fn request_headers(ex: &Exchange) -> HeaderList {
    ex.req.headers().entries().collect()
}

fn now() -> Timestamp {
    Timestamp::from_secs((now_ms() / 1000.0) as u64)
}

fn options(route: &RoutePolicy) -> CacheOptions<'_> {
    CacheOptions {
        keyed_headers: &route.key.headers,
        stale_while_revalidate: u64::from(route.stale_while_revalidate),
        stale_if_error: u64::from(route.stale_if_error),
        min_lifetime: u64::from(route.ttl.floor),
        max_lifetime: route.ttl.ceiling.map(u64::from),
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
    let req_headers = request_headers(ex);
    let key = route.key.key(&ex.path, query, |name| {
        req_headers.get(name).map(|v| v.into_owned())
    });
    let opts = options(route);
    let request = RequestHead::new(method, &req_headers);
    let is_head = method == "HEAD";

    let stored = memory::get(&key);
    let decision = match &stored {
        Some(s) => lookup(&s.entry, &request, now(), &opts),
        None => lookup_miss(&request),
    };
    if let Some(s) = &stored
        && decision.serves_stored()
    {
        // A stale answer (stale-while-revalidate, max-stale) names its reason in the detail.
        let detail = (decision != Lookup::Fresh).then(|| decision.as_str());
        return from_stored(s, now(), is_head, &Status::Hit(detail));
    }
    if decision == Lookup::GatewayTimeout {
        return reply::only_if_cached();
    }
    // HEAD cannot fill the tier (no body to store); forward it as a plain miss.
    if is_head {
        let response = fetch_origin(ex, Some(&route.key.headers)).await?;
        return from_origin(response, &Status::Miss(None));
    }

    // A leader is given the origin timeout plus a margin before followers stop trusting it.
    let origin_timeout_ms = ex.config.origin_timeout.as_millis() as u64;
    let timeouts = Timeouts {
        max_leader_age_ms: origin_timeout_ms + 1000,
        max_follower_wait_ms: origin_timeout_ms,
    };
    let leader = match flight::join(&key, now_ms() as u64, timeouts) {
        Role::Lead(leader) => leader,
        Role::Follow { signal, wait_ms } => {
            if flight::wait(signal, wait_ms).await
                && let Some(s) = memory::get(&key)
                && lookup(&s.entry, &request, now(), &opts).serves_stored()
            {
                return from_stored(&s, now(), false, &Status::Collapsed);
            }
            // The leader stored nothing we can use, or took too long: fetch ourselves, unled.
            let response = fetch_origin(ex, Some(&route.key.headers)).await?;
            return from_origin(response, &Status::Miss(Some("collapse-failed")));
        }
    };

    let request_time = now();
    let fetched = fetch_origin(ex, Some(&route.key.headers)).await;
    let response_time = now();
    let failed = match &fetched {
        Ok(r) => is_origin_error(r.status_code()),
        Err(e) => matches!(
            e,
            EdgeError::OriginUnreachable(_) | EdgeError::OriginTimeout(_)
        ),
    };
    if failed && let Some(s) = &stored {
        let status = match on_origin_error(&s.entry, &request, now(), &opts) {
            OnOriginError::ServeFresh => Some("origin-error"),
            OnOriginError::ServeStale => Some("stale-if-error"),
            OnOriginError::Fail(_) => None,
        };
        if let Some(detail) = status {
            return from_stored(s, now(), false, &Status::Hit(Some(detail)));
        }
    }
    let response = fetched?;
    let resp_headers: HeaderList = response.headers().entries().collect();
    let entry = match Entry::store(
        &request,
        response.status_code(),
        &resp_headers,
        request_time,
        response_time,
        &opts,
    ) {
        Ok(entry) => entry,
        Err(reason) => return from_origin(response, &Status::Miss(Some(reason.as_str()))),
    };
    let length = resp_headers
        .get("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_none_or(|len| len > MAX_BODY) {
        return from_origin(response, &Status::Miss(Some("too-large")));
    }
    let mut response = response;
    let body: Rc<[u8]> = response.bytes().await?.into();
    let stored = Rc::new(Stored { entry, body });
    let status = if memory::put(&key, stored.clone()) {
        Status::Stored
    } else {
        Status::Miss(Some("too-large"))
    };
    drop(leader);
    from_stored(&stored, now(), false, &status)
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
