//! The `IDEMPOTENCY` Durable Object: one record per (principal, key), named by core's
//! [`record_name`](breakwater_core::idempotency::record_name), deleted by an alarm once it
//! expires. Core decides every transition ([`begin`], [`complete`], [`release`]); the object
//! loads the record, applies the decision and stores the result in one turn.

use super::durable::{self, Command, Incoming};
use crate::runtime::now_millis;
use breakwater_core::idempotency::{
    Answer, Claim, Fingerprint, Policy, Record, begin, complete, expires_at, is_expired, release,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

pub const BINDING: &str = "IDEMPOTENCY";
const RECORD_KEY: &str = "record";
/// How long the stage waits for a record's object.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Claim the key for a request with this fingerprint (or learn what the record allows).
#[derive(Serialize, Deserialize)]
pub struct Begin {
    pub fingerprint: Fingerprint,
    pub policy: Policy,
}

impl Command for Begin {
    const NAME: &'static str = "begin";
    type Reply = breakwater_core::idempotency::Begin;
}

/// Keep the origin's answer to the claimed request.
#[derive(Serialize, Deserialize)]
pub struct Complete {
    pub claim: Claim,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub policy: Policy,
}

impl Command for Complete {
    const NAME: &'static str = "complete";
    type Reply = ();
}

/// Give the key up: the claimed request never reached the origin.
#[derive(Serialize, Deserialize)]
pub struct Release {
    pub claim: Claim,
}

impl Command for Release {
    const NAME: &'static str = "release";
    type Reply = ();
}

#[durable_object]
pub struct Idempotency {
    state: State,
}

impl DurableObject for Idempotency {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let incoming = Incoming::read(req).await?;
        let storage = self.state.storage();
        let existing: Option<Record> = storage.get(RECORD_KEY).await?;
        let now = now_millis();
        match incoming.name() {
            Begin::NAME => {
                let Begin {
                    fingerprint,
                    policy,
                } = incoming.parse()?;
                let decision = begin(existing.as_ref(), &fingerprint, now, &policy);
                if let breakwater_core::idempotency::Begin::Proceed(claim) = &decision {
                    self.keep(&Record::InFlight(*claim)).await?;
                }
                durable::reply::<Begin>(&decision)
            }
            Complete::NAME => {
                let c: Complete = incoming.parse()?;
                let answer = Answer {
                    status: c.status,
                    headers: &c.headers,
                    body: &c.body,
                };
                match complete(existing.as_ref(), &c.claim, &answer, now, &c.policy) {
                    Ok(record) => self.keep(&record).await?,
                    // Not replayable (4xx/5xx): the key is free for a corrected retry.
                    Err(_) if release(existing.as_ref(), &c.claim) => {
                        storage.delete(RECORD_KEY).await?;
                    }
                    Err(e) => worker::console_warn!("idempotency: answer not kept: {e}"),
                }
                durable::reply::<Complete>(&())
            }
            Release::NAME => {
                let Release { claim } = incoming.parse()?;
                if release(existing.as_ref(), &claim) {
                    storage.delete(RECORD_KEY).await?;
                }
                durable::reply::<Release>(&())
            }
            _ => durable::unknown(&incoming),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let existing: Option<Record> = storage.get(RECORD_KEY).await?;
        match existing {
            Some(record) if !is_expired(&record, now_millis()) => {
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
