//! The circuit breaker that guards the origin: closed, open and half-open, as a pure state machine.
//!
//! One [`Breaker`] lives in the `CONTROL` Durable Object and is shared by every isolate, so the API
//! is shaped around what crosses that boundary. An isolate caches the [`View`] for about a second;
//! while it believes the breaker closed it sends its outcomes in batches of [`Counts`]
//! ([`Breaker::record`]), and otherwise asks for a [`Permit`] per origin request
//! ([`Breaker::acquire`]) and reports each probe it was given ([`Breaker::report_probe`]).
//!
//! Nothing runs on a timer. Every method first applies what time alone does, each change at the
//! instant it was due: the breaker half-opens exactly `open_ms` after it opened, and a probe that
//! is not reported by its deadline fails the round as of that deadline, so the state never depends
//! on how often the object happens to be asked. Old successes sliding out of the window can also
//! leave a failure rate over the threshold; that trips the breaker at the next call.
//!
//! A `now_ms` earlier than the last one counts as no time passing, and time runs on from there:
//! a clock stepping back neither shortens nor stretches an open period or a probe's deadline.

use serde::{Deserialize, Serialize};

/// The sliding window is this many fixed buckets of `window_ms / BUCKETS` each: it holds the
/// current bucket and the nine before it, so between 90 % and 100 % of `window_ms` of history.
pub const BUCKETS: u64 = 10;

/// When to open, how long to stay open, and how to probe. Check with [`BreakerConfig::validate`]:
/// the breaker never panics on a bad config, but zero probes, say, would never close it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerConfig {
    /// Open when failures / calls in the window reach this (0 < x ≤ 1).
    pub failure_rate: f64,
    /// Or when slow calls / calls reach this (0 < x ≤ 1); 1.0 opens only on all-slow traffic.
    pub slow_rate: f64,
    /// A call at or over this latency is slow, whether it succeeded or failed.
    pub slow_call_ms: u64,
    /// Calls the window must hold before either rate counts.
    pub min_calls: u32,
    /// Length of the sliding window (see [`BUCKETS`]).
    pub window_ms: u64,
    /// How long the breaker stays open before it half-opens.
    pub open_ms: u64,
    /// Probes handed out per half-open round; all of them must succeed to close.
    pub half_open_probes: u32,
    /// A probe not reported within this has failed: a hung probe cannot hold the breaker half-open.
    pub probe_timeout_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            slow_rate: 0.8,
            slow_call_ms: 2_000,
            min_calls: 20,
            window_ms: 10_000,
            open_ms: 5_000,
            half_open_probes: 3,
            probe_timeout_ms: 5_000,
        }
    }
}

impl BreakerConfig {
    /// Checks every field; the error names the first bad one and says what it must be.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |r: f64| r > 0.0 && r <= 1.0;
        let checks = [
            ("failure_rate", rate(self.failure_rate), "must be in (0, 1]"),
            ("slow_rate", rate(self.slow_rate), "must be in (0, 1]"),
            ("slow_call_ms", self.slow_call_ms > 0, "must be at least 1"),
            ("min_calls", self.min_calls > 0, "must be at least 1"),
            (
                "window_ms",
                self.window_ms >= BUCKETS,
                "must be at least 10 (1 ms per bucket)",
            ),
            ("open_ms", self.open_ms > 0, "must be at least 1"),
            (
                "half_open_probes",
                self.half_open_probes > 0,
                "must be at least 1",
            ),
            (
                "probe_timeout_ms",
                self.probe_timeout_ms > 0,
                "must be at least 1",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((field, _, reason)) => Err(format!("{field} {reason}")),
            None => Ok(()),
        }
    }

    fn bucket_ms(&self) -> u64 {
        (self.window_ms / BUCKETS).max(1)
    }

    /// The trip condition, over what the window holds.
    fn trips(&self, total: Counts) -> bool {
        total.calls >= self.min_calls
            && (reached(total.failures, total.calls, self.failure_rate)
                || reached(total.slow, total.calls, self.slow_rate))
    }
}

/// `part / whole >= rate`, as a quotient so that a rate written as a decimal (0.3) is reached by
/// exactly the same fraction of calls (3 of 10), which `part >= rate * whole` would miss.
fn reached(part: u32, whole: u32, rate: f64) -> bool {
    f64::from(part) / f64::from(whole) >= rate
}

