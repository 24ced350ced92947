//! One origin's concurrency limit across isolates: each isolate enforces a share of a global
//! limit that a coordinator (the `CONTROL` Durable Object, or its shards) computes from the
//! isolates' [`Measurement`]s and publishes every `report_interval_ms`.
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
//! Every interval `T` (`report_interval_ms`), isolate `i` reports its limit `lᵢ` and its demand
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
//!   tracks the origin's concurrency `C` within the AIMD band of [`super::limit`], `[0.75, 1.5]·C`.
//! - `n · (MIN_SHARE + MIN_GROWTH)` is the floor term: every busy isolate may keep 3 requests in
//!   flight, so beyond about `C / 3` busy isolates the floors alone fill the origin and only the
//!   RTT feedback (each isolate's cuts to `min`) holds it. Hence the coordinator's shards and
//!   this floor kept small.
//! - `k · initial` is the cold-start term: an isolate that has not yet read a published limit
//!   runs on its own `initial`. The edge bounds it by starting isolates at `initial = MIN_SHARE`
//!   until the first refresh, which the per-location cache makes a matter of one interval.
//!
//! ## Control-plane load
//!
//! [`control_plane_load`] models the requests per second each coordinating object receives.
//! One object taking a report and a purge-log read from every isolate every second serves
//! `2 · isolates` per second: 20,000/s at 10,000 isolates, far past what one Durable Object (a
//! single thread) sustains. The sharded design has isolates report to `⌈isolates / 64⌉` shard
//! objects, which forward one aggregate each to the root per interval, and has one isolate per
//! location refresh the purge log and the published limit for the others through the Cache API.
//! The root then serves `shards + locations` per second and each shard at most 64.

use serde::{Deserialize, Serialize};

use super::admit::Measurement;

/// The least share an isolate with demand gets: it can always measure the origin.
pub const MIN_SHARE: u32 = 1;
/// The least headroom above a share, so that a share of 1 can still grow.
pub const MIN_GROWTH: u32 = 2;
/// Isolates reporting to one shard object.
pub const ISOLATES_PER_SHARD: u64 = 64;

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

/// The global limit from one interval's measurements (see the module documentation).
pub fn aggregate(measurements: &[Measurement]) -> GlobalLimit {
    let busy = || measurements.iter().filter(|m| m.demand > 0);
    let limit = busy().fold(0u32, |sum, m| sum.saturating_add(m.limit));
    let total_demand = busy().fold(0u64, |sum, m| sum.saturating_add(m.demand));
    let no_load_rtt_ms = measurements
        .iter()
        .filter_map(|m| m.no_load_rtt_ms)
        .filter(|rtt| rtt.is_finite())
        .reduce(f64::min);
    GlobalLimit {
        limit,
        total_demand,
        isolates: u32::try_from(measurements.len()).unwrap_or(u32::MAX),
        no_load_rtt_ms,
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

/// How the control plane is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlDesign {
    /// Every isolate reports to and reads the purge log from one object, every second.
    SingleObject,
    /// Reports to shards of [`ISOLATES_PER_SHARD`] that forward to the root; one purge-log and
    /// limit refresh per location, shared through the Cache API.
    Sharded,
}

/// What the control plane's busiest object receives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlLoad {
    /// Objects taking requests.
    pub objects: u64,
    /// Requests per second at the busiest object.
    pub busiest_rps: f64,
    /// Requests per second across all objects.
    pub total_rps: f64,
}

/// Requests per second reaching the control objects with `isolates` isolates spread over
/// `locations` locations, each isolate reporting (and, in the single-object design, reading the
/// purge log) once a second.
pub fn control_plane_load(isolates: u64, locations: u64, design: ControlDesign) -> ControlLoad {
    let isolates = isolates as f64;
    match design {
        ControlDesign::SingleObject => ControlLoad {
            objects: 1,
            busiest_rps: 2.0 * isolates,
            total_rps: 2.0 * isolates,
        },
        ControlDesign::Sharded => {
            let shards = (isolates / ISOLATES_PER_SHARD as f64).ceil();
            let refreshes = (locations as f64).min(isolates);
            let per_shard = if shards > 0.0 { isolates / shards } else { 0.0 };
            let root = shards + refreshes;
            ControlLoad {
                objects: shards as u64 + 1,
                busiest_rps: per_shard.max(root),
                total_rps: isolates + root,
            }
        }
    }
}
