//! The generic cell rate algorithm (GCRA) over all the quotas of a principal at once.
//!
//! A quota of `limit` requests per `period_ms` admits one request every T = `period_ms / limit`
//! ms sustained, and up to `burst` back to back after an idle spell. GCRA keeps one number per
//! bucket, the theoretical arrival time (TAT): the moment the bucket is full again. A request of
//! cost n at `now` would move it to `max(TAT, now) + n·T`, and is admitted if that is no later
//! than `now + burst·T`. Time only ever enters as a difference from the stored TAT, so a clock
//! that jumps backwards makes the bucket look emptier, never fuller: waits grow, tokens do not.
//!
//! T is seldom a whole number of milliseconds (3 per second is 333.3 ms), and rounding it would
//! let the sustained rate drift. So the arithmetic runs in *ticks* of `1/limit` ms, in which T is
//! exactly `period_ms` ticks, and in u128, which cannot overflow for any u64 `now`. Only what is
//! handed out (waits and resets) is rounded to milliseconds, always up: a client that waits as
//! told is admitted.

use serde::{Deserialize, Serialize};

/// Longest quota period: 30 days. It bounds how far ahead a TAT can run, which keeps every sum
/// within range even for a `now` near `u64::MAX`.
pub const MAX_PERIOD_MS: u64 = 30 * 24 * 3_600_000;

/// `limit` requests per `period_ms` sustained, and at most `burst` at once.
///
/// [`crate::ratelimit::AdmissionPolicy`] only builds quotas with `limit`, `burst` and `period_ms`
/// of at least 1 and a period of at most [`MAX_PERIOD_MS`]. [`check`] clamps a quota built any
/// other way to that range rather than fail; a `burst` of 0 makes every costly request
/// [`Verdict::TooCostly`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Reported in the `RateLimit` headers and unique among the quotas of one route.
    pub name: String,
    pub limit: u32,
    pub period_ms: u64,
    pub burst: u32,
}

/// The stored state of one quota for one principal: its theoretical arrival time, which is
/// `tat_ms + tat_frac / limit` ms since the epoch. The default (TAT 0) is a full bucket.
///
/// If the quota's `limit` changes between deployments the fraction is reinterpreted, which moves
/// the TAT by less than a millisecond; the bucket never resets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    tat_ms: u64,
    tat_frac: u32,
}

/// One quota's state after a check, for the `RateLimit` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaStatus {
    pub name: String,
    pub limit: u32,
    pub period_ms: u64,
    /// Cost-1 requests this quota would still admit right now.
    pub remaining: u32,
    /// Milliseconds until the bucket is full again (0 = full). The limiter may forget a bucket
    /// once every quota's reset has passed: it then equals [`Bucket::default`].
    pub reset_ms: u64,
    /// How long until this quota would admit the same request, when it is one that denies it.
    pub retry_after_ms: Option<u64>,
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allow,
    /// Over the limit; the same request is admitted after exactly `retry_after_ms` (if nothing
    /// else is charged meanwhile) and not a millisecond earlier.
    Deny {
        retry_after_ms: u64,
    },
    /// The cost exceeds a quota's burst: the request can never pass, so waiting cannot help and
    /// this is not a 429 with a finite `Retry-After`.
    TooCostly,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny { .. } => "deny",
            Self::TooCostly => "too-costly",
        }
    }
}

/// The verdict, and every quota's state after it (in the order of the quotas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub quotas: Vec<QuotaStatus>,
}

