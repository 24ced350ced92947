//! Write-behind: counters (product views, votes) that the edge answers `202` at once and the
//! database sees in batches.
//!
//! 1. **Producer** ([`intake`]): a request on a configured route ([`WriteBehindConfig`]) becomes
//!    an [`Event`] with a fresh [`EventId`] and goes on the `EVENTS` queue as an
//!    [`EventMessage`]. Bad input is refused before anything is queued ([`EventError`]).
//! 2. **Consumer** ([`message`], [`delivery`]): each delivered message is [`classify`]'d; poison
//!    (malformed, an unknown version, oversized) is dead-lettered at once. The rest go to the
//!    origin as one [`BatchRequest`] under a [`batch_id`] derived from the event ids, so a
//!    redelivery of the same set carries the same id ([`batch`] declares that endpoint's JSON
//!    once, for the edge that sends it and the origin that reads it). [`settle`] turns the
//!    origin's answer into one [`Action`] per message: ack, retry after a [`backoff`] delay, or
//!    dead-letter with a reason.
//! 3. **Dead letters** ([`dead`]): a [`DeadLetter`] carries the message with its reason, attempts
//!    and times; the admin endpoints list them and replay them onto `EVENTS` with the same event
//!    ids, so the origin's per-event dedup keeps a replay harmless.
//!
//! Everything here is pure: time and random bits come in as arguments.

mod backoff;
mod batch;
mod config;
mod dead;
mod delivery;
mod event;
mod intake;
mod message;

#[cfg(test)]
mod properties;

pub use backoff::{MAX_DELAY_SECONDS, backoff};
pub use batch::{
    BatchId, BatchRequest, BatchResponse, MAX_BATCH_ID, MAX_EVENTS, Rejected, batch_id,
};
pub use config::{PathPattern, WriteBehindConfig, WriteBehindRoute};
pub use dead::{DeadLetter, DeadLetterEnvelope, ReplayRequest, dead_letter_id};
pub use delivery::{Action, Delivery, Outcome, Settlement, settle};
pub use event::{Event, EventId, EventKind, ProductId};
pub use intake::{EventError, EventInput, parse_event};
pub use message::{EventMessage, MESSAGE_VERSION, Poison, classify};
