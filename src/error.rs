//! The edge's one error type, and its one mapping to HTTP (problem+json).

use breakwater_core::config::ConfigError;
use breakwater_core::intake::{ALLOWED_METHODS, Rejection};
use breakwater_core::problem::Problem;
use breakwater_core::purge::PurgeError;
use breakwater_core::ratelimit::retry_after_secs;
use breakwater_core::token::TokenError;
use breakwater_core::writebehind::EventError;
use std::time::Duration;

/// Everything that can stop a request at the edge, by whose fault it was.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The client sent something intake refuses.
    #[error("rejected at intake: {}", .0.detail())]
    Rejected(Rejection),
    /// The client used a method this route does not serve.
    #[error("method not allowed here; allowed: {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// An operator endpoint was called without the right bearer token.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// An operator endpoint was called but no token is configured to open it.
    #[error(
        "the admin endpoints are disabled: set the ADMIN_TOKEN secret (at least 32 characters) to \
         enable them"
    )]
    AdminDisabled,
    /// The request body is not what the endpoint reads.
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// A purge request that names nothing, too much, or malformed items.
    #[error(transparent)]
    InvalidPurge(#[from] PurgeError),
    /// The principal's rate-limit bucket is empty.
    #[error("rate limited for {retry_after_ms} ms")]
    RateLimited {
        retry_after_ms: u64,
        policy: String,
        ratelimit: String,
    },
    /// The request costs more than the principal's quota can ever hold at once.
    #[error("this request costs more than the quota allows at once")]
    InsufficientCapacity,
    /// Load shedding: the SLO is burning and this route's priority is being turned away.
    #[error("shedding load; retry in {retry_after_s} s")]
    Shed { retry_after_s: u64 },
    /// The rate limiter did not answer on a route that fails closed.
    #[error("the rate limiter is unavailable")]
    LimiterUnavailable,
    /// The circuit breaker toward the origin is open and nothing stored can answer.
    #[error("the origin is failing; its circuit is open for about {retry_after_ms} ms")]
    BreakerOpen { retry_after_ms: u64 },
    /// An access token that does not verify (or is not exactly one bearer token). The reason
    /// is a class, never the token.
    #[error("invalid access token ({})", .0.as_str())]
    InvalidToken(TokenError),
    /// An API key header with a key this deployment does not know.
    #[error("unknown API key")]
    UnknownApiKey,
    /// A route that requires an `Idempotency-Key` got none.
    #[error("this request needs an Idempotency-Key header")]
    IdempotencyKeyMissing,
    /// The `Idempotency-Key` is not a valid key.
    #[error("invalid Idempotency-Key: {0}")]
    IdempotencyKeyInvalid(String),
    /// The first attempt with this key is still running.
    #[error("a request with this Idempotency-Key is in progress")]
    IdempotencyInFlight { retry_after_ms: u64 },
    /// The `IDEMPOTENCY` object did not answer, on a route whose origin keeps no record of its
    /// own: nothing was sent.
    #[error("the idempotency records are unavailable")]
    IdempotencyUnavailable,
    /// The key was used before for a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyMismatch,
    /// A write-behind request whose event is invalid (bad id, body, media type).
    #[error("invalid event: {0}")]
    InvalidEvent(EventError),
    /// A queue (or the dead-letter store) did not take what it was given: a retry may help.
    #[error("queue unavailable: {0}")]
    QueueUnavailable(String),
    /// A Durable Object the request needed (`CONTROL` for a purge or the dead letters, ...) did
    /// not answer usably: a retry may help. The detail names the binding, for the log.
    #[error("dependency unavailable: {0}")]
    DependencyUnavailable(String),
    /// The deployment's configuration is invalid: our fault, no retry helps.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The origin could not be reached (refused, reset, DNS): a retry may help.
    #[error("origin unreachable: {0}")]
    OriginUnreachable(String),
    /// The origin did not answer in time: a retry may help.
    #[error("origin did not answer within {0:?}")]
    OriginTimeout(Duration),
    /// The origin answered something the edge cannot pass on (a status the runtime cannot
    /// construct, a header field it refuses): the origin's fault, counted as a failure like a
    /// `502`. Not retried on another origin: this one did receive the request.
    #[error("origin sent an invalid response: {0}")]
    OriginInvalidResponse(String),
    /// The origin's concurrency limit is reached and the request could not wait for a slot
    /// within its deadline (`crate::upstream::limit`): refused before it was sent.
    #[error("the origin is at its concurrency limit; retry after {retry_after_ms} ms")]
    OriginAtCapacity { retry_after_ms: u64 },
    /// A runtime call failed where it should not (bindings missing, JS exceptions).
    #[error("edge internal error: {0}")]
    Internal(String),
}

