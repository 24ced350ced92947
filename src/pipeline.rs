//! The request path at the edge: one ordered list of stages, in [`STAGES`], each in its own
//! file under `pipeline/`. A stage either answers, passes the request on ([`Flow::Next`]), or
//! wraps the rest of the path ([`Next`]): idempotency records what the rest answered, the cache
//! serves or stores it. The last stage hands the request to [`crate::upstream`], the only road
//! to an origin. `finish` then stamps identity and timings on the answer.

mod admin;
mod admission;
mod assets;
mod authenticate;
pub mod cache;
mod guest;
mod idempotency;
mod intake;
mod origin;
mod write_behind;

use crate::bindings::control::signals;
use crate::config;
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::respond;
use crate::runtime::{now_millis, now_ms};
use crate::upstream::{self, limit};
use breakwater_core::headers::{REQUEST_ID, SERVER_TIMING, TRACEPARENT};
use breakwater_core::intake::Route;
use breakwater_core::metrics::{self, RecentError};
use breakwater_core::problem::Problem;
use worker::{Context, Env, Response, Result, web_sys};

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
    /// Callers without a token or an API key: a guest cookie, or a session opened by a first
    /// order ([`guest`]).
    Guest,
    /// `WRITE_BEHIND` routes: the event is queued on `EVENTS` and answered `202` at once.
    WriteBehind,
    /// Unsafe requests with an `Idempotency-Key` run once per (principal, key)
    /// (`IDEMPOTENCY_POLICY`): wraps the rest of the path and keeps what it answered.
    Idempotency,
    /// GET/HEAD on routes with a cache policy: memory, Cache API and KV tiers, single-flight
    /// fills through the upstream layer, stale serving; wraps the rest for requests it bypasses.
    Cache,
    /// Whatever is left goes to an origin through the upstream layer.
    Origin,
}

/// The request path, in order.
pub static STAGES: [Stage; 10] = [
    Stage::Intake,
    Stage::Admin,
    Stage::Assets,
    Stage::Authenticate,
    Stage::Admission,
    Stage::Guest,
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
            Self::Guest => "guest",
            Self::WriteBehind => "write-behind",
            Self::Idempotency => "idempotency",
            Self::Cache => "cache",
            Self::Origin => "origin",
        }
    }
}

/// What a stage that does not wrap the rest decided.
pub enum Flow {
    /// Not mine: pass the request to the next stage.
    Next,
    /// The answer.
    Respond(Response),
}

/// The rest of the path after the running stage, for a stage that wraps it.
pub struct Next {
    rest: &'static [Stage],
}

impl Next {
    /// Runs the remaining stages and returns their answer (or the error that stopped them).
    pub async fn run(self, ex: &mut Exchange) -> std::result::Result<Response, EdgeError> {
        Box::pin(run(self.rest, ex)).await
    }
}

/// Runs `stages` in order. Each stage is timed under its name in `Server-Timing`; a stage that
/// wraps the rest is timed including it.
async fn run(
    stages: &'static [Stage],
    ex: &mut Exchange,
) -> std::result::Result<Response, EdgeError> {
    let Some((&stage, rest)) = stages.split_first() else {
        // The origin stage always answers; reaching here means a stage was added without one.
        return Err(EdgeError::Internal("no stage answered".into()));
    };
    let next = Next { rest };
    let started = now_ms();
    let flow = match stage {
        Stage::Intake => intake::run(ex),
        Stage::Admin => admin::run(ex).await,
        Stage::Assets => assets::run(ex).await,
        Stage::Authenticate => authenticate::run(ex),
        Stage::Admission => admission::run(ex).await,
        Stage::Guest => guest::run(ex),
        Stage::WriteBehind => write_behind::run(ex).await,
        Stage::Idempotency => idempotency::run(ex, next).await.map(Flow::Respond),
        Stage::Cache => cache::run(ex, next).await.map(Flow::Respond),
        Stage::Origin => origin::run(ex).await.map(Flow::Respond),
    };
    ex.timing.record(stage.as_str(), now_ms() - started);
    // The innermost stage that failed names the failure; wrappers pass the error on.
    if flow.is_err() && ex.failed_in.is_none() {
        ex.failed_in = Some(stage.as_str());
    }
    match flow? {
        Flow::Next => Box::pin(run(rest, ex)).await,
        Flow::Respond(response) => Ok(response),
    }
}

/// Runs a request through every stage.
pub async fn handle(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let config = match config::load(&env) {
        Ok(config) => config,
        Err(e) => {
            worker::console_error!("{e}");
            let (problem, extra) = EdgeError::from(e).to_problem();
            return respond::problem(&problem, &extra).map(Into::into);
        }
    };
    let mut ex = Exchange::new(req, env, ctx, config);
    let response = match run(&STAGES, &mut ex).await {
        Ok(response) => response,
        Err(e) => {
            if let Some(reason) = e.refusal() {
                signals::record_refusal(reason);
            }
            error_response(&mut ex, &e)?
        }
    };
    finish(&ex, response).map(Into::into)
}

fn error_response(ex: &mut Exchange, e: &EdgeError) -> Result<Response> {
    let stage = ex.failed_in.unwrap_or("pipeline");
    if e.is_ours() {
        worker::console_error!("request {} failed in {}: {e}", ex.request_id, stage);
    } else {
        worker::console_log!("request {} answered by {}: {e}", ex.request_id, stage);
    }
    let (problem, extra) = e.to_problem();
    let problem: Problem = problem
        .with_instance(ex.path.clone())
        .with_request_id(ex.request_id.clone());
    ex.problem = Some(problem.kind().to_owned());
    respond::problem(&problem, &extra)
}

/// Stamps the request id, the stage timings and the rate-limit state on every answer, and
/// counts it for the SLO and the metrics (a report to `CONTROL` goes out after the answer when
/// one is due).
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
    // A session a first order opened, once the order went through (a replay included).
    if let Some(cookie) = ex.set_cookie.as_deref().filter(|_| status < 300) {
        headers.append("set-cookie", cookie)?;
    }
    // Refusals count neither way, the edge's own or an overloaded origin's (`503` with
    // `Retry-After`): as errors they would keep the burn rate up and shedding would never
    // recover; as successes they would hide a failing origin.
    let origin_refused = upstream::refused(status, headers);
    if origin_refused {
        signals::record_refusal("origin-overloaded");
    }
    if !ex.refused && !origin_refused {
        signals::record_request(status >= 500, ex.would_shed);
    }
    let route = metrics::route_label(&ex.config, &ex.path, ex.route == Route::Assets);
    signals::record_answer(route, status, ex.cache);
    if status >= 500 || status == 429 {
        signals::record_error(RecentError {
            at_ms: now_millis(),
            request_id: ex.request_id.clone(),
            status,
            route: route.to_owned(),
            problem: ex.problem.clone().unwrap_or_else(|| "origin".into()),
        });
    }
    if signals::report_due(&ex.config) {
        ex.ctx
            .wait_until(limit::report(ex.env.clone(), ex.config.control_shards));
    }
    Ok(response)
}
