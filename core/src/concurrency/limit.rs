//! The adaptive concurrency limit of one origin: how many requests may be in flight to it, learnt
//! from the round-trip times of the requests themselves.
//!
//! ## Model
//!
//! An origin with `C` workers, each taking `S` to serve a request, answers `L` concurrent requests
//! in `S` while `L ≤ C`, and in about `S · L / C` once `L > C`: the surplus waits in its queue.
//! Throughput stops growing at `L = C`; latency starts growing there. So the right limit is `C`,
//! and the sign of having passed it is an RTT above the no-load RTT `S`.
//!
//! The controller keeps two estimates:
//!
//! - **no-load RTT**: the least RTT seen over the last `no_load_window_ms` (two half windows;
//!   the older half is forgotten every half window). The minimum is the sample that waited in no
//!   queue. Being windowed, it follows a permanently slower origin (a brownout) up within one
//!   window, and a faster one down at once.
//! - **recent RTT**: an exponential moving average of the samples over about one round trip
//!   (weight `2 / (limit + 1)` each, the EMA equivalent of a `limit`-sample mean): shorter, and the
//!   handful of requests that queued behind one burst would read as a queue; longer, and the cut
//!   comes round trips late.
//!
//! and steers the limit by AIMD, as TCP and Netflix's concurrency-limits do:
//!
//! - **cut** `limit ← limit · backoff` on queueing, or on a [`Sample::Dropped`] (timeout, no
//!   answer, origin refused as overloaded); at most once per recent RTT, since the samples of the
//!   round trip after a cut still carry the queue that the cut is draining. Queueing is the recent
//!   RTT above `tolerance` × the no-load RTT **and** more requests queued at the origin than the
//!   queue allowance (see below);
//! - **grow** otherwise, by `√limit` per round trip (`1/√limit` per sample): the queue allowance
//!   of Gradient2, fast from the floor and a small relative step at large limits. A limit that is
//!   not used (fewer than half of it in flight) does not grow: an idle origin says nothing about
//!   how much it can take.
//!
//! ## The queue allowance
//!
//! A ratio alone misjudges an origin with few workers. Two workers at 75% load keep a queue of
//! their own (Poisson arrivals bunch), so their mean RTT is 1.6× the no-load one with nothing
//! wrong; a limit cutting at 1.5× sat near the floor and refused about 10% of a load the origin
//! served. So, as TCP Vegas counts its queue in packets, the controller also counts the queue in
//! requests, by Little's law: with `n` in flight, `n · (1 − no-load / recent)` of them are queued.
//! The origin may hold `queue_allowance` (4) queued requests before a high RTT counts as
//! queueing. The allowance is the fleet's: an isolate takes its share's fraction of it
//! ([`AdaptiveLimit::set_share`]), so a thousand isolates do not queue four thousand requests.
//! On an origin with many workers `tolerance` binds first (1.5 × 32 workers leaves 16 queued),
//! and the allowance changes nothing.
//!
//! ## Equilibrium
//!
//! In a saturated loop the limit is a sawtooth below `top = max(tolerance · C, C + allowance)`,
//! cut to `backoff · top` (0.75·C to 1.5·C by default on a large origin): the RTT peaks at about
//! `top / C · S`, and the throughput averages well above 90% of `C / S`.
//! `backoff · tolerance < 1` is required ([`LimitConfig::validate`]): it makes every cut from a
//! tolerance peak dip below `C`, so some samples see no queue and keep the no-load RTT honest.
//! Without the dip a loop that never leaves the queue would take the queued RTT for the no-load
//! one and ratchet the limit up window after window. A cut from an allowance peak (`C + a`) dips
//! below `C` only when `backoff · (C + a) < C`; otherwise the no-load estimate drifts up to
//! `backoff · (C + a) / C` service times, where the next cut lands, and stops there (the
//! allowance is added, the cut multiplies): at most `1 + a / C` by default, so the limit stays
//! below `C + 2a` and the RTT below `(1 + 2a / C) · S`. The tests check this band.
//!
//! Known limit of the model: the no-load RTT is a minimum, so an origin with a heavy-tailed
//! service time and many workers, whose own jitter exceeds `tolerance` with a queue beyond the
//! allowance, reads as queueing and runs at a lower limit than it could; raise `tolerance`.
//! Worse, the round trip an isolate measures includes delays that are not the origin's (its
//! event loop busy with other requests, the runtime and the network on a busy host): they do not
//! shrink when the limit is cut, yet against a minimum-based no-load RTT they read as a queue. In
//! front of a 2 ms origin, a uniform 0–10 ms delay per round trip had the fleet simulation refuse
//! 92% of a load at 30% of capacity. Measuring the isolate's share does not remove them: a
//! zero-delay timer set beside each request saw 5–22 ms of event-loop lag while the same
//! requests' round trips took 120–164 ms against an origin answering in under a millisecond
//! (workerd through Miniflare, 65 requests at once, two CPUs shared with the client); with that
//! lag subtracted, the cache scenario of `make bench` was still refused 40–54%. That is why the
//! edge ships with the limit off (`CONCURRENCY.enabled`, README § Admission).

