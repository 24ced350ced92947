//! Stage 2, admin: operator endpoints, behind `Authorization: Bearer <ADMIN_TOKEN>` (a secret;
//! without it the endpoints answer `403`).
//!
//! `POST /_breakwater/purge` with `{"tags": [..], "urls": [..], "prefixes": [..]}` purges every
//! tier at once: tags as the origin named them in `Cache-Tag`, URLs (path and query, normalised
//! by the route's key rules, every header variant), and key prefixes. It answers the purge's
//! epoch; purges reach this isolate at once and every other within `PURGE_SYNC_MS`.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::purge;
use breakwater_core::auth::bearer_matches;
use breakwater_core::config::EdgeConfig;
use breakwater_core::intake;
use breakwater_core::purge::PurgeRequest;
use serde::Deserialize;
use worker::{Method, Response};

pub const PURGE_PATH: &str = "/_breakwater/purge";
/// The secret that opens the admin endpoints.
const TOKEN_NAME: &str = "ADMIN_TOKEN";
/// Largest purge body read.
const MAX_BODY: u64 = 64 * 1024;

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

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    if ex.path != PURGE_PATH {
        return Ok(Flow::Next);
    }
    if ex.req.method() != Method::Post {
        return Err(EdgeError::MethodNotAllowed { allow: "POST" });
    }
    let token = ex
        .env
        .secret(TOKEN_NAME)
        .map(|t| t.to_string())
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or(EdgeError::AdminDisabled)?;
    if !bearer_matches(ex.req.headers().get("authorization")?.as_deref(), &token) {
        return Err(EdgeError::Unauthorized);
    }
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
    let epoch = purge::purge(&ex.env, &request).await?;
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
