//! Stage 5, idempotency: an unsafe request with an `Idempotency-Key` runs once per (principal,
//! key), whatever the client retries. Core decides ([`breakwater_core::idempotency`]); the
//! `IDEMPOTENCY` Durable Object, one per (principal, key), keeps the record, so one client can
//! never read another's stored answer.
//!
//! Begin → forward to the origin with the key → complete (the answer is kept and replayed with
//! `Idempotent-Replayed: true`). When the origin gives no answer the claim is kept or released
//! by core's rule ([`should_keep_on_no_answer`]): kept when the request may have reached it (a
//! retry gets `409` until the lease ends instead of racing the first attempt), released when it
//! was never sent. The origin's own unique (principal, key) record makes either safe.

use crate::error::EdgeError;
use crate::exchange::{Exchange, now_ms};
use crate::origin;
use crate::pipeline::Flow;
use breakwater_core::idempotency::{
    Answer, Begin, Claim, Fingerprint, HEADER, NoAnswer, Policy, REPLAYED_HEADER, Record,
    StoredResponse, begin, complete, expires_at, fingerprint, is_expired, parse_key, record_name,
    release, should_keep_on_no_answer,
};
use breakwater_core::intake::{self, Limits};
use serde::{Deserialize, Serialize};
use worker::{
    DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result, State,
    durable_object,
};

const BASE: &str = "https://idempotency.internal";
const RECORD_KEY: &str = "record";

pub async fn run(ex: &mut Exchange) -> std::result::Result<Flow, EdgeError> {
    let method = ex.req.method();
    if matches!(method, Method::Get | Method::Head | Method::Options) {
        return Ok(Flow::Next);
    }
    let config = ex.config.clone();
    if !config.idempotency.enabled {
        return Ok(Flow::Next);
    }
    let required = config
        .idempotency
        .route(&ex.path)
        .is_some_and(|r| r.required);
    let Some(raw_key) = ex.req.headers().get(HEADER)? else {
        return if required {
            Err(EdgeError::IdempotencyKeyMissing)
        } else {
            Ok(Flow::Next)
        };
    };
    let key = parse_key(&raw_key).map_err(|e| EdgeError::IdempotencyKeyInvalid(e.to_string()))?;
    let raw_url = ex.req.inner().url();
    let (_, query) = intake::split_raw_url(&raw_url);
    let body = ex.body(Limits::default().max_body_bytes).await?;
    let print = fingerprint(method.as_ref(), &format!("{}{query}", ex.path), &body);
    let policy = config.idempotency.policy(&ex.path);
    let object = record_name(&ex.principal.key(), &key);

    let claim = match call::<Begin>(
        &ex.env,
        &object,
        &Command::Begin {
            fingerprint: print,
            policy: policy.clone(),
        },
    )
    .await?
    {
        Begin::Proceed(claim) => claim,
        Begin::Replay(stored) => return Ok(Flow::Respond(replay(&stored)?)),
        // Too large to keep here: the origin's own record replays it.
        Begin::ReplayFromOrigin => return Ok(Flow::Next),
        Begin::InFlight { retry_after_ms } => {
            return Err(EdgeError::IdempotencyInFlight { retry_after_ms });
        }
        Begin::Mismatch => return Err(EdgeError::IdempotencyMismatch),
    };

    let response = match origin::fetch(ex, None).await {
        Ok(response) => response,
        Err(e) => {
            let cause = match e {
                EdgeError::OriginUnreachable(_) | EdgeError::OriginTimeout(_) => NoAnswer::Lost,
                _ => NoAnswer::NotSent,
            };
            if !should_keep_on_no_answer(cause) {
                call::<()>(&ex.env, &object, &Command::Release { claim }).await?;
            }
            return Err(e);
        }
    };
    let status = response.status_code();
    let headers: Vec<(String, String)> = response.headers().entries().collect();
    let mut response = response;
    let body = response.bytes().await?;
    let answer = Command::Complete {
        claim,
        status,
        headers: headers.clone(),
        body: body.clone(),
        policy,
    };
    if let Err(e) = call::<()>(&ex.env, &object, &answer).await {
        // The answer stands; a retry finds the claim (409 until the lease ends), then the
        // origin's own record.
        worker::console_error!("idempotency {object}: could not keep the answer: {e}");
    }
    let out = Headers::new();
    for (name, value) in &headers {
        out.append(name, value)?;
    }
    Ok(Flow::Respond(
        Response::builder()
            .with_status(status)
            .with_headers(out)
            .fixed(body),
    ))
}

