//! The `CONTROL` Durable Object: cluster-wide control state, one object for the deployment: the
//! purge log, the SLO burn-rate controller (the admission fraction), and per origin (keyed by its
//! base URL) a circuit breaker and the active health checks' record. Each is kept in storage, so
//! a restarted object resumes where it was.
//!
//! Its HTTP surface is internal (only this worker holds the binding):
//! - `GET /purge-log?epoch=N`: `204` if the log is still at epoch `N`, else `200` with the log.
//! - `POST /purge` with a [`PurgeRequest`]: records it, answers `200` with the new log, or `422`
//!   problem+json when the request is invalid (nothing is recorded).
//! - `POST /report` with an isolate's [`Report`]: feeds the controller and the breaker, answers
//!   the [`Status`] isolates act on.
//! - `POST /breaker/acquire` with an [`OriginName`]: a [`Permit`] to call that origin while its
//!   breaker is not closed.
//! - `POST /breaker/probe` with a [`ProbeResult`]: a half-open probe's outcome; answers that
//!   origin's breaker's [`View`].
//! - `GET /health`: every origin's [`HealthRecord`] ([`Health`]); `POST /health` with a list of
//!   [`Check`]s (the cron trigger's) records them and answers the new records.
//! - Dead letters of write-behind events (storage in [`crate::writebehind::dead::Store`]):
//!   `POST /dead-events` with a list of [`DeadLetter`]s keeps them; `GET
//!   /dead-events?after=<id>&limit=<n>` answers a [`Page`] in id order; `POST /dead-events/get`
//!   with `{"ids": [...]}` answers those found; `POST /dead-events/remove` with a [`Removal`]
//!   removes those still as they were read.

use crate::error::EdgeError;
use crate::exchange::now_ms;
use crate::writebehind::dead::{self, Page, Removal, Store};
use crate::{pipeline, respond};
use breakwater_core::breaker::{Breaker, Counts, Permit, Phase, View};
use breakwater_core::config::EdgeConfig;
use breakwater_core::pool::HealthRecord;
use breakwater_core::pool::health::CheckResult;
use breakwater_core::problem::Problem;
use breakwater_core::purge::{PurgeLog, PurgeRequest};
use breakwater_core::shedding::Controller;
use breakwater_core::writebehind::DeadLetter;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, Result, State, Stub, durable_object,
};

/// The one instance's name.
const INSTANCE: &str = "global";
/// Storage keys.
const LOG_KEY: &str = "purge-log";
const SLO_KEY: &str = "slo";
const BREAKERS_KEY: &str = "breakers";
const HEALTH_KEY: &str = "health";

/// One breaker per origin, by base URL.
pub type Breakers = BTreeMap<String, Breaker>;
/// Each checked origin's health record, by base URL.
pub type Health = BTreeMap<String, HealthRecord>;

/// One active health check's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub origin: String,
    /// When it was sent.
    pub at_ms: u64,
    pub result: CheckResult,
}

/// What an isolate counted since its last report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Answered requests, and those that failed for the origin's sake.
    pub requests: u64,
    pub errors: u64,
    /// Requests shadow mode would have shed.
    pub would_shed: u64,
    /// Origin calls made while the origin's breaker was closed, by origin base URL.
    pub breakers: BTreeMap<String, Counts>,
}

impl Report {
    /// Adds `other` back (a report that could not be delivered).
    pub fn merge(&mut self, other: &Report) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.would_shed += other.would_shed;
        for (origin, counts) in &other.breakers {
            let mine = self.breakers.entry(origin.clone()).or_default();
            mine.calls += counts.calls;
            mine.failures += counts.failures;
            mine.slow += counts.slow;
        }
    }
}

/// What isolates act on until their next report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The admission fraction the controller computed, and the one to enforce (1 in shadow mode).
    pub fraction: f64,
    pub effective: f64,
    /// Each origin's breaker that is not closed (absent: closed), by origin base URL.
    pub breakers: BTreeMap<String, View>,
    /// The active health checks' records (absent: never checked, healthy).
    #[serde(default)]
    pub health: Health,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            fraction: 1.0,
            effective: 1.0,
            breakers: BTreeMap::new(),
            health: Health::new(),
        }
    }
}

