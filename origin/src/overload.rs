//! The origin defends itself: each request bulkhead admits a bounded number of requests at once,
//! queues the rest, and sheds by *how long they queue* (CoDel), answering `503` problem+json
//! `overloaded` with `Retry-After` at once instead of letting requests wait out the edge's
//! timeout.
//!
//! Why: under a surge, requests used to queue inside the origin (for a pool connection, for CPU)
//! until the edge's origin timeout (1–10 s) fired; the edge saw timeouts, its circuit breaker
//! opened and nothing was served. A prompt `503` with `Retry-After` is a refusal the edge knows
//! (not a breaker failure: it serves stale, retries on another origin where harmless, or passes it
//! on), and the requests that are admitted still finish in time.
//!
//! What is decided here:
//!
//! - **Where.** One limiter per bulkhead, put by [`crate::routes`] around the routes whose
//!   requests use that bulkhead's pool: `reads` (product, order and ranking reads, on the read
//!   pools of the primary and the replicas) and `writes` (orders, views and votes, the events
//!   batch, accounts, the cart, on the write pool). The probes, `/metrics`, the public keys and
//!   admin writes pass through no limiter and are never shed: an instance must stay observable,
//!   and an operator's write during an incident must not be refused by the surge it is meant to
//!   fix (it still has the write pool's wait budget).
//! - **How many at once.** [`OverloadSettings::max_in_flight`], else [`IN_FLIGHT_PER_CONNECTION`]
//!   (2) times the connections the bulkhead's requests can use: a request holds a connection for
//!   only part of its life (parsing, hashing a password, serialising), so twice the pool keeps the
//!   pool busy, while more would only move the queue into sqlx's pool, where it can be neither
//!   measured nor shed. The rest wait in a FIFO queue.
//! - **When to shed** (CoDel: Nichols & Jacobson, "Controlling Queue Delay"; as used for RPC
//!   queues in Facebook's "Fail at Scale"). A request's *sojourn* is how long it waits for a
//!   slot. A queue whose oldest request has waited longer than [`OverloadSettings::target`]
//!   starts a *run*; a request admitted within the target ends it. A run as long as
//!   [`OverloadSettings::interval`] means the minimum sojourn over an interval stayed above the
//!   target: a standing queue, not a burst being absorbed. The limiter then enters the *dropping*
//!   state, in which a request may wait at most `target`: those already older are answered `503`
//!   at once, and so is every later one not admitted within `target` (a burst shorter than that
//!   is still served). It leaves the dropping state when the queue drains: a slot handed out
//!   leaves nobody waiting, or frees up with nobody waiting. (In the dropping state every admitted
//!   request waited less than `target` by construction, so that cannot be the sign that the surge
//!   is over; an empty queue is.) See [`Codel`].
//! - **A hard bound.** Whatever the state, a request that has waited
//!   [`OverloadSettings::max_wait`] is shed. With the defaults CoDel sheds first (no request
//!   waits longer than `target + interval`, 110 ms); the bound matters when the interval is set
//!   longer, and it caps what a misconfiguration can cost.
//! - **FIFO, not adaptive LIFO.** In the dropping state the queue holds at most `target` worth of
//!   requests, so serving the newest first (Facebook's adaptive LIFO) would gain a few
//!   milliseconds at the price of fairness.
//! - **The answer.** `503` problem+json of kind `overloaded`, title "Overloaded" (the kind of the
//!   edge's own shedding), with `Retry-After: 1` ([`crate::error::RETRY_AFTER_SECS`], as for an
//!   exhausted pool): a refusal costs the origin next to nothing and the limiter reconsiders with
//!   every request, so a short pause is enough, and the edge spreads its retries itself.
//! - **What a slot covers.** From admission until the handler's response head exists (the
//!   origin's bodies are buffers already built). Time spent queueing counts against the request
//!   timeout, which sits outside this layer.
//!
//! The defaults, for an API behind an edge with a 1–10 s origin timeout: `target` 10 ms (a
//! slot is freed by a whole request, not a packet: a read takes a few ms and a SQLite write up
//! to about 20, so a wait of about one request is what a busy but healthy bulkhead costs; CoDel's
//! 5 ms is for packets), `interval` 100 ms (CoDel's and Facebook's: longer than a request, so a
//! burst that drains within it is served whole, short enough to cut a surge within a tenth of a
//! second), `max_wait` 500 ms (half the shortest edge timeout, so that a request that waited all
//! of it still has the other half to be served).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::db::Bulkheads;
use crate::error::ApiError;
use crate::metrics::{Metrics, OverloadSeries};

