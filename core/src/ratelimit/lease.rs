//! Token leases: an isolate asks the limiter object for a batch of requests once, and admits
//! them locally until the batch is used up or expires, instead of one object round trip per
//! request.
//!
//! The object charges the whole batch to the principal's buckets when it grants it ([`grant`]);
//! the isolate only counts down ([`Lease::take`]). Unused tokens expire and are never refunded:
//! once GCRA's `max(TAT, now)` has moved a bucket's TAT up to `now`, a refund would hand back
//! capacity that had already refilled.
//!
//! Charging at grant time is not by itself enough to keep the bound exact mode keeps, at most
//! `burst + ⌊Δ/T⌋` admitted in any window of Δ ms. A token charged at `g` and spent at `g + Δ`
//! lets the bucket refill *while the token is held*: lease 5 of a 10/s burst-20 quota at 0, hold
//! them, and at 500 ms the bucket is full again, so another isolate can take 20 while this one
//! spends its 5, 25 in one instant. So the request that asks for the lease is charged as
//! [`check`] would charge it, and the tokens the isolate *holds* are charged to slots dated at the
//! lease's expiry `g + life`: the TAT moves to `max(TAT, g + life) + held·T`, and only if that is
//! within `burst·T` of `g`. Every admitted request's slot of T then starts no earlier than the
//! request is admitted and ends within `burst·T` after it, which is exactly what bounds exact
//! mode, so in every window lease mode admits no more than exact mode could, whatever the isolates
//! do with their tokens. Because greedy GCRA admission admits the most requests of one cost that
//! any schedule within that bound can, lease mode also never admits more in total than exact mode
//! would have over the same arrivals (`lease/properties.rs` checks both).
//!
//! The price is the dating gap: while a lease is out, up to `life/T` of a bucket's burst is set
//! aside (none while its TAT is already more than `life` ahead, i.e. while it is busy, so the
//! sustained rate is untouched). That, and tokens held unused by one isolate, can make lease mode
//! refuse a request exact mode would admit; never the reverse. [`lease_life_ms`] keeps the gap,
//! and [`grant`] the held tokens, to a quarter of the burst each, so a few isolates sharing a
//! principal cannot drain it for one another; routes whose bursts are too small for that get
//! single-request leases, which is exact mode.
//!
//! Pure: the object passes its clock to [`grant`], the isolate its own to [`Lease`]; the two
//! clocks never meet (the isolate measures the lease's life from when it asked).

#[cfg(test)]
mod properties;
mod rate;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use rate::RateEstimate;

use super::{Bucket, MAX_PERIOD_MS, Outcome, Quota, QuotaStatus, Verdict, check};

/// The longest a lease lives: 1 s. An isolate then asks the object about once a second per busy
/// principal, whatever its request rate (a lease is sized to the rate times its life), which is
/// where nearly all the round trips are saved; a longer life would save little more but keep
/// held tokens out of other isolates' reach, and date them further ahead, for longer. Routes
/// whose bursts refill faster get shorter leases ([`lease_life_ms`]).
pub const LEASE_MS: u64 = 1_000;

/// The shortest lease worth granting: a lease must outlive the trip back from the object, or its
/// held tokens expire unused on the way. Below it, leases carry only the request that asked.
pub const MIN_LEASE_MS: u64 = 50;

/// Bursts below this are not leased out: a quarter of them is at most one request.
const SMALL_BURST: u32 = 8;

/// A lease holds, and its dating sets aside, at most `1/HOLD_SHARE` of any quota's burst.
const HOLD_SHARE: u32 = 4;

/// The object's answer to a lease request. Travels from the object to the isolate as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Requests of the asked cost granted, the one that asked included: 0 when that one is
    /// refused, and never more than asked for (a `want` of 0 counts as 1).
    pub tokens: u32,
    /// How long the isolate may hold the tokens, from when it asked: the held ones are charged
    /// to slots dated this far after the grant, so spending one later could break the bound.
    pub life_ms: u64,
    /// With tokens: every quota's state after the whole lease was charged, verdict
    /// [`Verdict::Allow`]. Without: the refusal of the single request that asked, as [`check`]
    /// gives it ([`Verdict::Deny`] with its wait, or [`Verdict::TooCostly`]).
    pub outcome: Outcome,
}

