//! The request path at the edge: one ordered list of stages, in [`STAGES`]. Each stage either
//! answers or passes the request on; `finish` then stamps identity and timings on the answer.

use crate::error::EdgeError;
use crate::exchange::{Exchange, now_ms};
use crate::{
    admin, admission, assets, authenticate, cache, idempotency, intake, origin, respond, signals,
    writebehind,
};
use breakwater_core::config::{ConfigError, EdgeConfig};
use breakwater_core::headers::{REQUEST_ID, SERVER_TIMING, TRACEPARENT};
use breakwater_core::problem::Problem;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Context, Env, Request, Response, Result};

/// One step of the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Request id, trace context, principal; method, size and path validation.
    Intake,
    /// Operator endpoints (`/_breakwater/...`), behind the admin token.
    Admin,
    /// The content-hashed front end, served from the `ASSETS` binding.
    Assets,
    /// A bearer access token verified with the origin's keys (`ACCESS_TOKENS`); its subject
    /// becomes the principal. Invalid → `401`.
    Authenticate,
    /// Load shedding from the SLO burn rate, then GCRA rate limits (`RATE_LIMITER`).
    Admission,
    /// `WRITE_BEHIND` routes: the event is queued on `EVENTS` and answered `202` at once.
    WriteBehind,
    /// Unsafe requests with an `Idempotency-Key` run once per (principal, key) (`IDEMPOTENCY_POLICY`).
    Idempotency,
    /// GET/HEAD on routes with a cache policy: memory, Cache API and KV tiers, single-flight
    /// misses, stale serving.
    Cache,
    /// Proxy to the origin with a timeout.
    Origin,
}

/// The request path, in order.
pub const STAGES: [Stage; 9] = [
    Stage::Intake,
    Stage::Admin,
    Stage::Assets,
    Stage::Authenticate,
    Stage::Admission,
    Stage::WriteBehind,
    Stage::Idempotency,
    Stage::Cache,
    Stage::Origin,
];

impl Stage {
    /// The name used in `Server-Timing` and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Intake => "intake",
            Self::Admin => "admin",
            Self::Assets => "assets",
            Self::Authenticate => "auth",
            Self::Admission => "admission",
            Self::WriteBehind => "write-behind",
            Self::Idempotency => "idempotency",
            Self::Cache => "cache",
            Self::Origin => "origin",
        }
    }

    async fn run(self, ex: &mut Exchange) -> std::result::Result<Flow, EdgeError> {
        match self {
            Self::Intake => intake::run(ex),
            Self::Admin => admin::run(ex).await,
            Self::Assets => assets::run(ex).await,
            Self::Authenticate => authenticate::run(ex),
            Self::Admission => admission::run(ex).await,
            Self::WriteBehind => writebehind::producer::run(ex).await,
            Self::Idempotency => idempotency::run(ex).await,
            Self::Cache => cache::run(ex).await,
            Self::Origin => origin::run(ex).await,
        }
    }
}

/// What a stage decided.
pub enum Flow {
    /// Not mine: pass the request to the next stage.
    Next,
    /// The answer.
    Respond(Response),
}

/// Runs a request through every stage.
pub async fn handle(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let config = match config(&env) {
        Ok(config) => config,
        Err(e) => {
            worker::console_error!("{e}");
            let (problem, extra) = EdgeError::from(e).to_problem();
            return respond::problem(&problem, &extra);
        }
    };
    let mut ex = Exchange::new(req, env, ctx, config);
    let mut answer = None;
    for stage in STAGES {
        let started = now_ms();
        let outcome = stage.run(&mut ex).await;
        ex.timing.record(stage.as_str(), now_ms() - started);
        match outcome {
            Ok(Flow::Next) => continue,
            Ok(Flow::Respond(response)) => answer = Some(response),
            Err(e) => answer = Some(error_response(&ex, stage, &e)?),
        }
        break;
    }
    let response = match answer {
        Some(response) => response,
        // The origin stage always answers; reaching here means a stage was added without one.
        None => error_response(
            &ex,
            Stage::Origin,
            &EdgeError::Internal("no stage answered".into()),
        )?,
    };
    finish(&ex, response)
}