/// Queueing delay a bulkhead tolerates as normal (see the module docs for why 10 ms).
pub const DEFAULT_TARGET: Duration = Duration::from_millis(10);
/// How long the queueing delay must stay above the target before the limiter sheds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// The longest any request waits for a slot, whatever the state.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(500);
/// Requests in flight per connection a bulkhead's requests can use, when no maximum is set.
pub const IN_FLIGHT_PER_CONNECTION: usize = 2;

/// How the request bulkheads defend themselves. `Default` is what the binary runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverloadSettings {
    /// Requests each bulkhead runs at once; `None`: [`IN_FLIGHT_PER_CONNECTION`] times the
    /// connections its requests can use (see [`RequestBulkheads::new`]).
    pub max_in_flight: Option<NonZeroU32>,
    /// Queueing delay tolerated as normal; also the longest a request may wait while shedding.
    pub target: Duration,
    /// How long the queueing delay must stay above `target` before shedding starts.
    pub interval: Duration,
    /// The longest any request waits for a slot.
    pub max_wait: Duration,
}

impl Default for OverloadSettings {
    fn default() -> Self {
        Self {
            max_in_flight: None,
            target: DEFAULT_TARGET,
            interval: DEFAULT_INTERVAL,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

impl OverloadSettings {
    /// The slots of a bulkhead whose requests can use `connections` connections.
    pub fn max_in_flight_for(&self, connections: usize) -> usize {
        match self.max_in_flight {
            Some(max) => usize::try_from(max.get()).unwrap_or(usize::MAX),
            None => connections.saturating_mul(IN_FLIGHT_PER_CONNECTION).max(1),
        }
    }
}

/// Why a request was shed (the `reason` label of the shed counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// It waited `target` while the limiter was dropping.
    QueueDelay,
    /// It waited `max_wait`.
    MaxWait,
}

impl ShedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueDelay => "queue_delay",
            Self::MaxWait => "max_wait",
        }
    }
}

/// CoDel's state: when to shed, decided from the times it is shown and nothing else, so that it
/// is tested with any clock. The [limiter](OverloadLayer) shows it the queue at every arrival,
/// release and wake-up.
#[derive(Debug, Clone)]
pub struct Codel {
    target: Duration,
    interval: Duration,
    max_wait: Duration,
    /// When the current run of above-target queueing began: the moment the then oldest waiting
    /// request's wait reached `target`. `None`: no run.
    above_since: Option<Instant>,
    dropping: bool,
}

impl Codel {
    pub fn new(settings: &OverloadSettings) -> Self {
        Self {
            target: settings.target,
            interval: settings.interval,
            max_wait: settings.max_wait,
            above_since: None,
            dropping: false,
        }
    }

    pub fn is_dropping(&self) -> bool {
        self.dropping
    }

    /// The longest a request may wait now: `target` while dropping, else `max_wait`.
    pub fn allowed_wait(&self) -> Duration {
        if self.dropping {
            self.target.min(self.max_wait)
        } else {
            self.max_wait
        }
    }

    /// Looks at the queue at `now`, its oldest request waiting since `oldest` (`None`: nobody
    /// waits). True when this enters the dropping state.
    ///
    /// A queue emptied by shedding keeps its run: only admissions say the bulkhead keeps up.
    pub fn observe(&mut self, now: Instant, oldest: Option<Instant>) -> bool {
        if let Some(oldest) = oldest {
            let crossed = oldest + self.target;
            if now >= crossed {
                // The exact moment, whenever it is noticed.
                self.above_since.get_or_insert(crossed);
            }
        }
        match self.above_since {
            Some(since) if !self.dropping && now >= since + self.interval => {
                self.dropping = true;
                true
            }
            _ => false,
        }
    }