/// Grants up to `want` requests of `cost` at once, the one that asked included, and charges them
/// all to `buckets` now. The one that asked is charged exactly as [`check`] would charge it, so
/// a lease is refused exactly when a single request would be, and then nothing is charged. The
/// rest, the held tokens, are as many as fit when charged to slots dated at the lease's expiry
/// (see the module documentation), capped at a quarter of the smallest burst.
///
/// `buckets[i]` is the state of `quotas[i]`, as for [`check`]. A cost of 0 charges nothing and
/// grants what is asked for within that cap, as [`check`] admits every free request.
pub fn grant(quotas: &[Quota], buckets: &mut [Bucket], now_ms: u64, cost: u32, want: u32) -> Grant {
    let life_ms = lease_life_ms(quotas);
    let first = check(quotas, buckets, now_ms, cost);
    if first.verdict != Verdict::Allow {
        return Grant {
            tokens: 0,
            life_ms,
            outcome: first,
        };
    }
    let wanted = want.max(1).min(max_tokens(quotas, cost));
    let held = hold(quotas, buckets, now_ms, life_ms, cost, wanted - 1);
    let outcome = if held == 0 || cost == 0 {
        first
    } else {
        check(quotas, buckets, now_ms, 0)
    };
    Grant {
        tokens: 1 + held,
        life_ms,
        outcome,
    }
}

/// Charges up to `extra` requests of `cost` to slots dated `life_ms` ahead; how many it charged.
fn hold(
    quotas: &[Quota],
    buckets: &mut [Bucket],
    now_ms: u64,
    life_ms: u64,
    cost: u32,
    extra: u32,
) -> u32 {
    if extra == 0 || life_ms == 0 {
        return 0;
    }
    if cost == 0 {
        return extra;
    }
    let Some(expiry) = now_ms.checked_add(life_ms) else {
        return 0;
    };
    let Some(dated) = quotas
        .iter()
        .map(|quota| dated(quota, expiry, life_ms))
        .collect::<Option<Vec<_>>>()
    else {
        return 0;
    };
    let room = check(&dated, buckets, expiry, 0)
        .quotas
        .iter()
        .map(|status| status.remaining / cost)
        .min()
        .unwrap_or(extra);
    let held = room.min(extra);
    // `held · cost` is at most one quota's `remaining`, a u32; with no quotas it may not be, and
    // then nothing needs charging.
    let total = held.checked_mul(cost).unwrap_or(0);
    if held == 0 || check(&dated, buckets, expiry, total).verdict != Verdict::Allow {
        return 0;
    }
    held
}

/// `quota` as seen from the lease's expiry: checked at `expiry`, a charge must still end within
/// `burst·T` of the grant, so the burst shrinks by the life in intervals, rounded up. `None` when
/// [`check`] would hold `expiry` back (the far end of time), which would date the slots early.
fn dated(quota: &Quota, expiry: u64, life_ms: u64) -> Option<Quota> {
    let (limit, period) = interval(quota);
    let life = u128::from(life_ms) * limit;
    let burst = u128::from(quota.burst).saturating_sub(life.div_ceil(period));
    let capacity_ms = (burst * period).div_ceil(limit);
    if u128::from(expiry) + capacity_ms > u128::from(u64::MAX) {
        return None;
    }
    Some(Quota {
        burst: u32::try_from(burst).unwrap_or(0),
        ..quota.clone()
    })
}

/// A quota's `limit` and `period_ms` clamped as [`check`] clamps them: T = period / limit ms.
fn interval(quota: &Quota) -> (u128, u128) {
    (
        u128::from(quota.limit.max(1)),
        u128::from(quota.period_ms.clamp(1, MAX_PERIOD_MS)),
    )
}

/// How long a lease on `quotas` lives: [`LEASE_MS`], or a quarter of the time the smallest
/// burst takes to refill if that is shorter, so that dating held tokens at the expiry sets aside
/// at most a quarter of any burst. 0 (no leasing: every lease is the one request that asked)
/// when that is under [`MIN_LEASE_MS`].
pub fn lease_life_ms(quotas: &[Quota]) -> u64 {
    let share = u128::from(HOLD_SHARE);
    let life = quotas
        .iter()
        .map(|quota| {
            let (limit, period) = interval(quota);
            u128::from(quota.burst) * period / (limit * share)
        })
        .fold(u128::from(LEASE_MS), u128::min);
    let life = u64::try_from(life).unwrap_or(LEASE_MS);
    if life < MIN_LEASE_MS { 0 } else { life }
}