/// The breaker's state, as metrics and headers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

/// What isolates cache: the phase and, when open, until when it cannot change (in the caller's
/// time). Closed and half-open can change at any time through other isolates' reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub phase: Phase,
    pub open_until_ms: Option<u64>,
}

/// Outcomes of origin calls an isolate saw since its last report.
///
/// `failures` include timeouts and connection errors; `slow` counts calls, failed or not, at or
/// over `slow_call_ms`. Neither can exceed `calls`: a batch that claims so is clamped to `calls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub calls: u32,
    pub failures: u32,
    pub slow: u32,
}

impl Counts {
    fn plus(self, other: Self) -> Self {
        Self {
            calls: self.calls.saturating_add(other.calls),
            failures: self.failures.saturating_add(other.failures),
            slow: self.slow.saturating_add(other.slow),
        }
    }

    fn clamped(self) -> Self {
        Self {
            failures: self.failures.min(self.calls),
            slow: self.slow.min(self.calls),
            ..self
        }
    }
}

/// May this request go to the origin?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permit {
    /// The breaker is closed.
    Allowed,
    /// Half-open: this request is a probe; report it with [`Breaker::report_probe`].
    Probe { id: u64 },
    /// Open, or every probe of the round is out: the earliest the answer can change.
    Rejected { retry_after_ms: u64 },
}

impl Permit {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Probe { .. } => "probe",
            Self::Rejected { .. } => "rejected",
        }
    }
}

/// A monotonic clock made of the caller's readings. A reading earlier than the last one counts as
/// no time passing and time runs on from there, so a clock stepping back neither shortens nor
/// stretches a wait that is under way. Without steps back, `ms` equals the caller's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Clock {
    raw_ms: u64,
    ms: u64,
}

impl Clock {
    fn tick(&mut self, now_ms: u64) -> u64 {
        self.ms = self.ms.saturating_add(now_ms.saturating_sub(self.raw_ms));
        self.raw_ms = now_ms;
        self.ms
    }

    /// The instant `at` of this clock in the caller's time.
    fn to_caller(self, at: u64) -> u64 {
        self.raw_ms.saturating_add(at.saturating_sub(self.ms))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    /// Which `bucket_ms` interval since time 0 these counts belong to.
    number: u64,
    counts: Counts,
}

/// A ring of [`BUCKETS`] buckets: recording reuses a slot whose number is stale, and summing skips
/// slots older than the window. Constant size, so the stored state stays small whatever the load.
/// A changed `window_ms` renumbers the buckets, which at worst forgets one window's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Window([Bucket; BUCKETS as usize]);

impl Window {
    fn add(&mut self, bucket_ms: u64, now: u64, counts: Counts) {
        let number = now / bucket_ms;
        // The index is below BUCKETS, the array's length.
        let Some(bucket) = self.0.get_mut((number % BUCKETS) as usize) else {
            return;
        };
        if bucket.number != number {
            *bucket = Bucket {
                number,
                counts: Counts::default(),
            };
        }
        bucket.counts = bucket.counts.plus(counts);
    }

    fn total(&self, bucket_ms: u64, now: u64) -> Counts {
        let current = now / bucket_ms;
        self.0
            .iter()
            .filter(|b| {
                current
                    .checked_sub(b.number)
                    .is_some_and(|age| age < BUCKETS)
            })
            .fold(Counts::default(), |sum, b| sum.plus(b.counts))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Probe {
    id: u64,
    deadline_ms: u64,
}

/// One half-open round.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Round {
    /// Probes handed out; never more than `half_open_probes`.
    issued: u32,
    succeeded: u32,
    /// Successful probes at or over `slow_call_ms`.
    slow: u32,
    /// Probes handed out and not reported yet.
    outstanding: Vec<Probe>,
}

impl Round {
    fn first_deadline(&self) -> Option<u64> {
        self.outstanding.iter().map(|p| p.deadline_ms).min()
    }
}

/// The window lives only in `Closed`: opening drops it and closing starts an empty one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    Closed(Box<Window>),
    Open { until_ms: u64 },
    HalfOpen(Round),
}

impl State {
    fn open(config: &BreakerConfig, at: u64) -> Self {
        Self::Open {
            until_ms: at.saturating_add(config.open_ms),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::Closed(Box::default())
    }
}

/// The breaker: what the Durable Object stores. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    clock: Clock,
    state: State,
    /// The last probe id handed out. Ids never repeat, so a report from an earlier round is
    /// recognised as stale and ignored.
    last_probe: u64,
}

impl Breaker {
    /// A closed breaker with an empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current view, after applying what time did since the last call.
    pub fn view(&mut self, config: &BreakerConfig, now_ms: u64) -> View {
        self.advance(config, now_ms);
        let (phase, open_until_ms) = match &self.state {
            State::Closed(_) => (Phase::Closed, None),
            State::Open { until_ms } => (Phase::Open, Some(self.clock.to_caller(*until_ms))),
            State::HalfOpen(_) => (Phase::HalfOpen, None),
        };
        View {
            phase,
            open_until_ms,
        }
    }