/// The origin a breaker request is about (its base URL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OriginName {
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    pub origin: String,
    pub id: u64,
    pub success: bool,
    pub latency_ms: u64,
}
#[derive(Debug, Serialize, Deserialize)]
struct Ids {
    ids: Vec<String>,
}

/// The base of the internal URLs (the host is never resolved: the stub routes the request).
const BASE: &str = "https://control.internal";

#[durable_object]
pub struct Control {
    state: State,
    env: Env,
    /// The stored log, read once per object lifetime; storage stays the source of truth.
    log: RefCell<Option<PurgeLog>>,
    slo: RefCell<Option<Controller>>,
    breakers: RefCell<Option<Breakers>>,
    health: RefCell<Option<Health>>,
}

impl DurableObject for Control {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            log: RefCell::new(None),
            slo: RefCell::new(None),
            breakers: RefCell::new(None),
            health: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Get, "/purge-log") => {
                let log = self.log().await?;
                let known = req
                    .url()?
                    .query_pairs()
                    .find(|(k, _)| k == "epoch")
                    .and_then(|(_, v)| v.parse::<u64>().ok());
                if known == Some(log.epoch()) {
                    return Ok(Response::empty()?.with_status(204));
                }
                Response::from_json(&log)
            }
            (Method::Post, "/purge") => {
                let request: PurgeRequest = match req.json().await {
                    Ok(r) => r,
                    Err(e) => return invalid(&e.to_string()),
                };
                if let Err(e) = request.validate() {
                    return invalid(&e.to_string());
                }
                let mut log = self.log().await?;
                log.purge(&request);
                // Persisted before the answer leaves (the output gate holds it until then).
                self.state.storage().put(LOG_KEY, &log).await?;
                self.log.replace(Some(log.clone()));
                Response::from_json(&log)
            }
            (Method::Post, "/report") => {
                let report: Report = req.json().await?;
                self.report(&report).await
            }
            (Method::Post, "/breaker/acquire") => {
                let OriginName { origin } = req.json().await?;
                let config = self.config()?;
                let mut breakers = self.breakers().await?;
                let permit = breakers
                    .entry(origin)
                    .or_insert_with(Breaker::new)
                    .acquire(&config.breaker, now_ms() as u64);
                self.keep_breakers(breakers).await?;
                Response::from_json(&permit)
            }
            (Method::Post, "/breaker/probe") => {
                let probe: ProbeResult = req.json().await?;
                let config = self.config()?;
                let mut breakers = self.breakers().await?;
                let view = breakers
                    .entry(probe.origin)
                    .or_insert_with(Breaker::new)
                    .report_probe(
                        &config.breaker,
                        now_ms() as u64,
                        probe.id,
                        probe.success,
                        probe.latency_ms,
                    );
                self.keep_breakers(breakers).await?;
                Response::from_json(&view)
            }
            (Method::Get, "/health") => Response::from_json(&self.health().await?),
            (Method::Post, "/health") => {
                let checks: Vec<Check> = req.json().await?;
                let config = self.config()?;
                let mut health = self.health().await?;
                for check in checks {
                    let record = health.entry(check.origin.clone()).or_default();
                    let detail = check.result.clone().err();
                    match record.observe(&config.pool.health, check.at_ms, check.result) {
                        Some(true) => {
                            worker::console_log!("origin {} is healthy again", check.origin)
                        }
                        Some(false) => worker::console_warn!(
                            "origin {} is unhealthy: {}",
                            check.origin,
                            detail.unwrap_or_default()
                        ),
                        None => {}
                    }
                }
                // Origins no longer configured are forgotten.
                health.retain(|url, _| config.pool.origins.iter().any(|o| &o.url == url));
                self.health.replace(Some(health.clone()));
                self.state.storage().put(HEALTH_KEY, &health).await?;
                Response::from_json(&health)
            }
            (Method::Post, "/dead-events") => {
                let letters: Vec<DeadLetter> = req.json().await?;
                Store(&self.state).keep(&letters).await?;
                Response::from_json(&serde_json::json!({ "kept": letters.len() }))
            }
            (Method::Get, "/dead-events") => {
                let url = req.url()?;
                let query = |name: &str| {
                    url.query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                let limit = query("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(dead::DEFAULT_PAGE)
                    .clamp(1, dead::MAX_PAGE);
                let page = Store(&self.state)
                    .list(query("after").as_deref(), limit)
                    .await?;
                Response::from_json(&page)
            }
            (Method::Post, "/dead-events/get") => {
                let ids: Ids = req.json().await?;
                Response::from_json(&Store(&self.state).by_id(&ids.ids).await?)
            }
            (Method::Post, "/dead-events/remove") => {
                let removal: Removal = req.json().await?;
                let removed = Store(&self.state).remove(&removal).await?;
                Response::from_json(&serde_json::json!({ "removed": removed }))
            }
            _ => respond::problem(&Problem::new("not-found", 404, "Not found"), &[]),
        }
    }
}