/// The most requests of `cost` one lease may carry: a quarter of the smallest burst, and 1 where
/// bursts are small or leases too short-lived to be worth holding.
fn max_tokens(quotas: &[Quota], cost: u32) -> u32 {
    let Some(smallest) = quotas.iter().map(|q| q.burst).min() else {
        return 1;
    };
    if smallest < SMALL_BURST || lease_life_ms(quotas) == 0 {
        return 1;
    }
    (smallest / HOLD_SHARE / cost.max(1)).max(1)
}

/// How many requests of `cost` an isolate should ask for ([`grant`]'s `want`), given its recent
/// rate of requests for this policy and principal ([`RateEstimate::per_second`], counting the
/// one in hand): that one, and those expected while the lease lives, capped at a quarter of the
/// smallest burst. 1 (exact mode) for small bursts or short-lived leases, and for a rate that is
/// not a positive number.
pub fn lease_size(quotas: &[Quota], cost: u32, recent_rate_per_s: f64) -> u32 {
    let life_s = lease_life_ms(quotas) as f64 / 1_000.0;
    // Saturating: NaN becomes 0, and a rate too large for a u32 the cap.
    let expected = (recent_rate_per_s * life_s).floor().max(0.0) as u32;
    expected.saturating_add(1).min(max_tokens(quotas, cost))
}

/// The isolate's side of a [`Grant`]: the requests it may still admit without asking the object,
/// and until when. Lives in the isolate only; one per (policy, principal) is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    tokens_left: u32,
    expires_at_ms: u64,
    /// The latest clock reading the lease has seen. A clock that goes back ends the lease: its
    /// life could no longer be measured, and spending it late could break the bound.
    latest_ms: u64,
    cost: u32,
    /// The grant's outcome: every quota's state after the whole lease was charged.
    outcome: Outcome,
}

impl Lease {
    /// The lease a grant for requests of `cost` carries. The request that asked is admitted by
    /// the grant itself (tokens ≥ 1 ⇔ [`Verdict::Allow`]): the lease holds the rest.
    ///
    /// `asked_at_ms` is the isolate's clock when it *sent* the lease request, not when the answer
    /// came: the object dated the held tokens `life_ms` after it granted them, and only a life
    /// counted from before the grant is sure to end by then.
    pub fn new(grant: Grant, cost: u32, asked_at_ms: u64) -> Self {
        Self {
            tokens_left: grant.tokens.saturating_sub(1),
            expires_at_ms: asked_at_ms.saturating_add(grant.life_ms),
            latest_ms: asked_at_ms,
            cost,
            outcome: grant.outcome,
        }
    }

    /// Admits one request from the lease: false once it is used up, has expired, or has seen the
    /// clock go back (and then for good).
    pub fn take(&mut self, now_ms: u64) -> bool {
        if !self.is_live(now_ms) {
            self.tokens_left = 0;
            return false;
        }
        self.latest_ms = now_ms;
        self.tokens_left -= 1;
        true
    }

    /// Whether [`Lease::take`] would admit a request at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.tokens_left > 0 && self.latest_ms <= now_ms && now_ms < self.expires_at_ms
    }

    /// Requests this lease may still admit (if it has not expired).
    pub fn tokens_left(&self) -> u32 {
        self.tokens_left
    }

    /// The isolate's clock reading at which the lease expires (exclusive).
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }

    /// The `RateLimit` state to report for a request the lease admitted: the grant's, with the
    /// tokens still held counted back as remaining, so `remaining` falls with every take and ends
    /// at what the object had left. Neither field is ever better than the truth: refills since the
    /// grant are not counted, and `reset_ms` stays as granted.
    pub fn outcome(&self) -> Outcome {
        let held = u64::from(self.tokens_left) * u64::from(self.cost);
        let quotas = self
            .outcome
            .quotas
            .iter()
            .map(|status| QuotaStatus {
                remaining: u32::try_from(u64::from(status.remaining) + held).unwrap_or(u32::MAX),
                ..status.clone()
            })
            .collect();
        Outcome {
            verdict: self.outcome.verdict,
            quotas,
        }
    }
}