    /// A request got a slot after waiting `sojourn`, leaving `still_waiting` behind. True when
    /// this leaves the dropping state.
    pub fn admitted(&mut self, sojourn: Duration, still_waiting: usize) -> bool {
        if still_waiting == 0 {
            return self.drained();
        }
        if !self.dropping && sojourn < self.target {
            self.above_since = None;
        }
        false
    }

    /// A slot is free and nobody waits. True when this leaves the dropping state.
    pub fn drained(&mut self) -> bool {
        self.above_since = None;
        std::mem::replace(&mut self.dropping, false)
    }

    /// Why a request that has waited `waited` must be shed now, if it must.
    pub fn verdict(&self, waited: Duration) -> Option<ShedReason> {
        if waited >= self.max_wait {
            Some(ShedReason::MaxWait)
        } else if self.dropping && waited >= self.target {
            Some(ShedReason::QueueDelay)
        } else {
            None
        }
    }

    /// The earliest moment the state could enter dropping with time alone, given the oldest
    /// waiting request (`None` while dropping, or with nobody waiting and no run). Later events
    /// only ever move it later, so a waiter that sleeps until then misses nothing.
    pub fn next_transition(&self, oldest: Option<Instant>) -> Option<Instant> {
        if self.dropping {
            return None;
        }
        self.above_since
            .or_else(|| oldest.map(|oldest| oldest + self.target))
            .map(|since| since + self.interval)
    }
}

/// What a waiting request is told.
#[derive(Debug)]
enum Outcome {
    /// The slot of a finished request is now its own.
    Admitted,
    /// Shed (and counted, with its reason, where it was decided).
    Shed,
}

struct Waiter {
    enqueued: Instant,
    outcome: oneshot::Sender<Outcome>,
}

struct State {
    in_flight: usize,
    /// By arrival: the first is the oldest.
    waiters: BTreeMap<u64, Waiter>,
    next_seq: u64,
    codel: Codel,
}

/// One bulkhead's slots and queue. Every change happens under the one lock (held for
/// microseconds, never across an await), and the decision which request goes next is made there
/// and sent to it, so a slot is never lost between a finished request and a waiting one.
struct Limiter {
    bulkhead: &'static str,
    max_in_flight: usize,
    state: Mutex<State>,
    series: OverloadSeries,
}

impl Limiter {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it: every change is one
        // step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the state up to `now`: shows CoDel the queue, then sheds every request past its
    /// allowed wait, oldest first.
    fn settle(&self, state: &mut State, now: Instant) {
        let oldest = state.waiters.first_key_value().map(|(_, w)| w.enqueued);
        if state.codel.observe(now, oldest) {
            tracing::warn!(
                bulkhead = self.bulkhead,
                queued = state.waiters.len(),
                in_flight = state.in_flight,
                "overloaded: requests queued above the target for a whole interval; shedding \
                 those that wait longer than the target"
            );
        }
        while let Some(entry) = state.waiters.first_entry() {
            let waited = now.saturating_duration_since(entry.get().enqueued);
            let Some(reason) = state.codel.verdict(waited) else {
                break;
            };
            let waiter = entry.remove();
            self.series.count_shed(reason);
            // A waiter that went away is simply gone.
            let _ = waiter.outcome.send(Outcome::Shed);
        }
    }

    /// Gives a finished request's slot to the oldest waiting request, or frees it.
    fn release(&self, state: &mut State, now: Instant) {
        self.settle(state, now);
        while let Some((_, waiter)) = state.waiters.pop_first() {
            if waiter.outcome.send(Outcome::Admitted).is_ok() {
                let sojourn = now.saturating_duration_since(waiter.enqueued);
                if state.codel.admitted(sojourn, state.waiters.len()) {
                    self.recovered();
                }
                return;
            }
        }
        state.in_flight -= 1;
        if state.codel.drained() {
            self.recovered();
        }
    }