impl Control {
    fn config(&self) -> Result<Rc<EdgeConfig>> {
        pipeline::config(&self.env).map_err(|e| worker::Error::RustError(e.to_string()))
    }

    async fn report(&self, report: &Report) -> Result<Response> {
        let config = self.config()?;
        let now = now_ms() as u64;
        let mut slo = load(&self.slo, &self.state, SLO_KEY, Controller::new).await?;
        slo.report(&config.slo, now, report.requests, report.errors);
        let fraction = slo.adjust(&config.slo, now);
        let effective = slo.effective_fraction(&config.slo);
        if report.would_shed > 0 {
            worker::console_log!(
                "shadow shedding: {} requests would have been shed (admission fraction {fraction:.2})",
                report.would_shed
            );
        }
        let mut breakers = self.breakers().await?;
        for origin in report.breakers.keys() {
            breakers.entry(origin.clone()).or_insert_with(Breaker::new);
        }
        let views = breakers
            .iter_mut()
            .map(|(origin, breaker)| {
                let counts = report.breakers.get(origin).copied().unwrap_or_default();
                (origin.clone(), breaker.record(&config.breaker, now, counts))
            })
            .filter(|(_, view)| view.phase != Phase::Closed)
            .collect();
        self.slo.replace(Some(slo.clone()));
        self.state.storage().put(SLO_KEY, &slo).await?;
        self.keep_breakers(breakers).await?;
        Response::from_json(&Status {
            fraction,
            effective,
            breakers: views,
            health: self.health().await?,
        })
    }

    async fn health(&self) -> Result<Health> {
        load(&self.health, &self.state, HEALTH_KEY, Health::new).await
    }

    async fn breakers(&self) -> Result<Breakers> {
        load(&self.breakers, &self.state, BREAKERS_KEY, Breakers::new).await
    }

    /// The memory copy first (no await in between), then storage.
    async fn keep_breakers(&self, breakers: Breakers) -> Result<()> {
        self.breakers.replace(Some(breakers.clone()));
        self.state.storage().put(BREAKERS_KEY, &breakers).await
    }

    async fn log(&self) -> Result<PurgeLog> {
        if let Some(log) = self.log.borrow().clone() {
            return Ok(log);
        }
        let log: PurgeLog = self.state.storage().get(LOG_KEY).await?.unwrap_or_default();
        self.log.replace(Some(log.clone()));
        Ok(log)
    }
}

/// A Durable Object's cached value, else its stored one, else `fresh()`.
pub async fn load<T: Clone + serde::de::DeserializeOwned>(
    cache: &RefCell<Option<T>>,
    state: &State,
    key: &str,
    fresh: fn() -> T,
) -> Result<T> {
    if let Some(value) = cache.borrow().clone() {
        return Ok(value);
    }
    let value = state.storage().get(key).await?.unwrap_or_else(fresh);
    cache.replace(Some(value.clone()));
    Ok(value)
}

fn invalid(detail: &str) -> Result<Response> {
    let problem = Problem::new("invalid-purge", 422, "Invalid purge request").with_detail(detail);
    respond::problem(&problem, &[])
}

fn stub(env: &Env) -> Result<Stub> {
    env.durable_object("CONTROL")?.get_by_name(INSTANCE)
}