fn error_response(ex: &Exchange, stage: Stage, e: &EdgeError) -> Result<Response> {
    if e.is_ours() {
        worker::console_error!(
            "request {} failed in {}: {e}",
            ex.request_id,
            stage.as_str()
        );
    } else {
        worker::console_log!(
            "request {} answered by {}: {e}",
            ex.request_id,
            stage.as_str()
        );
    }
    let (problem, extra) = e.to_problem();
    let problem: Problem = problem
        .with_instance(ex.path.clone())
        .with_request_id(ex.request_id.clone());
    respond::problem(&problem, &extra)
}

/// Stamps the request id, the stage timings and the rate-limit state on every answer, and
/// counts it for the SLO (a report to `CONTROL` goes out after the answer when one is due).
fn finish(ex: &Exchange, mut response: Response) -> Result<Response> {
    let status = response.status_code();
    let headers = response.headers_mut();
    headers.set(REQUEST_ID, &ex.request_id)?;
    headers.set(SERVER_TIMING, &ex.timing.header_value())?;
    // The origin answers with its hop's `traceparent`; from a cache it would name another
    // request's trace, and the client has no use for it either way.
    headers.delete(TRACEPARENT)?;
    if let Some((policy, state)) = &ex.rate_headers {
        headers.set("ratelimit-policy", policy)?;
        headers.set("ratelimit", state)?;
    }
    // The edge's own refusals count neither way: as errors they would keep the burn rate up
    // and shedding would never recover; as successes they would hide a failing origin.
    if !ex.refused {
        signals::record_request(status >= 500, ex.would_shed);
    }
    if signals::report_due(&ex.config) {
        ex.ctx.wait_until(signals::report(ex.env.clone()));
    }
    Ok(response)
}

thread_local! {
    /// Parsed once per isolate: vars cannot change without a new deployment (a new isolate).
    static CONFIG: RefCell<Option<Rc<EdgeConfig>>> = const { RefCell::new(None) };
}

pub fn config(
    env: &Env,
) -> std::result::Result<Rc<EdgeConfig>, breakwater_core::config::ConfigError> {
    if let Some(config) = CONFIG.with_borrow(Clone::clone) {
        return Ok(config);
    }
    let config = EdgeConfig::from_vars(|name| env.var(name).ok().map(|v| v.to_string()))?
        .with_cache_policy(json_var(env, "CACHE_POLICY")?)?
        .with_idempotency(json_var(env, "IDEMPOTENCY_POLICY")?)?
        .with_admission(
            json_var(env, "ADMISSION")?,
            json_var(env, "SLO")?,
            json_var(env, "BREAKER")?,
        )?
        .with_origins(json_var(env, "ORIGINS")?)?
        .with_write_behind(json_var(env, "WRITE_BEHIND")?)?
        .with_access_tokens(json_var(env, "ACCESS_TOKENS")?)?;
    if config.access_tokens.is_none() {
        worker::console_log!(
            "ACCESS_TOKENS names no keys: bearer tokens are not verified at the edge, and their \
             requests are anonymous (by address) here"
        );
    }
    let config = Rc::new(config);
    CONFIG.set(Some(config.clone()));
    Ok(config)
}

/// A structured var: a table in `wrangler.toml` arrives as an object, `--var NAME:<json>` as a
/// string holding JSON.
fn json_var(
    env: &Env,
    name: &'static str,
) -> std::result::Result<Option<serde_json::Value>, ConfigError> {
    match env.var(name) {
        Ok(json) => serde_json::from_str(&json.to_string())
            .map(Some)
            .map_err(|e| ConfigError {
                field: name,
                reason: format!("is not valid JSON: {e}"),
            }),
        Err(_) => Ok(env.object_var::<serde_json::Value>(name).ok()),
    }
}
