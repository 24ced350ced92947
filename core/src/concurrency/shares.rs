//! One origin's concurrency limit across isolates: each isolate enforces a share of a global
//! limit that a coordinator (the `CONTROL` Durable Object, or its shards) computes from the
//! isolates' [`Measurement`]s and publishes every report interval (`CONTROL_REPORT_MS`).
//!
//! ## Why
//!
//! Every isolate's [`AdaptiveLimit`](super::limit::AdaptiveLimit) sees the same origin RTT, so
//! the isolates already cut together when it queues, like TCP flows sharing a bottleneck. What
//! they cannot see is each other: a thousand isolates that each start at `initial = 20`, or
//! keep a limit learnt when they were the only busy one, would put 20,000 requests on an origin
//! that takes 67. The share caps each isolate by what the fleet as a whole has learnt.
//!
//! ## Model
//!
//! Every interval `T` (`CONTROL_REPORT_MS`), isolate `i` reports its limit `lᵢ` and its demand
//! `dᵢ` (requests that wanted the origin, [`Measurement::demand`]). The coordinator publishes
//!
//! ```text
//! G = Σ lᵢ over isolates with demand        (aggregate)
//! D = Σ dᵢ
//! ```
//!
//! and each isolate caps its own limit at `ceiling(shareᵢ)`, where
//!
//! ```text
//! shareᵢ   = max(MIN_SHARE, ⌊G · dᵢ / D⌋)   (G / isolates while nobody has demand)
//! ceiling  = shareᵢ + max(MIN_GROWTH, ⌈shareᵢ / 4⌉)
//! ```
//!
//! The isolate's own AIMD still moves within its ceiling, at once, on its own samples: cuts do
//! not wait for the coordinator. The ceiling's headroom is how the global limit grows: an
//! isolate that saw no queueing grows into it, and the next aggregate counts that. So `G` grows
//! by at most a quarter (plus `MIN_GROWTH` per busy isolate) per interval and falls as soon as
//! the isolates cut. An isolate without demand is left out of `G`: its limit is stale, and
//! counting it would hand the busy isolates capacity nobody measured.
//!
//! ## Error bound
//!
//! With `n` isolates with demand, of which `k` are new or were idle at the last aggregate, the
//! requests in flight on the origin are at most
//!
//! ```text
//! Σ ceilingᵢ ≤ 1.25 · G + n · (MIN_SHARE + MIN_GROWTH) + k · initial
//! ```
//!
//! - `1.25 · G` is the staleness term: one interval of growth at the headroom rate. `G` itself
//!   tracks the origin's concurrency `C` within the AIMD band of [`super::limit`]: up to
//!   `max(1.5 · C, C + 2a)`, where `a` is the queue allowance. Each isolate takes its demand's
//!   fraction of `a` ([`Share::fraction`]), so the fleet's allowance stays `a` however many
//!   isolates share the origin (an isolate's fraction is one interval stale, like its ceiling).
//! - `n · (MIN_SHARE + MIN_GROWTH)` is the floor term: every busy isolate may keep 3 requests in
//!   flight, so beyond about `C / 3` busy isolates the floors alone fill the origin and only the
//!   RTT feedback (each isolate's cuts to `min`) holds it. Hence this floor is kept small.
//! - `k · initial` is the cold-start term: an isolate that has not yet read a published limit
//!   runs on its own `initial` until its first report is answered. An isolate that was idle
//!   takes an even split `G / isolates` (with headroom) rather than the floor, so a fleet of
//!   isolates all idle then all busy overshoots by at most the headroom.
//!
//! ## Control-plane load
//!
//! The measurements travel in the isolates' reports, which no longer go to one object: each
//! isolate reports to one of `CONTROL_SHARDS` shard objects, which pass one sum per interval to
//! the root ([`crate::control::relay`]). The root serves `2 · shards` requests per second
//! (a report and a purge-log refresh per shard) whatever the fleet's size, and a shard
//! `2 · isolates / shards`. The shards' sums are the same aggregate (the sums are associative),
//! one interval later: the staleness term above becomes two intervals of growth, `1.25² · G`.
//! `crate::control`'s tests simulate the load on each object at 10, 1,000 and 10,000 isolates.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::admit::Measurement;

/// The least share an isolate with demand gets: it can always measure the origin.
pub const MIN_SHARE: u32 = 1;
/// The least headroom above a share, so that a share of 1 can still grow.
pub const MIN_GROWTH: u32 = 2;

/// One origin's limit across the fleet, as the coordinator publishes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalLimit {
    /// Requests the fleet may have in flight.
    pub limit: u32,
    /// Demand over the interval, summed: the denominator of every share.
    pub total_demand: u64,
    /// Isolates that reported.
    pub isolates: u32,
    /// The least no-load RTT reported.
    pub no_load_rtt_ms: Option<f64>,
}

