//! Admin stage: operator endpoints, behind `Authorization: Bearer <ADMIN_TOKEN>` (a secret;
//! without it the endpoints answer `403`).
//!
//! `POST /_breakwater/purge` with `{"tags": [..], "urls": [..], "prefixes": [..]}` purges every
//! tier at once: tags as the origin named them in `Cache-Tag`, URLs (path and query, normalised
//! by the route's key rules, every header variant), and key prefixes. It answers the purge's
//! epoch; purges reach this isolate at once and every other within `PURGE_SYNC_MS` (twice that
//! through a `CONTROL` shard).
//!
//! `GET /_breakwater/dead-events?limit=&after=` lists write-behind dead letters (with reason,
//! attempts and times), and `POST /_breakwater/dead-events/replay` with `{"ids": [..]}` or
//! `{"all": true}` puts them back on `EVENTS` ([`crate::writebehind::dead`]).
//!
//! Wrong tokens are counted per address (`RATE_LIMITER`, bucket `_breakwater-admin|<address>`):
//! past [`GUESSES_PER_MINUTE`] in a minute the next wrong one gets `429` with `Retry-After`
//! instead of `401`. The right token is never refused, so guessing from an operator's address
//! cannot lock the operator out; and a limiter that does not answer leaves the `401`.
//!
//! `GET /_breakwater/origins` shows the origin pool: per origin its weight, its active health
//! record (from `CONTROL`) and what the answering isolate knows (ejected or not, requests in
//! flight, latency average).
//!
//! `GET /_breakwater/metrics` is a Prometheus scrape target: the metrics every isolate reports
//! to `CONTROL`, summed there, with the controls' state as gauges
//! ([`breakwater_core::metrics`]). `GET /_breakwater/overview` is the same as JSON.

use crate::bindings::control::{client as control, dead_letters, purge_log};
use crate::bindings::tiers::memory;
use crate::config;
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::runtime::now_millis;
use crate::upstream::pool;
use crate::writebehind::dead;
use breakwater_core::admin_session;
use breakwater_core::auth::{bearer_matches, constant_time_eq};
use breakwater_core::config::EdgeConfig;
use breakwater_core::intake;
use breakwater_core::metrics;
use breakwater_core::purge::PurgeRequest;
use breakwater_core::ratelimit::{Mode, Quota};
use breakwater_core::writebehind::ReplayRequest;
use serde::Deserialize;
use worker::{Method, Response};

pub const PURGE_PATH: &str = "/_breakwater/purge";
/// Panics the isolate on purpose, when `PANIC_PROBE = "on"` (tests only).
pub const PANIC_PATH: &str = "/_breakwater/panic";
pub const DEAD_EVENTS_PATH: &str = "/_breakwater/dead-events";
pub const REPLAY_PATH: &str = "/_breakwater/dead-events/replay";
pub const ORIGINS_PATH: &str = "/_breakwater/origins";
pub const METRICS_PATH: &str = "/_breakwater/metrics";
/// Dashboard sign-in (`POST`, the token in a JSON body) and sign-out (`DELETE`).
pub const SESSION_PATH: &str = "/_breakwater/session";
pub const OVERVIEW_PATH: &str = "/_breakwater/overview";
/// Wrong admin tokens an address may present per minute before the next one is `429`.
pub const GUESSES_PER_MINUTE: u32 = 10;
/// The bucket's name before the address.
const GUESSES_BUCKET: &str = "_breakwater-admin";
/// Largest purge body read.
const MAX_BODY: u64 = 64 * 1024;
/// Largest replay body read: room for the most ids one replay may name.
const MAX_REPLAY_BODY: u64 = 128 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
}

/// Largest sign-in body read.
const MAX_SESSION_BODY: u64 = 4 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    token: String,
}

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    if ex.path == SESSION_PATH {
        return session(ex).await;
    }
    let (path, allow) = match ex.path.as_str() {
        PURGE_PATH => (PURGE_PATH, Method::Post),
        DEAD_EVENTS_PATH => (DEAD_EVENTS_PATH, Method::Get),
        REPLAY_PATH => (REPLAY_PATH, Method::Post),
        ORIGINS_PATH => (ORIGINS_PATH, Method::Get),
        METRICS_PATH => (METRICS_PATH, Method::Get),
        OVERVIEW_PATH => (OVERVIEW_PATH, Method::Get),
        PANIC_PATH if ex.config.panic_probe => (PANIC_PATH, Method::Post),
        _ => return Ok(Flow::Next),
    };
    if ex.head.method != allow {
        return Err(EdgeError::MethodNotAllowed {
            allow: if allow == Method::Get { "GET" } else { "POST" },
        });
    }
    match authorize(ex) {
        Err(EdgeError::Unauthorized) => return Err(count_guess(ex).await),
        other => other?,
    }
    match path {
        PURGE_PATH => purge_tags(ex).await,
        DEAD_EVENTS_PATH => list_dead_events(ex).await,
        ORIGINS_PATH => list_origins(ex).await,
        METRICS_PATH => metrics(ex, Format::Prometheus).await,
        OVERVIEW_PATH => metrics(ex, Format::Json).await,
        PANIC_PATH => panic_on_purpose(ex),
        _ => replay_dead_events(ex).await,
    }
}

