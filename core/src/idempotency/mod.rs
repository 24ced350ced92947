//! Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a request sent again with the
//! same `Idempotency-Key` takes effect at most once, and its retries get the first answer.
//!
//! The `IDEMPOTENCY` Durable Object keeps one [`Record`] per (principal, key), named by
//! [`record_name`], so one principal's key never reaches another's record. Each call to it is one
//! atomic turn (STYLE rule 3): load the record, decide here, store or delete it, with no `fetch`
//! in between. The request goes to the origin between two such turns:
//!
//! 1. [`begin`] with the request's [`fingerprint`]. [`Begin::Proceed`] claims the key: store
//!    `Record::InFlight(claim)` and send the request on. Otherwise the edge answers itself:
//!    [`Begin::Replay`] sends the stored response with `Idempotent-Replayed: true`;
//!    [`Begin::InFlight`] is a 409 with `Retry-After` of the lease left; [`Begin::Mismatch`] (same
//!    key, different method, path, query or body) is a 422; [`Begin::ReplayFromOrigin`] forwards
//!    the request unclaimed, because the body was too large to keep and the origin replays it.
//! 2. The origin answered: [`complete`] keeps a 2xx or 3xx answer for `retention_ms`. Any other
//!    answer ([`CompleteError::NotReplayable`]) is [`release`]d, so the next retry reaches the
//!    origin at once ([`is_replayable`] says why 4xx and 5xx are not kept).
//! 3. The origin gave no answer: [`should_keep_on_no_answer`], below.
//!
//! A missing or invalid key on a route that requires one is a 400 ([`parse_key`]).
//!
//! # Leases and takeover
//!
//! A claim holds the key for `lease_ms`, longer than the edge's origin timeout. Past it the
//! attempt is presumed dead: the same request takes the key over as the next attempt, and the old
//! holder can then neither complete nor release (its [`Claim`] no longer matches the record).
//! Until someone takes over, a late holder may still complete. Past its lease or its retention a
//! record means nothing: [`begin`] treats it as absent, and an alarm may delete it from
//! [`expires_at`] on. This also holds for a *different* request after a lease ended: the edge no
//! longer knows what happened, so it forwards, and the origin, which does know, decides.
//!
//! # When the origin gives no answer
//!
//! A request that was sent and then timed out or lost its connection ([`NoAnswer::Lost`]) keeps
//! its claim until the lease ends. The first attempt may still be running: a retry during the
//! lease gets a 409 saying exactly when to come back, instead of a second request racing the
//! first, and an origin that just failed to answer in time gets no retry load on top (the retry
//! budget). Once the lease ends the retry goes through and the origin's own unique (principal,
//! key) record replays the answer if the first attempt committed, or lets it execute if it did
//! not. Releasing at once would also be safe, since the origin dedupes, but it would spend origin
//! capacity to learn "still running" and lean on the origin's concurrency handling exactly when
//! it is slowest. The price is a wait of at most `lease_ms` minus the origin timeout.
//!
//! A request that never left the edge ([`NoAnswer::NotSent`]: breaker open, shed, or failed
//! before `fetch`) is released: nothing can be running, so making the client wait gains nothing.

mod fingerprint;
mod key;
mod lifecycle;
mod stored;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use fingerprint::{Fingerprint, fingerprint};
pub use key::{HEADER, IdempotencyKey, KeyError, MAX_KEY_CHARS, parse_key, record_name};
pub use lifecycle::{
    Begin, Claim, CompleteError, NoAnswer, Policy, Record, begin, complete, expires_at, is_expired,
    release, should_keep_on_no_answer,
};
pub use stored::{
    Answer, REPLAYED_HEADER, REPLAYED_HEADERS, StoredResponse, is_replayable, is_replayed_header,
};
