//! The `CONTROL` Durable Object: cluster-wide control state, one object for the deployment.
//! Today it keeps the purge log; the admission issue adds the breaker and burn rate here.
//!
//! Its HTTP surface is internal (only this worker holds the binding):
//! - `GET /purge-log?epoch=N`: `204` if the log is still at epoch `N`, else `200` with the log.
//! - `POST /purge` with a [`PurgeRequest`]: records it, answers `200` with the new log, or `422`
//!   problem+json when the request is invalid (nothing is recorded).

use crate::error::EdgeError;
use crate::respond;
use breakwater_core::problem::Problem;
use breakwater_core::purge::{PurgeLog, PurgeRequest};
use std::cell::RefCell;
use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, Result, State, Stub, durable_object,
};

/// The one instance's name.
const INSTANCE: &str = "global";
/// The storage key of the purge log.
const LOG_KEY: &str = "purge-log";
/// The base of the internal URLs (the host is never resolved: the stub routes the request).
const BASE: &str = "https://control.internal";

#[durable_object]
pub struct Control {
    state: State,
    /// The stored log, read once per object lifetime; storage stays the source of truth.
    log: RefCell<Option<PurgeLog>>,
}

impl DurableObject for Control {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            log: RefCell::new(None),
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
            _ => respond::problem(&Problem::new("not-found", 404, "Not found"), &[]),
        }
    }
}

impl Control {
    async fn log(&self) -> Result<PurgeLog> {
        if let Some(log) = self.log.borrow().clone() {
            return Ok(log);
        }
        let log: PurgeLog = self.state.storage().get(LOG_KEY).await?.unwrap_or_default();
        self.log.replace(Some(log.clone()));
        Ok(log)
    }
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

/// Records `request` and returns the new log.
pub async fn purge(env: &Env, request: &PurgeRequest) -> std::result::Result<PurgeLog, EdgeError> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(
        serde_json::to_string(request)
            .map_err(|e| EdgeError::Internal(e.to_string()))?
            .into(),
    ));
    let req = Request::new_with_init(&format!("{BASE}/purge"), &init)?;
    let mut response = stub(env)?.fetch_with_request(req).await?;
    match response.status_code() {
        200 => Ok(response.json().await?),
        status => Err(EdgeError::Internal(format!(
            "CONTROL answered {status} to POST /purge: {}",
            response.text().await.unwrap_or_default()
        ))),
    }
}