    fn recovered(&self) {
        tracing::info!(
            bulkhead = self.bulkhead,
            "no longer overloaded: the queue drained"
        );
    }

    fn publish(&self, state: &State) {
        self.series
            .set_occupancy(state.waiters.len(), state.in_flight);
        self.series.set_dropping(state.codel.is_dropping());
    }

    /// A slot, at once or after a wait; `None` when the request is shed.
    async fn acquire(self: Arc<Self>) -> Option<Permit> {
        let mut waiting = {
            let mut state = self.lock();
            let now = Instant::now();
            self.settle(&mut state, now);
            // Slots are handed straight to waiting requests, so a free slot means nobody waits.
            if state.in_flight < self.max_in_flight {
                state.in_flight += 1;
                if state.codel.admitted(Duration::ZERO, 0) {
                    self.recovered();
                }
                self.publish(&state);
                drop(state);
                return Some(Permit { limiter: self });
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            let (sender, receiver) = oneshot::channel();
            state.waiters.insert(
                seq,
                Waiter {
                    enqueued: now,
                    outcome: sender,
                },
            );
            self.publish(&state);
            drop(state);
            Waiting {
                limiter: self,
                seq,
                receiver,
                done: false,
            }
        };
        waiting.wait().await
    }
}

/// A request's slot, given back (to the next waiting request) when dropped.
struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.limiter.lock();
        self.limiter.release(&mut state, Instant::now());
        self.limiter.publish(&state);
    }
}

/// A request in the queue. Dropped before it is told its outcome (the client went away), it
/// leaves the queue, or passes on a slot that was handed to it meanwhile.
struct Waiting {
    limiter: Arc<Limiter>,
    seq: u64,
    receiver: oneshot::Receiver<Outcome>,
    done: bool,
}

