//! Retries across origins: which failed origin requests may be sent once more to another origin
//! ([`retryable`]), and how many such retries an isolate may make ([`RetryBudget`]).
//!
//! Only a request that got no answer is retried: an origin that answered, even with a `5xx`, has
//! spoken, and repeating the request elsewhere could do the work twice. The exception is an
//! origin that refused the request as overloaded ([`refused_as_overloaded`]: `503` with
//! `Retry-After`, what the origin's load shedding answers before doing any work); it is treated
//! like no answer. Of those, a request that
//! never left the edge (the origin's breaker refused it) may always go elsewhere; one that may
//! have reached the origin (no connection could be told apart from a reset mid-request, and a
//! timeout proves nothing) only when repeating it is harmless: a safe or idempotent method
//! (RFC 9110 §9.2), or a `POST` carrying an `Idempotency-Key`, which the edge and the origin
//! deduplicate.
//!
//! The budget keeps retries a small share of the traffic, so a pool-wide outage does not double
//! the load on origins already failing: each first attempt deposits `budget_percent / 100` of a
//! retry, a retry withdraws a whole one, and `min_per_second` retries a second are always
//! available, so a quiet isolate can still retry its rare failures.

use serde::{Deserialize, Serialize};

/// `ORIGINS.retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries may be at most this share of first attempts (0..=100; 0 with `min_per_second`
    /// 0 turns retries off).
    pub budget_percent: u32,
    /// Retries a second allowed whatever the traffic.
    pub min_per_second: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            budget_percent: 20,
            min_per_second: 5,
        }
    }
}

impl RetryConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.budget_percent > 100 {
            return Err("budget_percent: must be in 0..=100".into());
        }
        if self.min_per_second > 1_000 {
            return Err("min_per_second: must be at most 1000".into());
        }
        Ok(())
    }

    /// The most the budget can bank, in micro-retries: one second's floor plus what 100 first
    /// attempts deposit, so a burst after a quiet spell cannot retry more than that.
    fn cap(&self) -> u64 {
        (u64::from(self.min_per_second) + u64::from(self.budget_percent)) * MICRO
    }
}

/// How an origin request failed without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not sent: the origin's circuit breaker refused it at the edge.
    NotSent,
    /// No connection, or the connection failed before a response head.
    NoConnection,
    /// No response head within the origin timeout.
    Timeout,
    /// The origin refused it as overloaded ([`refused_as_overloaded`]).
    Overloaded,
}

/// True for an origin answer that refuses a request as overloaded: `503` with `Retry-After`
/// (RFC 9110 §15.6.4: the server is unable to handle it, and says when to come back). Such an
/// answer is a refusal, not a failure: it does not count toward the circuit breaker or the SLO's
/// error budget, and a request that is safe to repeat may go to another origin ([`retryable`]). A `503` without `Retry-After` is an
/// ordinary origin error.
pub fn refused_as_overloaded(status: u16, retry_after: bool) -> bool {
    status == 503 && retry_after
}

/// Whether a request with `method` (upper case) that failed as `failure` may be repeated on
/// another origin. `idempotency_key`: it carries an `Idempotency-Key`.
pub fn retryable(method: &str, idempotency_key: bool, failure: Failure) -> bool {
    match failure {
        Failure::NotSent => true,
        // A foreign origin's 503 does not prove the work was not started: retried only where
        // repeating is harmless, like a lost answer.
        Failure::NoConnection | Failure::Timeout | Failure::Overloaded => {
            matches!(
                method,
                "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
            ) || (method == "POST" && idempotency_key)
        }
    }
}

/// The origins a retry may go to: eligible and healthy, and not the one that failed. Unlike a
/// first attempt there is no fallback: a retry to an origin known bad would only add load.
pub fn retry_candidates(eligible: &[bool], healthy: &[bool], failed: usize) -> Vec<bool> {
    eligible
        .iter()
        .zip(healthy.iter().chain(std::iter::repeat(&true)))
        .enumerate()
        .map(|(i, (&e, &h))| e && h && i != failed)
        .collect()
}

/// The budget counts in millionths of a retry, so deposits of a percent add up exactly.
const MICRO: u64 = 1_000_000;

/// One isolate's retry budget. Starts with a second's floor, so a fresh isolate can retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryBudget {
    /// Micro-retries.
    balance: u64,
    last_ms: Option<u64>,
}

impl RetryBudget {
    pub fn new(config: &RetryConfig) -> Self {
        Self {
            balance: u64::from(config.min_per_second) * MICRO,
            last_ms: None,
        }
    }

    /// The floor accrues with time, but never lifts the balance above one second's worth.
    fn accrue(&mut self, config: &RetryConfig, now_ms: u64) {
        let floor = u64::from(config.min_per_second) * MICRO;
        if let Some(last) = self.last_ms {
            let elapsed_ms = now_ms.saturating_sub(last);
            if self.balance < floor {
                let accrued = floor.saturating_mul(elapsed_ms) / 1_000;
                self.balance = self.balance.saturating_add(accrued).min(floor);
            }
        }
        self.last_ms = Some(self.last_ms.map_or(now_ms, |last| last.max(now_ms)));
    }

    /// Counts one first attempt at `now_ms`.
    pub fn deposit(&mut self, config: &RetryConfig, now_ms: u64) {
        self.accrue(config, now_ms);
        let share = u64::from(config.budget_percent) * (MICRO / 100);
        self.balance = self.balance.saturating_add(share).min(config.cap());
    }

    /// Takes one retry from the budget at `now_ms`; false when it is spent.
    pub fn withdraw(&mut self, config: &RetryConfig, now_ms: u64) -> bool {
        self.accrue(config, now_ms);
        if self.balance >= MICRO {
            self.balance -= MICRO;
            true
        } else {
            false
        }
    }
}
