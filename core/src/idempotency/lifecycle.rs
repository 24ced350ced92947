//! The record of one (principal, key) and the decisions that move it: [`begin`], [`complete`],
//! [`release`], and the rule for an origin that gave no answer. Each is a pure function of the
//! stored record, the caller's claim or fingerprint, and `now_ms`.

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use super::stored::{Answer, StoredResponse, is_replayable};

/// How long claims and answers are kept, and how large an answer may be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// How long an in-flight attempt holds the key. Past it the attempt is presumed dead and a
    /// retry may take over; so it must exceed the edge's origin timeout, or a slow but live
    /// attempt would be overtaken ([`Policy::validate`]).
    pub lease_ms: u64,
    /// How long a completed answer is replayed. At least the client's retry horizon (including
    /// any dead-letter redrive), or a late retry would run again and rely on the origin alone.
    pub retention_ms: u64,
    /// Largest body kept for replay; a larger answer is kept as status and headers only.
    pub max_body_bytes: usize,
}

impl Default for Policy {
    /// 30 s leases (three times the default 10 s origin timeout), 24 h retention, 64 KiB bodies.
    fn default() -> Self {
        Self {
            lease_ms: 30_000,
            retention_ms: 24 * 3_600_000,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Policy {
    /// Checks the policy against the edge's origin timeout; the error says what is wrong.
    pub fn validate(&self, origin_timeout_ms: u64) -> Result<(), String> {
        if self.lease_ms <= origin_timeout_ms {
            return Err(format!(
                "lease_ms ({}) must exceed the origin timeout ({origin_timeout_ms} ms)",
                self.lease_ms
            ));
        }
        if self.retention_ms == 0 {
            return Err("retention_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// An in-flight attempt's hold on the key: what the record stores while it runs, and what the
/// attempt presents to [`complete`] or [`release`] it.
///
/// Retries of one request share a fingerprint, so the attempt number and lease tell holders
/// apart: each new claim's lease ends later than every earlier claim's (a claim is only granted
/// once the previous one expired), so an overtaken holder never matches the record again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub fingerprint: Fingerprint,
    /// 1 for a fresh key; one more for each takeover of an expired lease by the same request.
    pub attempt: u32,
    pub lease_until_ms: u64,
}

/// What the Durable Object stores per (principal, key). No record: the key is free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Record {
    InFlight(Claim),
    Completed {
        fingerprint: Fingerprint,
        response: StoredResponse,
        expires_ms: u64,
    },
}

impl Record {
    pub fn fingerprint(&self) -> &Fingerprint {
        match self {
            Self::InFlight(claim) => &claim.fingerprint,
            Self::Completed { fingerprint, .. } => fingerprint,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InFlight(_) => "in-flight",
            Self::Completed { .. } => "completed",
        }
    }
}

/// When the record stops meaning anything: the end of the lease, or of the retention. [`begin`]
/// treats an expired record as absent, so an alarm may delete it at this instant or any later.
pub fn expires_at(record: &Record) -> u64 {
    match record {
        Record::InFlight(claim) => claim.lease_until_ms,
        Record::Completed { expires_ms, .. } => *expires_ms,
    }
}

pub fn is_expired(record: &Record, now_ms: u64) -> bool {
    now_ms >= expires_at(record)
}

/// What to do with a request that carries a key. Serialised as the idempotency Durable
/// Object's answer to the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Begin {
    /// The key is this request's: store `Record::InFlight(claim)`, send the request to the origin,
    /// and keep the claim to [`complete`] or [`release`] it.
    Proceed(Claim),
    /// Answer with the stored response, adding `Idempotent-Replayed: true`.
    Replay(StoredResponse),
    /// Completed, but the body was too large to keep: forward the request without a claim, and
    /// the origin's own (principal, key) record replays it.
    ReplayFromOrigin,
    /// Another attempt of this request is running: 409 with `Retry-After` from this.
    InFlight { retry_after_ms: u64 },
    /// The key was used for a different request: 422, and nothing stored is revealed.
    Mismatch,
}

impl Begin {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proceed(_) => "proceed",
            Self::Replay(_) => "replay",
            Self::ReplayFromOrigin => "replay-from-origin",
            Self::InFlight { .. } => "in-flight",
            Self::Mismatch => "mismatch",
        }
    }

    /// The status the edge answers with itself, if it does not go to the origin or replay.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::InFlight { .. } => Some(409),
            Self::Mismatch => Some(422),
            _ => None,
        }
    }
}