    /// Closed traffic reported by an isolate: outcome counts observed since its last report. May
    /// trip the breaker.
    ///
    /// Counts that arrive while open or half-open are dropped. A correct isolate sends none then,
    /// since it asks for permits instead, but one acting on a stale view may: those calls were
    /// made before the breaker opened, and the window they belonged to is gone.
    pub fn record(&mut self, config: &BreakerConfig, now_ms: u64, counts: Counts) -> View {
        let now = self.advance(config, now_ms);
        if let State::Closed(window) = &mut self.state {
            window.add(config.bucket_ms(), now, counts.clamped());
        }
        self.view(config, now_ms)
    }

    /// A request wants to go to the origin while the isolate believes the breaker is not closed.
    pub fn acquire(&mut self, config: &BreakerConfig, now_ms: u64) -> Permit {
        let now = self.advance(config, now_ms);
        match &mut self.state {
            State::Closed(_) => Permit::Allowed,
            State::Open { until_ms } => Permit::Rejected {
                retry_after_ms: until_ms.saturating_sub(now),
            },
            State::HalfOpen(round) if round.issued < config.half_open_probes => {
                self.last_probe += 1;
                round.issued += 1;
                round.outstanding.push(Probe {
                    id: self.last_probe,
                    deadline_ms: now.saturating_add(config.probe_timeout_ms),
                });
                Permit::Probe {
                    id: self.last_probe,
                }
            }
            State::HalfOpen(round) => Permit::Rejected {
                retry_after_ms: round
                    .first_deadline()
                    .map_or(config.probe_timeout_ms, |d| d.saturating_sub(now)),
            },
        }
    }

    /// The result of probe `id`. A failure reopens the breaker at once, as does the round's slow
    /// probes reaching `slow_rate` of `half_open_probes` (a recovered origin is a fast one); once
    /// all `half_open_probes` probes of the round succeeded, it closes with an empty window.
    /// Unknown and stale ids (a probe that already timed out, or from an earlier round) are
    /// ignored.
    pub fn report_probe(
        &mut self,
        config: &BreakerConfig,
        now_ms: u64,
        id: u64,
        success: bool,
        latency_ms: u64,
    ) -> View {
        let now = self.advance(config, now_ms);
        if let State::HalfOpen(round) = &mut self.state
            && let Some(at) = round.outstanding.iter().position(|p| p.id == id)
        {
            round.outstanding.swap_remove(at);
            if success {
                round.succeeded += 1;
                round.slow += u32::from(latency_ms >= config.slow_call_ms);
            }
            if !success || reached(round.slow, config.half_open_probes, config.slow_rate) {
                self.state = State::open(config, now);
            } else if round.succeeded >= config.half_open_probes {
                self.state = State::Closed(Box::default());
            }
        }
        self.view(config, now_ms)
    }

    /// Applies what time alone does, each change at the instant it was due, and returns the
    /// breaker's own now.
    fn advance(&mut self, config: &BreakerConfig, now_ms: u64) -> u64 {
        let now = self.clock.tick(now_ms);
        loop {
            self.state = match &self.state {
                State::Closed(window) if config.trips(window.total(config.bucket_ms(), now)) => {
                    State::open(config, now)
                }
                State::Open { until_ms } if *until_ms <= now => State::HalfOpen(Round::default()),
                State::HalfOpen(round) => match round.first_deadline() {
                    Some(deadline) if deadline <= now => State::open(config, deadline),
                    _ => return now,
                },
                _ => return now,
            };
        }
    }
}

#[cfg(test)]
mod tests;