/// The one deliberate panic in the edge, for the test of what a panic does to the requests in
/// flight and the next one (README § What a panic costs).
#[expect(clippy::panic, reason = "the probe exists to panic")]
fn panic_on_purpose(ex: &Exchange) -> Result<Flow, EdgeError> {
    panic!("panic probe (request {})", ex.request_id)
}

async fn list_origins(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let health = control::health(&ex.env).await?;
    let isolate = pool::snapshot(&ex.config);
    let origins: Vec<serde_json::Value> = ex
        .config
        .pool
        .origins
        .iter()
        .zip(isolate)
        .map(|(origin, isolate)| {
            serde_json::json!({
                "url": origin.url,
                "weight": origin.weight,
                "health": health.get(&origin.url).cloned().unwrap_or_default(),
                "isolate": isolate,
            })
        })
        .collect();
    let mut response = Response::from_json(&serde_json::json!({ "origins": origins }))?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(Flow::Respond(response))
}

enum Format {
    Prometheus,
    Json,
}

/// The metrics summed across the deployment (as of each isolate's last report) and the state of
/// the controls, from the root `CONTROL`: as a Prometheus scrape, or the same as JSON.
async fn metrics(ex: &mut Exchange, format: Format) -> Result<Flow, EdgeError> {
    let overview = control::overview(&ex.env).await?;
    let mut response = match format {
        Format::Prometheus => {
            let mut response = Response::ok(metrics::exposition(&overview))?;
            response
                .headers_mut()
                .set("content-type", metrics::CONTENT_TYPE)?;
            response
        }
        Format::Json => {
            // What only the answering isolate knows, beside the deployment's sums.
            let (keys, bytes) = memory::held();
            let mut json = serde_json::to_value(&overview)
                .map_err(|e| EdgeError::Internal(format!("overview: {e}")))?;
            let isolate = serde_json::json!({
                "memory_keys": keys,
                "memory_bytes": bytes,
                "memory_capacity": ex.config.memory_tier_bytes,
            });
            if let Some(fields) = json.as_object_mut() {
                fields.insert("isolate".into(), isolate);
            }
            Response::from_json(&json)?
        }
    };
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(Flow::Respond(response))
}

/// The admin token's checks, the same for every endpoint: `403` while no token is configured,
/// `401` for a missing or wrong one. A dashboard session's cookie stands in for the token; for
/// anything but a read, only with the request's own `Origin` (a page of this deployment sent
/// it), on top of the cookie's `SameSite=Strict`.
fn authorize(ex: &Exchange) -> Result<(), EdgeError> {
    let secrets = config::secrets(&ex.env);
    let token = secrets
        .admin_token
        .as_deref()
        .ok_or(EdgeError::AdminDisabled)?;
    if bearer_matches(ex.head.header("authorization").as_deref(), token) {
        return Ok(());
    }
    let session = ex
        .head
        .header("cookie")
        .is_some_and(|cookie| admin_session::valid(token, &cookie, now_s()));
    let read = matches!(ex.head.method, Method::Get | Method::Head);
    let same_origin = ex.head.header("origin").as_deref() == Some(own_origin(&ex.head.url));
    if session && (read || same_origin) {
        return Ok(());
    }
    Err(EdgeError::Unauthorized)
}

/// `scheme://host[:port]` of a request URL, as a browser's `Origin` header spells it.
fn own_origin(url: &str) -> &str {
    let host_start = url.find("://").map_or(0, |i| i + 3);
    let end = url
        .get(host_start..)
        .and_then(|rest| rest.find('/'))
        .map_or(url.len(), |i| host_start + i);
    url.get(..end).unwrap_or(url)
}

fn now_s() -> u64 {
    now_millis() / 1000
}