use serde::{Deserialize, Serialize};

use super::shares::Share;

/// Round-trip growth below this is noise, not queueing, whatever the ratio: a 1 ms origin seen
/// at 2 ms has not queued a request.
const RTT_SLACK_MS: f64 = 5.0;

/// RTTs are clamped to this range, in ms: Workers' clock advances only across I/O, in whole
/// milliseconds, so a 0 ms sample means "under a millisecond" and would make any later sample look
/// infinitely queued; an hour is past every timeout.
const RTT_RANGE_MS: (f64, f64) = (1.0, 3_600_000.0);

/// How the limit adapts. In JSON, missing fields take their defaults and unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// The limit before any sample: 20 lets a cold isolate serve a burst without first probing.
    pub initial: u32,
    /// The floor, 1: one request at a time still measures the origin, and many isolates at their
    /// floors must still fit within an origin's concurrency.
    pub min: u32,
    /// The ceiling, 1,000: far above any one origin's concurrency from one isolate.
    pub max: u32,
    /// Recent RTT above `tolerance` × the no-load RTT is queueing, 1.5: the RTT stays within
    /// about 1.5× the unloaded one. Must be above 1.
    pub tolerance: f64,
    /// Share of the limit kept by a cut, 0.5. `backoff · tolerance` must be below 1 (see the
    /// module documentation).
    pub backoff: f64,
    /// Span over which the least RTT is the no-load RTT, 10 s: how long a brownout (an origin that
    /// became slower for good) is taken for queueing before the limit climbs back.
    pub no_load_window_ms: u64,
    /// Requests the origin's queue may hold, across the fleet, before an RTT above `tolerance`
    /// counts as queueing, 4: what a few-worker origin queues by itself at 75% load (see the
    /// module documentation).
    pub queue_allowance: f64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            initial: 20,
            min: 1,
            max: 1_000,
            tolerance: 1.5,
            backoff: 0.5,
            no_load_window_ms: 10_000,
            queue_allowance: 4.0,
        }
    }
}