impl GlobalLimit {
    /// One isolate's measurement as a partial aggregate: what it reports, and what the
    /// coordinator's shards [`merge`](Self::merge) before passing on.
    pub fn of(m: &Measurement) -> Self {
        let busy = m.demand > 0;
        Self {
            limit: if busy { m.limit } else { 0 },
            total_demand: m.demand,
            isolates: 1,
            no_load_rtt_ms: m.no_load_rtt_ms.filter(|rtt| rtt.is_finite()),
        }
    }

    /// Adds the partial aggregate of other isolates (the sums are associative, so shards can
    /// merge before the root does).
    pub fn merge(&mut self, other: &GlobalLimit) {
        self.limit = self.limit.saturating_add(other.limit);
        self.total_demand = self.total_demand.saturating_add(other.total_demand);
        self.isolates = self.isolates.saturating_add(other.isolates);
        self.no_load_rtt_ms = match (self.no_load_rtt_ms, other.no_load_rtt_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// The share of an isolate that wanted the origin `demand` times in its last reported
    /// interval; `None` while the fleet reported no demand (nothing measured to share). An
    /// isolate that was idle gets an even split (`G / isolates`), not the floor: its next burst
    /// would otherwise be refused down to [`MIN_SHARE`] until its next report.
    pub fn share_for(&self, demand: u64) -> Option<Share> {
        if self.limit == 0 || self.total_demand == 0 {
            return None;
        }
        let total = if demand == 0 { 0 } else { self.total_demand };
        let fraction = if demand == 0 {
            1.0 / f64::from(self.isolates.max(1))
        } else {
            demand.min(self.total_demand) as f64 / self.total_demand as f64
        };
        Some(Share {
            ceiling: ceiling(share(self, demand, total, self.isolates)),
            fraction,
        })
    }
}

/// What one isolate may take of an origin: the cap on its limit, and its fraction of the fleet's
/// demand (the part of the fleet's queue allowance that is its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub ceiling: u32,
    /// In `(0, 1]`.
    pub fraction: f64,
}

/// The global limit from one interval's measurements (see the module documentation).
pub fn aggregate(measurements: &[Measurement]) -> GlobalLimit {
    measurements
        .iter()
        .fold(GlobalLimit::default(), |mut sum, m| {
            sum.merge(&GlobalLimit::of(m));
            sum
        })
}

/// Global limits by origin base URL.
pub type GlobalLimits = BTreeMap<String, GlobalLimit>;

/// Adds `partials` into `sum`, origin by origin.
pub fn merge_limits(sum: &mut GlobalLimits, partials: &GlobalLimits) {
    for (origin, partial) in partials {
        sum.entry(origin.clone()).or_default().merge(partial);
    }
}

/// The coordinator's side: partial aggregates summed over one interval and published when the
/// next begins, so what isolates read is the last complete interval (at most two intervals old).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Published {
    started_ms: u64,
    current: GlobalLimits,
    last: GlobalLimits,
}

impl Published {
    /// Adds one report's partials at `now_ms`; returns the published limits. An interval with
    /// no report at all publishes nothing: limits older than that describe a different load.
    pub fn add(&mut self, partials: &GlobalLimits, now_ms: u64, interval_ms: u64) -> &GlobalLimits {
        let elapsed = now_ms.saturating_sub(self.started_ms);
        if elapsed >= interval_ms {
            let current = std::mem::take(&mut self.current);
            self.last = if elapsed < 2 * interval_ms {
                current
            } else {
                GlobalLimits::new()
            };
            self.started_ms = now_ms;
        }
        merge_limits(&mut self.current, partials);
        &self.last
    }
}

/// An isolate's share of `global`: in proportion to its `demand` of `total_demand`, an even
/// split over `isolates` when there is no demand, and never below [`MIN_SHARE`].
pub fn share(global: &GlobalLimit, demand: u64, total_demand: u64, isolates: u32) -> u32 {
    let limit = u128::from(global.limit);
    let share = if total_demand == 0 {
        limit / u128::from(isolates.max(1))
    } else {
        limit * u128::from(demand.min(total_demand)) / u128::from(total_demand)
    };
    u32::try_from(share).unwrap_or(u32::MAX).max(MIN_SHARE)
}

/// The cap an isolate puts on its own limit: its share plus room to grow (see the module
/// documentation).
pub fn ceiling(share: u32) -> u32 {
    share.saturating_add(share.div_ceil(4).max(MIN_GROWTH))
}