/// `POST` opens a dashboard session for the right token (`204` with the cookie; a wrong one
/// counts as a guess, as on every endpoint); `DELETE` ends it.
async fn session(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let set_cookie = match ex.head.method {
        Method::Post => {
            let secrets = config::secrets(&ex.env);
            let token = secrets
                .admin_token
                .clone()
                .ok_or(EdgeError::AdminDisabled)?;
            let bytes = ex.body(MAX_SESSION_BODY).await?;
            let body: SessionBody = serde_json::from_slice(&bytes)
                .map_err(|e| EdgeError::InvalidBody(e.to_string()))?;
            if !constant_time_eq(body.token.as_bytes(), token.as_bytes()) {
                return Err(count_guess(ex).await);
            }
            admin_session::set_cookie(&token, now_s())
        }
        Method::Delete => admin_session::clear_cookie(),
        _ => {
            return Err(EdgeError::MethodNotAllowed {
                allow: "POST, DELETE",
            });
        }
    };
    let mut response = Response::empty()?.with_status(204);
    response.headers_mut().set("set-cookie", &set_cookie)?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(Flow::Respond(response))
}

/// Counts a wrong token against its address: `Unauthorized` while within the quota (or while
/// the limiter does not answer), a `429` past it.
async fn count_guess(ex: &mut Exchange) -> EdgeError {
    let quotas = [Quota {
        name: "admin-guesses".to_owned(),
        limit: GUESSES_PER_MINUTE,
        period_ms: 60_000,
        burst: GUESSES_PER_MINUTE,
    }];
    let object = format!("{GUESSES_BUCKET}|{}", ex.principal.key());
    match super::admission::charge(ex, &object, &quotas, 1, Mode::Exact).await {
        Err(refusal) => refusal,
        Ok(_) => EdgeError::Unauthorized,
    }
}

async fn list_dead_events(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    // The runtime serialised it, so it parses.
    let url = worker::Url::parse(&ex.head.url)
        .map_err(|e| EdgeError::Internal(format!("request URL: {e}")))?;
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let limit = match query("limit") {
        None => dead_letters::DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=dead_letters::MAX_PAGE).contains(n))
            .ok_or_else(|| {
                EdgeError::InvalidBody(format!(
                    "limit {raw:?} must be a whole number from 1 to {}",
                    dead_letters::MAX_PAGE
                ))
            })?,
    };
    let page = control::list_dead_letters(&ex.env, query("after").as_deref(), limit).await?;
    let mut response = Response::from_json(&page)?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(Flow::Respond(response))
}

async fn replay_dead_events(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let bytes = ex.body(MAX_REPLAY_BODY).await?;
    let request = ReplayRequest::parse(&bytes).map_err(EdgeError::InvalidBody)?;
    let replayed = dead::replay(&ex.env, &request)
        .await
        .map_err(|e| EdgeError::QueueUnavailable(e.to_string()))?;
    worker::console_log!(
        "dead letters: replayed {} (not found {}, skipped {}; request {})",
        replayed.replayed,
        replayed.not_found.len(),
        replayed.skipped.len(),
        ex.request_id
    );
    let mut response = Response::from_json(&replayed)?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(Flow::Respond(response))
}

async fn purge_tags(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let bytes = ex.body(MAX_BODY).await?;
    let body: PurgeBody =
        serde_json::from_slice(&bytes).map_err(|e| EdgeError::InvalidBody(e.to_string()))?;
    let request = PurgeRequest {
        keys: body
            .urls
            .iter()
            .map(|url| url_key(&ex.config, url))
            .collect::<Result<_, _>>()?,
        tags: body.tags,
        prefixes: body.prefixes,
    };
    request.validate()?;
    let epoch = purge_log::purge(&ex.env, &request).await?;
    worker::console_log!(
        "purge {epoch}: {} tags, {} urls, {} prefixes (request {})",
        request.tags.len(),
        request.keys.len(),
        request.prefixes.len(),
        ex.request_id
    );
    Ok(Flow::Respond(Response::from_json(&serde_json::json!({
        "epoch": epoch,
        "tags": request.tags,
        "keys": request.keys,
        "prefixes": request.prefixes,
    }))?))
}

/// The cache key a URL purge names (see [`breakwater_core::policy::CachePolicy::url_key`]).
fn url_key(config: &EdgeConfig, url: &str) -> Result<String, EdgeError> {
    if !url.starts_with('/') {
        return Err(EdgeError::InvalidBody(format!(
            "url {url:?} must be a path starting with /"
        )));
    }
    let (path, query) = intake::split_raw_url(url);
    Ok(config.cache.url_key(path, query))
}

#[cfg(test)]
mod tests {
    use super::own_origin;

    #[test]
    fn the_own_origin_is_scheme_host_and_port() {
        for (url, origin) in [
            (
                "https://shop.example.com/_breakwater/purge",
                "https://shop.example.com",
            ),
            (
                "http://127.0.0.1:8787/_breakwater/x?y=1",
                "http://127.0.0.1:8787",
            ),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ] {
            assert_eq!(own_origin(url), origin);
        }
    }
}