impl LimitConfig {
    /// The first field out of range, named with what it must be. NaN fails every check.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            ("min", self.min >= 1, "must be at least 1"),
            ("max", self.max >= self.min, "must be at least min"),
            (
                "initial",
                (self.min..=self.max).contains(&self.initial),
                "must be between min and max",
            ),
            (
                "tolerance",
                self.tolerance > 1.0 && self.tolerance.is_finite(),
                "must be finite and above 1",
            ),
            (
                "backoff",
                self.backoff > 0.0 && self.backoff * self.tolerance < 1.0,
                "must be positive and below 1 / tolerance",
            ),
            (
                "no_load_window_ms",
                self.no_load_window_ms >= 2,
                "must be at least 2",
            ),
            (
                "queue_allowance",
                (0.0..=f64::from(u32::MAX)).contains(&self.queue_allowance),
                "must be a number of requests, at least 0",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((field, _, reason)) => Err(format!("{field} {reason}")),
            None => Ok(()),
        }
    }

    /// This config with every field forced into range, so that an unvalidated one (NaN included)
    /// still yields a working controller: an out-of-range float takes its default.
    fn sanitized(mut self) -> Self {
        let default = Self::default();
        self.min = self.min.max(1);
        self.max = self.max.max(self.min);
        self.initial = self.initial.clamp(self.min, self.max);
        if !(self.tolerance > 1.0 && self.tolerance.is_finite()) {
            self.tolerance = default.tolerance;
        }
        if !(self.backoff > 0.0 && self.backoff * self.tolerance < 1.0) {
            self.backoff = (0.75 / self.tolerance).min(default.backoff);
        }
        self.no_load_window_ms = self.no_load_window_ms.max(2);
        if !(0.0..=f64::from(u32::MAX)).contains(&self.queue_allowance) {
            self.queue_allowance = default.queue_allowance;
        }
        self
    }
}

/// How one request to the origin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sample {
    /// An answer, whatever its status, other than the origin refusing as overloaded: its RTT
    /// measures the origin.
    Ok,
    /// A timeout, or an overload refusal (`503` with `Retry-After`): cut.
    Dropped,
    /// An outcome that says nothing of the origin's load: a connection refused or reset at
    /// once, an answer the edge could not relay. The slot is freed; the limit does not move
    /// (a reset's round trip would pass for a fast origin, and a broken answer is not
    /// queueing).
    Unmeasured,
}

/// Least RTT over two half windows: the current one and the one before.
#[derive(Debug, Clone, PartialEq)]
struct MinWindow {
    start_ms: u64,
    current: Option<f64>,
    previous: Option<f64>,
}

fn least(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl MinWindow {
    fn record(&mut self, now_ms: u64, rtt_ms: f64, half_ms: u64) {
        let elapsed = now_ms.checked_sub(self.start_ms);
        match elapsed {
            // A clock that stepped back, or a quiet spell of a whole window: start afresh.
            None => self.restart(now_ms),
            Some(e) if e >= half_ms.saturating_mul(2) => self.restart(now_ms),
            Some(e) if e >= half_ms => {
                self.previous = self.current.take();
                self.start_ms += half_ms;
            }
            Some(_) => {}
        }
        self.current = least(self.current, Some(rtt_ms));
    }

    fn restart(&mut self, now_ms: u64) {
        self.start_ms = now_ms;
        self.current = None;
        self.previous = None;
    }

    fn least(&self) -> Option<f64> {
        least(self.current, self.previous)
    }
}

/// The adaptive limit of one origin, as seen from one isolate.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveLimit {
    config: LimitConfig,
    /// The estimate, kept fractional so that growth by `1/√limit` per sample adds up.
    limit: f64,
    /// Upper bound imposed from outside (the isolate's share of a global limit).
    ceiling: u32,
    recent: Option<f64>,
    window: MinWindow,
    /// When the last cut was made; `None` before the first.
    last_cut_ms: Option<u64>,
    /// This isolate's fraction of the fleet's demand on the origin.
    fraction: f64,
}

impl AdaptiveLimit {
    /// Starts at `config.initial`. An invalid config is forced into range field by field.
    pub fn new(config: LimitConfig) -> Self {
        let config = config.sanitized();
        Self {
            limit: f64::from(config.initial),
            ceiling: config.max,
            recent: None,
            window: MinWindow {
                start_ms: 0,
                current: None,
                previous: None,
            },
            last_cut_ms: None,
            fraction: 1.0,
            config,
        }
    }

    /// Requests that may be in flight: in `[min, max]`, and at most the ceiling unless that is
    /// below `min`.
    pub fn limit(&self) -> u32 {
        // In range by construction; the clamp makes the cast exact even so.
        let top = self.top();
        self.limit.clamp(f64::from(self.config.min), top) as u32
    }