impl Waiting {
    async fn wait(&mut self) -> Option<Permit> {
        loop {
            let wake_at = {
                let mut state = self.limiter.lock();
                self.limiter.settle(&mut state, Instant::now());
                self.limiter.publish(&state);
                let oldest = state.waiters.first_key_value().map(|(_, w)| w.enqueued);
                let Some(me) = state.waiters.get(&self.seq) else {
                    // Decided (here or by a finished request): the outcome was sent.
                    drop(state);
                    let outcome = self.receiver.try_recv().ok();
                    return self.finish(outcome);
                };
                // Until this request's wait runs out, or the state could change with time alone.
                let mine = me.enqueued + state.codel.allowed_wait();
                state
                    .codel
                    .next_transition(oldest)
                    .map_or(mine, |transition| transition.min(mine))
            };
            tokio::select! {
                biased;
                outcome = &mut self.receiver => return self.finish(outcome.ok()),
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    fn finish(&mut self, outcome: Option<Outcome>) -> Option<Permit> {
        self.done = true;
        // Every removal from the queue sends an outcome first.
        matches!(outcome, Some(Outcome::Admitted)).then(|| Permit {
            limiter: self.limiter.clone(),
        })
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.limiter.lock();
        if state.waiters.remove(&self.seq).is_none()
            && let Ok(Outcome::Admitted) = self.receiver.try_recv()
        {
            self.limiter.release(&mut state, Instant::now());
        }
        self.limiter.publish(&state);
    }
}

/// The layer that puts a bulkhead's limiter in front of routes; clones share the limiter, so
/// every route it is put on shares the bulkhead's slots and queue.
#[derive(Clone)]
pub struct OverloadLayer {
    limiter: Arc<Limiter>,
}

impl std::fmt::Debug for OverloadLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverloadLayer")
            .field("bulkhead", &self.limiter.bulkhead)
            .field("max_in_flight", &self.limiter.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl OverloadLayer {
    /// A limiter for `bulkhead` (its `bulkhead` label in `/metrics`) with `max_in_flight` slots.
    pub fn new(
        bulkhead: &'static str,
        max_in_flight: usize,
        settings: &OverloadSettings,
        metrics: &Metrics,
    ) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            limiter: Arc::new(Limiter {
                bulkhead,
                max_in_flight,
                state: Mutex::new(State {
                    in_flight: 0,
                    waiters: BTreeMap::new(),
                    next_seq: 0,
                    codel: Codel::new(settings),
                }),
                series: metrics.overload_series(bulkhead, max_in_flight),
            }),
        }
    }

    pub fn max_in_flight(&self) -> usize {
        self.limiter.max_in_flight
    }
}

impl<S> Layer<S> for OverloadLayer {
    type Service = Overload<S>;

    fn layer(&self, inner: S) -> Overload<S> {
        Overload {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// The service of [`OverloadLayer`].
#[derive(Clone)]
pub struct Overload<S> {
    inner: S,
    limiter: Arc<Limiter>,
}

impl<S> Service<Request> for Overload<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            match limiter.acquire().await {
                Some(permit) => {
                    let response = inner.call(request).await;
                    drop(permit);
                    response
                }
                None => Ok(ApiError::Shed.into_response()),
            }
        })
    }
}

/// The limiters of the request bulkheads, for [`crate::routes::router`] to put on the routes.
#[derive(Debug, Clone)]
pub struct RequestBulkheads {
    /// Reads: over the read pool of the primary and of each replica.
    pub reads: OverloadLayer,
    /// Writes: over the write pool on the primary.
    pub writes: OverloadLayer,
}

impl RequestBulkheads {
    /// One limiter per request bulkhead of `pools`, reads spread over `read_databases` (the
    /// primary and the replicas), each with `settings.max_in_flight` slots or else
    /// [`IN_FLIGHT_PER_CONNECTION`] per connection.
    pub fn new(
        settings: &OverloadSettings,
        pools: &Bulkheads,
        read_databases: usize,
        metrics: &Metrics,
    ) -> Self {
        let connections = |size: u32| usize::try_from(size).unwrap_or(usize::MAX);
        let reads = settings
            .max_in_flight_for(connections(pools.reads.size).saturating_mul(read_databases));
        let writes = settings.max_in_flight_for(connections(pools.writes.size));
        tracing::info!(
            reads_max_in_flight = reads,
            writes_max_in_flight = writes,
            target_ms = settings.target.as_millis() as u64,
            interval_ms = settings.interval.as_millis() as u64,
            max_wait_ms = settings.max_wait.as_millis() as u64,
            "overload limits"
        );
        Self {
            reads: OverloadLayer::new("reads", reads, settings, metrics),
            writes: OverloadLayer::new("writes", writes, settings, metrics),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    use breakwater_core::problem::{self, Problem};
    use tokio::task::JoinSet;
    use tower::ServiceExt;

    use super::*;

    const TARGET: Duration = Duration::from_millis(10);
    const INTERVAL: Duration = Duration::from_millis(100);
    const MAX_WAIT: Duration = Duration::from_millis(500);

    fn settings() -> OverloadSettings {
        OverloadSettings {
            max_in_flight: None,
            target: TARGET,
            interval: INTERVAL,
            max_wait: MAX_WAIT,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    // The state machine alone, on tokio's paused clock.

    #[tokio::test(start_paused = true)]
    async fn a_queue_above_target_for_less_than_an_interval_is_a_burst_and_a_whole_one_drops() {
        let mut codel = Codel::new(&settings());
        let t0 = Instant::now();
        assert!(!codel.observe(t0, Some(t0)));
        assert_eq!(
            codel.next_transition(Some(t0)),
            Some(t0 + TARGET + INTERVAL)
        );

        tokio::time::advance(ms(50)).await;
        assert!(!codel.observe(Instant::now(), Some(t0)));
        // Admitted above the target with others behind it: the run goes on.
        assert!(!codel.admitted(ms(50), 3));
        assert!(!codel.observe(Instant::now(), Some(t0 + ms(5))));
        // The run began when the first request's wait crossed the target, not when noticed.
        assert_eq!(codel.next_transition(None), Some(t0 + TARGET + INTERVAL));

        tokio::time::advance(ms(59)).await;
        assert!(!codel.observe(Instant::now(), Some(t0 + ms(5))));
        assert!(!codel.is_dropping());
        assert_eq!(codel.allowed_wait(), MAX_WAIT);

        tokio::time::advance(ms(1)).await;
        assert!(codel.observe(Instant::now(), Some(t0 + ms(5))), "at 110 ms");
        assert!(codel.is_dropping());
        assert_eq!(codel.next_transition(Some(t0)), None);
        // Entered once, not again.
        assert!(!codel.observe(Instant::now(), Some(t0 + ms(5))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_admitted_within_the_target_ends_the_run() {
        let mut codel = Codel::new(&settings());
        let t0 = Instant::now();
        tokio::time::advance(ms(50)).await;
        codel.observe(Instant::now(), Some(t0));
        assert!(!codel.admitted(ms(5), 2));
        // A new run starts when the new oldest request (here at 45 ms) crosses the target.
        let oldest = t0 + ms(45);
        assert_eq!(
            codel.next_transition(Some(oldest)),
            Some(oldest + TARGET + INTERVAL)
        );
        tokio::time::advance(ms(100)).await; // 150 ms: past the old run's 110, inside the new.
        assert!(!codel.observe(Instant::now(), Some(oldest)));
        tokio::time::advance(ms(5)).await; // 155 ms
        assert!(codel.observe(Instant::now(), Some(oldest)));
    }

    #[tokio::test(start_paused = true)]
    async fn while_dropping_a_request_waits_at_most_the_target_until_the_queue_drains() {
        let mut codel = Codel::new(&settings());
        let t0 = Instant::now();
        tokio::time::advance(TARGET + INTERVAL).await;
        assert!(codel.observe(Instant::now(), Some(t0)));
        assert_eq!(codel.allowed_wait(), TARGET);
        assert_eq!(codel.verdict(ms(9)), None);
        assert_eq!(codel.verdict(TARGET), Some(ShedReason::QueueDelay));
        assert_eq!(codel.verdict(MAX_WAIT), Some(ShedReason::MaxWait));

        // Admissions within the target are what dropping makes of a standing queue: not a sign
        // it is gone. Nor is a queue emptied by shedding.
        assert!(!codel.admitted(ms(3), 4));
        assert!(!codel.observe(Instant::now(), None));
        assert!(codel.is_dropping());

        // The last waiting request admitted: the queue drained.
        assert!(codel.admitted(ms(3), 0));
        assert!(!codel.is_dropping());
        assert_eq!(codel.allowed_wait(), MAX_WAIT);
        assert_eq!(codel.verdict(TARGET), None);
        assert_eq!(codel.next_transition(None), None);

        // Likewise a slot freed with nobody waiting.
        let t1 = Instant::now();
        tokio::time::advance(TARGET + INTERVAL).await;
        assert!(codel.observe(Instant::now(), Some(t1)));
        assert!(codel.drained());
        assert!(!codel.drained(), "left once");
    }

    #[tokio::test(start_paused = true)]
    async fn the_hard_maximum_wait_sheds_whatever_the_state() {
        let mut codel = Codel::new(&OverloadSettings {
            interval: Duration::from_secs(10),
            ..settings()
        });
        let t0 = Instant::now();
        tokio::time::advance(MAX_WAIT).await;
        assert!(!codel.observe(Instant::now(), Some(t0)));
        assert!(!codel.is_dropping());
        assert_eq!(codel.verdict(MAX_WAIT - ms(1)), None);
        assert_eq!(codel.verdict(MAX_WAIT), Some(ShedReason::MaxWait));
    }

    #[test]
    fn slots_default_to_twice_the_connections_of_each_bulkhead() {
        let defaults = OverloadSettings::default();
        assert_eq!(defaults.max_in_flight_for(8), 16);
        assert_eq!(defaults.max_in_flight_for(0), 1);
        let set = OverloadSettings {
            max_in_flight: NonZeroU32::new(5),
            ..defaults
        };
        assert_eq!(set.max_in_flight_for(8), 5);

        let metrics = Metrics::new();
        let pools = Bulkheads::default();
        let derived = RequestBulkheads::new(&defaults, &pools, 3, &metrics);
        assert_eq!(derived.reads.max_in_flight(), 16 * 3 * 2);
        assert_eq!(derived.writes.max_in_flight(), 8 * 2);
        let both = RequestBulkheads::new(&set, &pools, 3, &metrics);
        assert_eq!(
            (both.reads.max_in_flight(), both.writes.max_in_flight()),
            (5, 5)
        );
    }

    // The layer, around a handler that takes `work`, on the paused clock.

    /// What a request got, and when, from the moment the surge was sent.
    #[derive(Debug)]
    struct Answer {
        status: StatusCode,
        after: Duration,
        retry_after: Option<String>,
        content_type: Option<String>,
        problem: Option<Problem>,
    }

    fn app(limit: usize, settings: OverloadSettings, metrics: &Metrics, work: Duration) -> Router {
        let layer = OverloadLayer::new("test", limit, &settings, metrics);
        let handler = move || async move {
            tokio::time::sleep(work).await;
            "done"
        };
        Router::new().route("/work", get(handler).route_layer(layer))
    }

    async fn send(app: Router, started: Instant) -> Answer {
        let request = Request::get("/work").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let after = started.elapsed();
        let (retry_after, content_type) = {
            let header = |name| {
                let value = response.headers().get(name)?;
                Some(value.to_str().unwrap().to_owned())
            };
            (header(header::RETRY_AFTER), header(header::CONTENT_TYPE))
        };
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        Answer {
            status,
            after,
            retry_after,
            content_type,
            problem: serde_json::from_slice(&body).ok(),
        }
    }

    /// Sends `n` requests at once and returns their answers in the order they came.
    async fn surge(app: &Router, n: usize) -> Vec<Answer> {
        let started = Instant::now();
        let mut requests = JoinSet::new();
        for _ in 0..n {
            requests.spawn(send(app.clone(), started));
        }
        let mut answers = Vec::new();
        while let Some(answer) = requests.join_next().await {
            answers.push(answer.unwrap());
        }
        answers.sort_by_key(|a| a.after);
        answers
    }

    fn assert_overloaded(answer: &Answer) {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        assert_eq!(answer.retry_after.as_deref(), Some("1"), "{answer:?}");
        assert_eq!(
            answer.content_type.as_deref(),
            Some(problem::CONTENT_TYPE),
            "{answer:?}"
        );
        let problem = answer.problem.as_ref().expect("a problem body");
        assert_eq!(problem.kind(), "overloaded");
        assert_eq!(problem.title, "Overloaded");
    }

    async fn line(metrics: &Metrics, prefix: &str) -> String {
        let text = metrics.render().await.unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn a_surge_is_shed_once_it_queues_for_an_interval_and_the_admitted_all_succeed() {
        let metrics = Metrics::new();
        let app = app(2, settings(), &metrics, Duration::from_secs(1));
        let answers = surge(&app, 10).await;

        // The eight that queued are refused together when the run reaches the interval: the
        // oldest crossed the target at 10 ms, so at 110 ms, long before any edge timeout.
        for answer in &answers[..8] {
            assert_overloaded(answer);
            assert_eq!(answer.after, TARGET + INTERVAL, "{answer:?}");
        }
        for answer in &answers[8..] {
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
            assert_eq!(answer.after, Duration::from_secs(1));
        }
        let prefix =
            "breakwater_origin_overload_shed_total{bulkhead=\"test\",reason=\"queue_delay\"}";
        assert_eq!(line(&metrics, prefix).await, format!("{prefix} 8"));
        // Both finished with nobody waiting: the queue drained, the state is left.
        let dropping = "breakwater_origin_overload_dropping{bulkhead=\"test\"}";
        assert_eq!(line(&metrics, dropping).await, format!("{dropping} 0"));
        let queued = "breakwater_origin_overload_requests{bulkhead=\"test\",state=\"queued\"}";
        assert_eq!(line(&metrics, queued).await, format!("{queued} 0"));
        let in_flight =
            "breakwater_origin_overload_requests{bulkhead=\"test\",state=\"in_flight\"}";
        assert_eq!(line(&metrics, in_flight).await, format!("{in_flight} 0"));

        // Slots all given back: a full round is admitted again.
        let again = surge(&app, 2).await;
        assert!(
            again.iter().all(|a| a.status == StatusCode::OK),
            "{again:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_that_drains_within_the_interval_is_served_whole() {
        let metrics = Metrics::new();
        let app = app(2, settings(), &metrics, ms(20));
        let answers = surge(&app, 8).await;
        assert!(
            answers.iter().all(|a| a.status == StatusCode::OK),
            "{answers:?}"
        );
        // Two at a time: the last pair waited 60 ms, above the target but not for an interval.
        assert_eq!(answers.last().unwrap().after, ms(80));
    }

    #[tokio::test(start_paused = true)]
    async fn while_dropping_a_newcomer_waits_the_target_and_a_drained_queue_serves_again() {
        let metrics = Metrics::new();
        let app = app(1, settings(), &metrics, Duration::from_secs(1));
        let started = Instant::now();
        let first = tokio::spawn(send(app.clone(), started));
        let queued = tokio::spawn(send(app.clone(), started));
        assert_overloaded(&queued.await.unwrap());

        tokio::time::advance(ms(200)).await;
        let newcomer = send(app.clone(), Instant::now()).await;
        assert_overloaded(&newcomer);
        assert_eq!(newcomer.after, TARGET);

        assert_eq!(first.await.unwrap().status, StatusCode::OK);
        // The slot came back with nobody waiting: admitted at once.
        let later = send(app.clone(), Instant::now()).await;
        assert_eq!(later.status, StatusCode::OK);
        assert_eq!(later.after, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_request_waits_longer_than_the_maximum() {
        let metrics = Metrics::new();
        let patient = OverloadSettings {
            interval: Duration::from_secs(30),
            ..settings()
        };
        let app = app(1, patient, &metrics, Duration::from_secs(5));
        let answers = surge(&app, 2).await;
        assert_overloaded(&answers[0]);
        assert_eq!(answers[0].after, MAX_WAIT);
        assert_eq!(answers[1].status, StatusCode::OK);
        let prefix = "breakwater_origin_overload_shed_total{bulkhead=\"test\",reason=\"max_wait\"}";
        assert_eq!(line(&metrics, prefix).await, format!("{prefix} 1"));
    }

    /// Polls `future` once.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_goes_away_gives_up_its_place_or_its_slot() {
        let layer = OverloadLayer::new("test", 1, &settings(), &Metrics::new());
        let limiter = &layer.limiter;
        let held = limiter.clone().acquire().await.unwrap();

        // Gone while queued: it leaves the queue.
        let mut gone = Box::pin(limiter.clone().acquire());
        assert!(poll_once(&mut gone).await.is_pending());
        assert_eq!(limiter.lock().waiters.len(), 1);
        drop(gone);
        assert_eq!(limiter.lock().waiters.len(), 0);

        // Gone after the slot was handed to it, before it saw so: the slot is passed on.
        let mut gone = Box::pin(limiter.clone().acquire());
        assert!(poll_once(&mut gone).await.is_pending());
        drop(held);
        assert_eq!(limiter.lock().in_flight, 1, "handed to the waiting request");
        drop(gone);
        assert_eq!(limiter.lock().in_flight, 0);
        let next = limiter.clone().acquire().await;
        assert!(next.is_some());
    }
}