/// The stored answer, byte for byte, marked as a replay.
fn replay(stored: &StoredResponse) -> std::result::Result<Response, EdgeError> {
    let headers = Headers::new();
    for (name, value) in &stored.headers {
        headers.append(name, value)?;
    }
    headers.set(REPLAYED_HEADER, "true")?;
    let body = stored.body.clone().unwrap_or_default();
    Ok(Response::builder()
        .with_status(stored.status)
        .with_headers(headers)
        .fixed(body))
}

/// What the edge asks of a record's object.
#[derive(Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
enum Command {
    Begin {
        fingerprint: Fingerprint,
        policy: Policy,
    },
    Complete {
        claim: Claim,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        policy: Policy,
    },
    Release {
        claim: Claim,
    },
}

async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    object: &str,
    command: &Command,
) -> std::result::Result<T, EdgeError> {
    let stub = env.durable_object("IDEMPOTENCY")?.get_by_name(object)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(
        serde_json::to_string(command)
            .map_err(|e| EdgeError::Internal(e.to_string()))?
            .into(),
    ));
    let req = Request::new_with_init(BASE, &init)?;
    let mut response = stub.fetch_with_request(req).await?;
    match response.status_code() {
        200 => Ok(response.json().await?),
        status => Err(EdgeError::Internal(format!(
            "IDEMPOTENCY answered {status}: {}",
            response.text().await.unwrap_or_default()
        ))),
    }
}

/// One record per (principal, key); deleted by an alarm once it expires.
#[durable_object]
pub struct Idempotency {
    state: State,
}

impl DurableObject for Idempotency {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = req.json().await?;
        let storage = self.state.storage();
        let existing: Option<Record> = storage.get(RECORD_KEY).await?;
        let now = now_ms() as u64;
        match command {
            Command::Begin {
                fingerprint,
                policy,
            } => {
                let decision = begin(existing.as_ref(), &fingerprint, now, &policy);
                if let Begin::Proceed(claim) = &decision {
                    self.keep(&Record::InFlight(*claim)).await?;
                }
                Response::from_json(&decision)
            }
            Command::Complete {
                claim,
                status,
                headers,
                body,
                policy,
            } => {
                let answer = Answer {
                    status,
                    headers: &headers,
                    body: &body,
                };
                match complete(existing.as_ref(), &claim, &answer, now, &policy) {
                    Ok(record) => self.keep(&record).await?,
                    // Not replayable (4xx/5xx): the key is free for a corrected retry.
                    Err(_) if release(existing.as_ref(), &claim) => {
                        storage.delete(RECORD_KEY).await?;
                    }
                    Err(e) => worker::console_warn!("idempotency: answer not kept: {e}"),
                }
                Response::from_json(&())
            }
            Command::Release { claim } => {
                if release(existing.as_ref(), &claim) {
                    storage.delete(RECORD_KEY).await?;
                }
                Response::from_json(&())
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let existing: Option<Record> = storage.get(RECORD_KEY).await?;
        match existing {
            Some(record) if !is_expired(&record, now_ms() as u64) => {
                storage.set_alarm(expires_at(&record) as i64).await?;
            }
            Some(_) => {
                storage.delete(RECORD_KEY).await?;
            }
            None => {}
        }
        Response::empty()
    }
}

impl Idempotency {
    /// Stores `record` and schedules its deletion.
    async fn keep(&self, record: &Record) -> Result<()> {
        let storage = self.state.storage();
        storage.put(RECORD_KEY, record).await?;
        storage.set_alarm(expires_at(record) as i64).await
    }
}