    /// The least recent RTT: the origin's latency without a queue. `None` before the first sample.
    pub fn no_load_rtt_ms(&self) -> Option<f64> {
        self.window.least()
    }

    /// The smoothed recent RTT. `None` before the first sample.
    pub fn recent_rtt_ms(&self) -> Option<f64> {
        self.recent
    }

    /// Requests this isolate may leave queued at the origin: its fraction of the fleet's
    /// `queue_allowance`.
    pub fn queue_allowance(&self) -> f64 {
        self.config.queue_allowance * self.fraction
    }

    /// The config in force (after [`AdaptiveLimit::new`] forced it into range).
    pub fn config(&self) -> &LimitConfig {
        &self.config
    }

    /// Caps the limit at the share's ceiling (raised to `min` if below it) and takes the share's
    /// fraction of the queue allowance; `None` lifts the cap to `max` and takes all of it.
    pub fn set_share(&mut self, share: Option<Share>) {
        self.ceiling = share
            .map_or(self.config.max, |s| s.ceiling)
            .clamp(self.config.min, self.config.max);
        self.fraction = share
            .map(|s| s.fraction)
            .filter(|f| *f > 0.0 && *f <= 1.0)
            .unwrap_or(1.0);
        self.limit = self.limit.clamp(f64::from(self.config.min), self.top());
    }

    /// Learns from one finished request: its RTT, the requests in flight when it finished
    /// (itself included) and how it ended. A non-finite RTT of an [`Sample::Ok`] is ignored.
    pub fn on_sample(&mut self, now_ms: u64, rtt_ms: f64, inflight: u32, outcome: Sample) {
        match outcome {
            Sample::Dropped => self.cut(now_ms),
            Sample::Unmeasured => {}
            Sample::Ok if !rtt_ms.is_finite() => {}
            Sample::Ok => {
                let rtt = rtt_ms.clamp(RTT_RANGE_MS.0, RTT_RANGE_MS.1);
                let half = (self.config.no_load_window_ms / 2).max(1);
                self.window.record(now_ms, rtt, half);
                // An average over about one round trip: `limit` samples.
                let weight = 2.0 / (self.limit.max(1.0) + 1.0);
                let recent = match self.recent {
                    Some(r) => r + weight * (rtt - r),
                    None => rtt,
                };
                self.recent = Some(recent);
                let no_load = self.window.least().unwrap_or(rtt);
                // A round trip within the slack of the no-load one is noise, not a queue.
                let queued = f64::from(inflight) * (1.0 - no_load / recent);
                let queueing = recent
                    > (self.config.tolerance * no_load).max(no_load + RTT_SLACK_MS)
                    && queued > self.queue_allowance();
                // With fewer than half its slots taken the limit is not what the traffic
                // meets (it is "app-limited", in Netflix's Gradient2 words): it neither grows
                // nor cuts. A cut there would only come from noise, and under light traffic
                // nothing would ever grow it back before the next burst.
                let bound = f64::from(inflight) * 2.0 >= self.limit;
                if bound && queueing {
                    self.cut(now_ms);
                } else if bound {
                    self.limit += 1.0 / self.limit.max(1.0).sqrt();
                }
            }
        }
        self.limit = self.limit.clamp(f64::from(self.config.min), self.top());
    }

    fn top(&self) -> f64 {
        f64::from(self.ceiling.min(self.config.max).max(self.config.min))
    }

    /// Multiplicative decrease, once per recent RTT: the round trip after a cut still carries the
    /// queue the cut is draining. A clock that stepped back allows a cut.
    fn cut(&mut self, now_ms: u64) {
        let hold = self.recent.unwrap_or(0.0).ceil() as u64;
        let allowed = match self.last_cut_ms {
            Some(last) => now_ms < last || now_ms - last >= hold,
            None => true,
        };
        if allowed {
            self.limit *= self.config.backoff;
            self.last_cut_ms = Some(now_ms);
        }
    }
}
