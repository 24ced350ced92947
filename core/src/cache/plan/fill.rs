//! Filling from the origin: single-flight timeouts, what a follower does after its wait, whether
//! the stored response stands in for a failed origin, and how large a body may be buffered.

use std::time::Duration;

use crate::cache::date::Timestamp;
use crate::cache::entry::Entry;
use crate::cache::lookup::{OnOriginError, is_origin_error, lookup, on_origin_error};
use crate::cache::message::{HeaderList, RequestHead};
use crate::cache::options::CacheOptions;
use crate::singleflight::Timeouts;

/// Largest body buffered for storing, in bytes: a larger one streams through unstored, so a big
/// download never sits whole in an isolate's memory.
pub const MAX_BODY: u64 = 1024 * 1024;

/// The `Cache-Status` detail of a response relayed unstored because of [`MAX_BODY`].
pub const TOO_LARGE: &str = "too-large";

/// A single-flight leader gets the origin timeout plus this before followers stop trusting it:
/// a leader whose origin call timed out still needs a moment to store or give up.
pub const LEADER_MARGIN_MS: u64 = 1_000;

/// The single-flight lock timeouts for an origin timeout: a leader is trusted for the timeout
/// plus [`LEADER_MARGIN_MS`]; a follower waits at most the timeout.
pub fn flight_timeouts(origin_timeout: Duration) -> Timeouts {
    let origin_timeout_ms = u64::try_from(origin_timeout.as_millis()).unwrap_or(u64::MAX);
    Timeouts {
        max_leader_age_ms: origin_timeout_ms.saturating_add(LEADER_MARGIN_MS),
        max_follower_wait_ms: origin_timeout_ms,
    }
}

/// What a single-flight follower does once its wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWait {
    /// The leader stored something this request may use: serve it (`Cache-Status: collapsed`).
    Collapsed,
    /// The leader stored nothing usable, or took too long: fetch unled and relay, as a miss
    /// with this detail.
    CollapseFailed,
}

impl AfterWait {
    /// A stable label; [`AfterWait::CollapseFailed`]'s is the miss's `Cache-Status` detail.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Collapsed => "collapsed",
            Self::CollapseFailed => "collapse-failed",
        }
    }
}

/// What a follower does with what the tiers hold after its wait: `found` is `None` when the wait
/// timed out (the tiers are not read again then) or they hold nothing.
pub fn after_wait(
    found: Option<&Entry>,
    request: &RequestHead<'_>,
    now: Timestamp,
    opts: &CacheOptions<'_>,
) -> AfterWait {
    match found {
        Some(entry) if lookup(entry, request, now, opts).serves_stored() => AfterWait::Collapsed,
        _ => AfterWait::CollapseFailed,
    }
}

/// How an origin call ended, as far as the cache cares. Errors of the edge's own (not the
/// origin's) are not this: the adapter propagates them without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromOrigin {
    /// The origin answered with this status.
    Answered(u16),
    /// No answer: unreachable, timed out, or its circuit breaker is open.
    NoAnswer,
}

/// What to do after asking the origin to fill (or refresh) an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterOrigin {
    /// The origin failed and the stored response stands in: serve it (`Cache-Status: hit`) with
    /// `detail` `"origin-error"` (still fresh) or `"stale-if-error"`.
    ServeStored { detail: &'static str },
    /// Use the origin's answer: a `304` updates the stored entry, anything else is stored or
    /// relayed as RFC 9111 says (an error included, when nothing could stand in).
    UseAnswer,
    /// No answer and nothing may stand in: fail with the origin's error.
    Fail,
}

impl AfterOrigin {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ServeStored { .. } => "serve-stored",
            Self::UseAnswer => "use-answer",
            Self::Fail => "fail",
        }
    }
}

/// What to do with the origin's `reply` to a fill of `request`, given the `stored` entry the fill
/// was revalidating, if any. A `500`, `502`, `503`, `504` or no answer is a failure (RFC 5861
/// §4); then [`on_origin_error`] decides whether the stored entry stands in.
pub fn after_origin(
    reply: FromOrigin,
    stored: Option<&Entry>,
    request: &RequestHead<'_>,
    now: Timestamp,
    opts: &CacheOptions<'_>,
) -> AfterOrigin {
    let failed = match reply {
        FromOrigin::Answered(status) => is_origin_error(status),
        FromOrigin::NoAnswer => true,
    };
    if failed && let Some(entry) = stored {
        match on_origin_error(entry, request, now, opts) {
            OnOriginError::ServeFresh => {
                return AfterOrigin::ServeStored {
                    detail: "origin-error",
                };
            }
            OnOriginError::ServeStale => {
                return AfterOrigin::ServeStored {
                    detail: "stale-if-error",
                };
            }
            OnOriginError::Fail(_) => {}
        }
    }
    match reply {
        FromOrigin::Answered(_) => AfterOrigin::UseAnswer,
        FromOrigin::NoAnswer => AfterOrigin::Fail,
    }
}

/// Whether a storable response with these header fields may be read to be stored: it does not
/// declare a `Content-Length` over [`MAX_BODY`] (one that does is relayed unread, with the detail
/// [`TOO_LARGE`]). An unsized or unparsable length is read up to [`MAX_BODY`] and relayed unstored
/// past it.
pub fn body_fits(response_headers: &HeaderList) -> bool {
    response_headers
        .get("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_none_or(|len| len <= MAX_BODY)
}