impl From<worker::Error> for EdgeError {
    fn from(e: worker::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

impl EdgeError {
    /// The origin gave no usable answer: unreachable, too slow, an answer the edge cannot pass
    /// on, or its breaker refused the call. A stored response may stand in (`stale-if-error`).
    pub fn is_no_answer(&self) -> bool {
        matches!(
            self,
            Self::OriginUnreachable(_)
                | Self::OriginTimeout(_)
                | Self::OriginInvalidResponse(_)
                | Self::BreakerOpen { .. }
                | Self::OriginAtCapacity { .. }
        )
    }

    /// Why the edge turned the request away, for the refusal metric; `None` for anything that
    /// is not a refusal (a client error, a failure).
    pub fn refusal(&self) -> Option<&'static str> {
        match self {
            Self::RateLimited { .. } => Some("rate-limited"),
            Self::InsufficientCapacity => Some("insufficient-capacity"),
            Self::Shed { .. } => Some("shed"),
            Self::LimiterUnavailable => Some("limiter-unavailable"),
            Self::BreakerOpen { .. } => Some("origin-circuit-open"),
            Self::OriginAtCapacity { .. } => Some("origin-at-capacity"),
            _ => None,
        }
    }

    /// The problem body and any extra headers the status requires.
    pub fn to_problem(&self) -> (Problem, Vec<(&'static str, String)>) {
        match self {
            Self::Rejected(r) => {
                let allow = match r {
                    Rejection::MethodNotAllowed(_) => vec![("allow", ALLOWED_METHODS.join(", "))],
                    _ => vec![],
                };
                (
                    Problem::new(r.kind(), r.status(), r.title()).with_detail(r.detail()),
                    allow,
                )
            }
            Self::MethodNotAllowed { allow } => (
                Problem::new("method-not-allowed", 405, "Method not allowed")
                    .with_detail(self.to_string()),
                vec![("allow", (*allow).to_owned())],
            ),
            Self::Unauthorized => (
                Problem::new("unauthorized", 401, "Unauthorized").with_detail(self.to_string()),
                vec![(
                    "www-authenticate",
                    r#"Bearer realm="breakwater-admin""#.to_owned(),
                )],
            ),
            Self::AdminDisabled => (
                Problem::new("admin-disabled", 403, "Admin endpoints disabled")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::InvalidBody(_) => (
                Problem::new("invalid-body", 400, "Invalid request body")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::InvalidPurge(_) => (
                Problem::new("invalid-purge", 422, "Invalid purge request")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::RateLimited {
                retry_after_ms,
                policy,
                ratelimit,
            } => (
                Problem::new("rate-limited", 429, "Too many requests").with_detail(format!(
                    "this client's quota is used up; retry in {} s",
                    retry_after_secs(*retry_after_ms)
                )),
                vec![
                    ("retry-after", retry_after_secs(*retry_after_ms).to_string()),
                    ("ratelimit-policy", policy.clone()),
                    ("ratelimit", ratelimit.clone()),
                ],
            ),
            Self::InsufficientCapacity => (
                Problem::new("insufficient-capacity", 403, "Quota too small")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::Shed { retry_after_s } => (
                Problem::new("overloaded", 503, "Service overloaded").with_detail(
                    "the service is shedding load to protect its error budget; retry shortly",
                ),
                vec![("retry-after", retry_after_s.to_string())],
            ),
            Self::LimiterUnavailable => (
                Problem::new("limiter-unavailable", 503, "Temporarily unavailable")
                    .with_detail("admission control is unavailable; retry shortly"),
                vec![("retry-after", "1".into())],
            ),
            Self::BreakerOpen { retry_after_ms } => (
                Problem::new("origin-circuit-open", 503, "Origin unavailable").with_detail(
                    "the origin is failing and nothing stored can answer; retry shortly",
                ),
                vec![("retry-after", retry_after_secs(*retry_after_ms).to_string())],
            ),
            // RFC 6750 §3.1: the same error code for every reason; the class is for the client's
            // developer, and the token itself is never echoed.
            Self::InvalidToken(e) => (
                Problem::new("invalid-token", 401, "Invalid access token").with_detail(format!(
                    "the bearer token was refused ({}); sign in again for a new one",
                    e.as_str()
                )),
                vec![(
                    "www-authenticate",
                    r#"Bearer realm="breakwater", error="invalid_token""#.to_owned(),
                )],
            ),
            // A 401 must carry a challenge (RFC 9110 §11.6.1); API keys have no registered scheme.
            Self::UnknownApiKey => (
                Problem::new("unknown-api-key", 401, "Unknown API key")
                    .with_detail(self.to_string()),
                vec![(
                    "www-authenticate",
                    r#"ApiKey realm="breakwater""#.to_owned(),
                )],
            ),
            Self::IdempotencyKeyMissing => (
                Problem::new("idempotency-key-missing", 400, "Idempotency-Key required")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::IdempotencyKeyInvalid(_) => (
                Problem::new("idempotency-key-invalid", 400, "Invalid Idempotency-Key")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::IdempotencyInFlight { retry_after_ms } => (
                Problem::new("idempotency-key-in-flight", 409, "Request in progress")
                    .with_detail(self.to_string()),
                vec![("retry-after", retry_after_secs(*retry_after_ms).to_string())],
            ),
            Self::IdempotencyMismatch => (
                Problem::new("idempotency-key-reused", 422, "Idempotency-Key reused")
                    .with_detail(self.to_string()),
                vec![],
            ),
            Self::InvalidEvent(e) => (
                Problem::new(e.as_str(), e.status(), e.title()).with_detail(e.to_string()),
                vec![],
            ),
            Self::IdempotencyUnavailable => (
                Problem::new("idempotency-unavailable", 503, "Temporarily unavailable").with_detail(
                    "the edge could not reach its record of this Idempotency-Key; nothing was \
                     sent, retry shortly with the same key",
                ),
                vec![("retry-after", "1".into())],
            ),
            Self::QueueUnavailable(_) => (
                Problem::new("queue-unavailable", 503, "Queue unavailable").with_detail(
                    "the edge could not queue this; nothing was recorded, retry shortly",
                ),
                vec![("retry-after", "5".into())],
            ),
            Self::DependencyUnavailable(_) => (
                Problem::new("dependency-unavailable", 503, "Temporarily unavailable")
                    .with_detail("a store the edge needs for this did not answer; retry shortly"),
                vec![("retry-after", "1".into())],
            ),
            // Configuration and internal details are for our logs, not for clients.
            Self::Config(_) => (
                Problem::new("edge-misconfigured", 500, "Edge misconfigured")
                    .with_detail("the edge's configuration is invalid; the operator has been told"),
                vec![],
            ),
            Self::OriginUnreachable(_) => (
                Problem::new("origin-unreachable", 502, "Origin unreachable")
                    .with_detail("the edge could not connect to the origin; try again shortly"),
                vec![("retry-after", "5".into())],
            ),
            // What was wrong stays in the log: it describes the origin, not the client's request.
            Self::OriginInvalidResponse(_) => (
                Problem::new("origin-invalid-response", 502, "Invalid origin response")
                    .with_detail(
                        "the origin sent a response the edge cannot relay; try again shortly",
                    ),
                vec![("retry-after", "5".into())],
            ),
            Self::OriginAtCapacity { retry_after_ms } => (
                Problem::new("overloaded", 503, "Origin at capacity").with_detail(
                    "the origin is answering as many requests as it can without queueing; retry shortly",
                ),
                vec![("retry-after", retry_after_secs(*retry_after_ms).to_string())],
            ),
            Self::OriginTimeout(t) => (
                Problem::new("origin-timeout", 504, "Origin timed out").with_detail(format!(
                    "the origin did not answer within {} ms",
                    t.as_millis()
                )),
                vec![("retry-after", "5".into())],
            ),
            Self::Internal(_) => (
                Problem::new("edge-internal", 500, "Internal error at the edge")
                    .with_detail("an unexpected error occurred at the edge"),
                vec![],
            ),
        }
    }

    /// Whether the operator needs to hear about it (logged at error level).
    pub fn is_ours(&self) -> bool {
        matches!(
            self,
            Self::Config(_)
                | Self::Internal(_)
                | Self::QueueUnavailable(_)
                | Self::DependencyUnavailable(_)
        )
    }
}