/// Checks every quota of a principal at once: allowed only if all allow, and then all buckets are
/// charged `cost`; denied leaves every bucket untouched. cost 0 = peek (never mutates).
///
/// `buckets[i]` is the state of `quotas[i]`; the caller keeps the lengths equal (after a policy
/// change, resize with [`Bucket::default`]). A quota without a bucket is judged as full and
/// cannot be charged.
///
/// Denials take the longest wait of the quotas that deny. `now_ms` may move in any direction; a
/// `now_ms` so close to `u64::MAX` that a TAT could no longer be stored is held just below that
/// point, which admits nothing extra.
pub fn check(quotas: &[Quota], buckets: &mut [Bucket], now_ms: u64, cost: u32) -> Outcome {
    debug_assert_eq!(quotas.len(), buckets.len(), "one bucket per quota");
    let probes: Vec<Probe> = quotas
        .iter()
        .enumerate()
        .map(|(i, quota)| {
            Probe::new(
                quota,
                buckets.get(i).copied().unwrap_or_default(),
                now_ms,
                cost,
            )
        })
        .collect();
    let verdict = if probes.iter().any(|p| p.too_costly) {
        Verdict::TooCostly
    } else {
        match probes.iter().map(|p| p.wait_ms).max() {
            Some(wait) if wait > 0 => Verdict::Deny {
                retry_after_ms: wait,
            },
            _ => Verdict::Allow,
        }
    };
    let admitted = verdict == Verdict::Allow;
    if admitted && cost > 0 {
        for (bucket, probe) in buckets.iter_mut().zip(&probes) {
            *bucket = probe.rate.bucket(probe.charged);
        }
    }
    let quotas = quotas
        .iter()
        .zip(&probes)
        .map(|(quota, probe)| probe.status(quota, admitted))
        .collect();
    Outcome { verdict, quotas }
}

/// A quota in ticks of `1/limit` ms.
struct Rate {
    /// Ticks per millisecond.
    limit: u128,
    /// The emission interval T, in ticks: exactly `period_ms`.
    interval: u128,
    burst: u32,
}

impl Rate {
    fn of(quota: &Quota) -> Self {
        Self {
            limit: u128::from(quota.limit.max(1)),
            interval: u128::from(quota.period_ms.clamp(1, MAX_PERIOD_MS)),
            burst: quota.burst,
        }
    }

    /// How far a TAT may run ahead of now: `burst·T`.
    fn capacity(&self) -> u128 {
        u128::from(self.burst) * self.interval
    }

    /// `now` in ticks, held where `now + burst·T` still fits a u64 of milliseconds.
    fn now(&self, now_ms: u64) -> u128 {
        let latest = u64::MAX.saturating_sub(self.ms_ceil(self.capacity()));
        u128::from(now_ms.min(latest)) * self.limit
    }

    fn tat(&self, bucket: Bucket) -> u128 {
        u128::from(bucket.tat_ms) * self.limit + u128::from(bucket.tat_frac).min(self.limit - 1)
    }

    fn bucket(&self, tat: u128) -> Bucket {
        Bucket {
            tat_ms: u64::try_from(tat / self.limit).unwrap_or(u64::MAX),
            tat_frac: u32::try_from(tat % self.limit).unwrap_or(0),
        }
    }

    /// Ticks to milliseconds, rounded up: a wait or reset is never reported short.
    fn ms_ceil(&self, ticks: u128) -> u64 {
        u64::try_from(ticks.div_ceil(self.limit)).unwrap_or(u64::MAX)
    }
}

/// One quota's view of one request.
struct Probe {
    rate: Rate,
    now: u128,
    tat: u128,
    /// The TAT once charged.
    charged: u128,
    /// How long until the request fits this quota (0 = it fits now).
    wait_ms: u64,
    too_costly: bool,
}

impl Probe {
    fn new(quota: &Quota, bucket: Bucket, now_ms: u64, cost: u32) -> Self {
        let rate = Rate::of(quota);
        let now = rate.now(now_ms);
        let tat = rate.tat(bucket);
        let charged = tat.max(now) + u128::from(cost) * rate.interval;
        let wait_ms = rate.ms_ceil(charged.saturating_sub(now + rate.capacity()));
        Self {
            too_costly: cost > rate.burst,
            rate,
            now,
            tat,
            charged,
            wait_ms,
        }
    }

    fn status(&self, quota: &Quota, admitted: bool) -> QuotaStatus {
        let tat = if admitted { self.charged } else { self.tat };
        let ahead = tat.saturating_sub(self.now);
        let remaining = self.rate.capacity().saturating_sub(ahead) / self.rate.interval;
        QuotaStatus {
            name: quota.name.clone(),
            limit: quota.limit,
            period_ms: quota.period_ms,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_ms: self.rate.ms_ceil(ahead),
            retry_after_ms: (self.wait_ms > 0 && !self.too_costly).then_some(self.wait_ms),
        }
    }
}

#[cfg(test)]
mod tests;