/// The purge log, or `None` when it is still at `known_epoch`.
pub async fn fetch_log(env: &Env, known_epoch: Option<u64>) -> Result<Option<PurgeLog>> {
    let url = match known_epoch {
        Some(epoch) => format!("{BASE}/purge-log?epoch={epoch}"),
        None => format!("{BASE}/purge-log"),
    };
    let mut response = stub(env)?.fetch_with_str(&url).await?;
    match response.status_code() {
        204 => Ok(None),
        200 => Ok(Some(response.json().await?)),
        status => Err(worker::Error::RustError(format!(
            "CONTROL answered {status} to GET /purge-log"
        ))),
    }
}

/// Sends an isolate's counts; returns the status to act on.
pub async fn report(env: &Env, report: &Report) -> Result<Status> {
    post(env, "/report", report).await
}

/// Every origin's health record.
pub async fn health(env: &Env) -> Result<Health> {
    let mut response = stub(env)?.fetch_with_str(&format!("{BASE}/health")).await?;
    match response.status_code() {
        200 => response.json().await,
        status => Err(worker::Error::RustError(format!(
            "CONTROL answered {status} to GET /health"
        ))),
    }
}

/// Records health checks; returns the new records.
pub async fn record_checks(env: &Env, checks: &[Check]) -> Result<Health> {
    post(env, "/health", &checks).await
}

/// A permit to call `origin` while its breaker is not closed.
pub async fn acquire(env: &Env, origin: &str) -> Result<Permit> {
    let origin = OriginName {
        origin: origin.to_owned(),
    };
    post(env, "/breaker/acquire", &origin).await
}

/// A half-open probe's outcome; returns `origin`'s breaker's state.
pub async fn report_probe(
    env: &Env,
    origin: &str,
    id: u64,
    success: bool,
    latency_ms: u64,
) -> Result<View> {
    let probe = ProbeResult {
        origin: origin.to_owned(),
        id,
        success,
        latency_ms,
    };
    post(env, "/breaker/probe", &probe).await
}

async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
    env: &Env,
    path: &str,
    body: &B,
) -> Result<T> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(
        serde_json::to_string(body)
            .map_err(|e| worker::Error::RustError(e.to_string()))?
            .into(),
    ));
    let req = Request::new_with_init(&format!("{BASE}{path}"), &init)?;
    let mut response = stub(env)?.fetch_with_request(req).await?;
    match response.status_code() {
        200 => response.json().await,
        status => Err(worker::Error::RustError(format!(
            "CONTROL answered {status} to POST {path}"
        ))),
    }
}

/// Records `request` and returns the new log.
pub async fn purge(env: &Env, request: &PurgeRequest) -> std::result::Result<PurgeLog, EdgeError> {
    post(env, "/purge", request)
        .await
        .map_err(|e| EdgeError::Internal(e.to_string()))
}

/// Keeps dead letters (the dead-letter queue's consumer).
pub async fn keep_dead_letters(env: &Env, letters: &[DeadLetter]) -> Result<()> {
    post::<_, serde_json::Value>(env, "/dead-events", &letters)
        .await
        .map(drop)
}

/// A page of dead letters after the id `after`.
pub async fn list_dead_letters(env: &Env, after: Option<&str>, limit: usize) -> Result<Page> {
    let mut url = worker::Url::parse(&format!("{BASE}/dead-events"))?;
    url.query_pairs_mut()
        .append_pair("limit", &limit.to_string());
    if let Some(after) = after {
        url.query_pairs_mut().append_pair("after", after);
    }
    let mut response = stub(env)?.fetch_with_str(url.as_str()).await?;
    match response.status_code() {
        200 => response.json().await,
        status => Err(worker::Error::RustError(format!(
            "CONTROL answered {status} to GET /dead-events"
        ))),
    }
}

/// The dead letters with these ids (those that exist).
pub async fn dead_letters_by_id(env: &Env, ids: &[String]) -> Result<Vec<DeadLetter>> {
    let ids = Ids { ids: ids.to_vec() };
    post(env, "/dead-events/get", &ids).await
}

/// Removes dead letters that were replayed, each only if its `at` still matches.
pub async fn remove_dead_letters(env: &Env, letters: &[(String, u64)]) -> Result<()> {
    let removal = Removal {
        letters: letters.to_vec(),
    };
    post::<_, serde_json::Value>(env, "/dead-events/remove", &removal)
        .await
        .map(drop)
}