/// Decides a request with `fingerprint` against the stored record.
///
/// The lease left is exact while the clock runs forward; it is capped at `lease_ms`, so a clock
/// stepping back cannot make a client wait longer than a whole lease.
pub fn begin(
    existing: Option<&Record>,
    fingerprint: &Fingerprint,
    now_ms: u64,
    policy: &Policy,
) -> Begin {
    let claim = |attempt| {
        Begin::Proceed(Claim {
            fingerprint: *fingerprint,
            attempt,
            lease_until_ms: now_ms.saturating_add(policy.lease_ms),
        })
    };
    match existing {
        Some(record) if !is_expired(record, now_ms) => match record {
            _ if record.fingerprint() != fingerprint => Begin::Mismatch,
            Record::InFlight(held) => Begin::InFlight {
                retry_after_ms: (held.lease_until_ms - now_ms).min(policy.lease_ms),
            },
            Record::Completed { response, .. } => match response.body {
                Some(_) => Begin::Replay(response.clone()),
                None => Begin::ReplayFromOrigin,
            },
        },
        // The lease ended without an answer: the same request takes over as the next attempt.
        Some(Record::InFlight(held)) if held.fingerprint == *fingerprint => {
            claim(held.attempt.saturating_add(1))
        }
        _ => claim(1),
    }
}

/// Why an answer was not stored. Every case leaves the record as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    #[error("a {0} answer is not kept: release the claim so a retry reaches the origin")]
    NotReplayable(u16),
    #[error("the key has no record: it was released, deleted after its lease, or lost")]
    NoRecord,
    #[error("this claim was overtaken: its lease ended and another attempt holds the key")]
    Superseded,
    #[error("the key already completed, and a completed record is never replaced")]
    AlreadyCompleted,
}

/// Stores the origin's `answer` as the key's result, if `claim` still holds the key.
///
/// A holder whose lease ended may still complete as long as no other attempt took over. Only
/// [`is_replayable`] statuses are kept; the headers and body are trimmed as
/// [`StoredResponse::from_answer`] says, and the record expires `retention_ms` after `now_ms`.
pub fn complete(
    existing: Option<&Record>,
    claim: &Claim,
    answer: &Answer<'_>,
    now_ms: u64,
    policy: &Policy,
) -> Result<Record, CompleteError> {
    if !is_replayable(answer.status) {
        return Err(CompleteError::NotReplayable(answer.status));
    }
    match existing {
        Some(Record::InFlight(held)) if held == claim => Ok(Record::Completed {
            fingerprint: claim.fingerprint,
            response: StoredResponse::from_answer(answer, policy.max_body_bytes),
            expires_ms: now_ms.saturating_add(policy.retention_ms),
        }),
        Some(Record::InFlight(_)) => Err(CompleteError::Superseded),
        Some(Record::Completed { .. }) => Err(CompleteError::AlreadyCompleted),
        None => Err(CompleteError::NoRecord),
    }
}

/// True when the record should be deleted so the next request proceeds: only the in-flight
/// record of this very claim. A completed record, or another attempt's claim, is never released.
pub fn release(existing: Option<&Record>, claim: &Claim) -> bool {
    matches!(existing, Some(Record::InFlight(held)) if held == claim)
}

/// Why the origin gave no answer to a claimed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoAnswer {
    /// The request never left the edge: the breaker or shedding refused it, or it failed before
    /// `fetch` was called.
    NotSent,
    /// It was sent and then timed out or the connection failed: it may have run, may be running.
    Lost,
}

impl NoAnswer {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotSent => "not-sent",
            Self::Lost => "lost",
        }
    }
}

/// Whether to keep the claim (true) or [`release`] it (false) when the origin gave no answer.
/// A lost request keeps its claim until the lease ends; one never sent is released. See the
/// module documentation of `idempotency` for why.
pub fn should_keep_on_no_answer(cause: NoAnswer) -> bool {
    match cause {
        NoAnswer::Lost => true,
        NoAnswer::NotSent => false,
    }
}
