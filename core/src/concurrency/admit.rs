//! Admission of requests to one origin against its adaptive limit, in one isolate: an in-flight
//! count, and short wait queues, one per [`Priority`], for the moments it is full.
//!
//! ## Rules
//!
//! - **Room**: while fewer than `limit` requests are in flight, a request of any priority is
//!   granted at once. Capacity freed by a release goes to the waiters first, so room left after
//!   that means nobody waits: a newcomer never overtakes a waiter.
//! - **Full**: a request waits in its priority's queue, FIFO, and freed capacity goes to the
//!   highest priority first. Critical therefore never waits behind a lower priority, and is never
//!   refused while the limit has room for it.
//! - **Refused at once**, lowest priority first: any priority when its expected wait (those
//!   ahead of it, its own priority and above, drained at `limit` per recent RTT) exceeds its
//!   wait budget, and then every lower priority's waiters with it, who wait behind it. Low's
//!   budget is half the others', so as a queue builds Low is refused first; it is not refused
//!   merely because a higher priority waits (at moderate load short queues come and go with the
//!   arrivals' bunching, and refusing Low at each would shed it with the origin far from full).
//!   A request that finds the queue full takes the place of the newest waiter of the lowest
//!   priority below its own, which is refused; if there is none it is refused itself.
//! - **Deadline**: a waiter is granted or refused by its budget after it queued. By default
//!   Normal's budget is the larger of `2 · no-load RTT − recent RTT` (the no-load RTT when the
//!   origin is not queueing), so queue wait + origin RTT stays within about twice the unloaded
//!   latency, and the time the origin takes to serve the queue allowance (`allowance · recent RTT
//!   / limit`, see [`super::limit`]): an origin allowed a standing queue of its own has an
//!   unloaded latency that already includes it. Never below `min_wait_ms`. Low gets half (the
//!   floor still applies, or Low would be refused at moderate load whenever two arrive at once), High
//!   and Critical three allowances' worth ([`DRAINS_ABOVE_NORMAL`]): after a cut the requests in
//!   flight above the new limit drain first, and the priorities the queue exists for should
//!   outlast that. Waiting longer would make a request later than the timeouts and SLOs it is
//!   meant to protect, and the retry a refusal invites is better spent elsewhere.
//!
//! `retry_after_ms` tells a refused client when the queue ahead of it will have drained: the
//! waiters ahead of it (its priority and above, itself included) over the drain rate
//! `limit / recent RTT` (Little's law: the origin's throughput), rounded up to whole seconds (Retry-After's unit), at least 1 s and at
//! most `max_retry_after_ms` (10 s by default: past that the limit and the load have changed
//! anyway, and a longer hint would only keep clients away from a recovered origin).
//!
//! The struct is sans-IO and synchronous: the edge calls [`Admission::try_acquire`], and for a
//! [`Acquire::Queued`] ticket polls with [`Admission::poll`] when a release may have made room
//! (or at the ticket's deadline), and [`Admission::cancel`]s it if the client goes away. Every
//! permit must come back through [`Admission::release`], with the RTT it measured; a permit or
//! ticket that is lost keeps its slot.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::limit::{AdaptiveLimit, LimitConfig, Sample};
use super::shares::Share;
use crate::ratelimit::Priority;

/// How many queue allowances' worth of service High and Critical may wait: long enough to
/// outlast the drain after a cut (in flight above the new limit), so that a cut does not refuse
/// the priorities the queue exists for.
const DRAINS_ABOVE_NORMAL: f64 = 3.0;

/// One wait queue per priority rank ([`crate::shedding::RANKS`]; ranks above the last count as it).
const PRIORITIES: usize = crate::shedding::RANKS as usize;

/// The wait queues. In JSON, missing fields take their defaults and unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// How long a Normal request may wait for a slot (Low half of it); `None` (the default)
    /// derives it per priority from the RTTs (module documentation), rounded up to a whole
    /// millisecond and at least `min_wait_ms`, or `fallback_wait_ms` before the first sample.
    pub max_wait_ms: Option<u64>,
    /// Waiters across all priorities, 100: with a budget of about one RTT and a limit in the tens, more
    /// could not be served in time anyway.
    pub max_queued: u32,
    /// The derived wait budget before any RTT is known, 100 ms.
    pub fallback_wait_ms: u64,
    /// The least derived wait budget, 50 ms: the network and the edge's own work dwarf a fast
    /// origin's round trip, so a burst at a 5 ms origin waits a few of them rather than being
    /// refused while slots free up every few milliseconds.
    pub min_wait_ms: u64,
    /// Cap of `retry_after_ms`, 10 s.
    pub max_retry_after_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_wait_ms: None,
            max_queued: 100,
            fallback_wait_ms: 100,
            min_wait_ms: 50,
            max_retry_after_ms: 10_000,
        }
    }
}

/// A right to have one request in flight; give it back with [`Admission::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permit(pub u64);

/// A place in a wait queue; ask about it with [`Admission::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// The answer to [`Admission::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    Granted(Permit),
    Queued(Ticket),
    /// `retry_after_ms` is a whole number of seconds, in ms, for a `Retry-After` header.
    Refused {
        retry_after_ms: u64,
    },
}

/// The answer to [`Admission::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Granted(Permit),
    Waiting,
    /// The deadline passed, a higher priority took the place or was refused ahead of it, or the
    /// ticket is unknown.
    Refused {
        retry_after_ms: u64,
    },
}

/// A snapshot for reporting (metrics, and the coordinator of [`super::shares`]). `samples` and
/// `demand` count since the last [`Admission::take_measurement`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub limit: u32,
    pub in_flight: u32,
    pub no_load_rtt_ms: Option<f64>,
    pub recent_rtt_ms: Option<f64>,
    /// Releases fed to the limit.
    pub samples: u64,
    /// Calls of [`Admission::try_acquire`]: the requests that wanted the origin.
    pub demand: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Waiter {
    ticket: u64,
    deadline_ms: u64,
}

/// Admission to one origin in one isolate. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Admission {
    limit: AdaptiveLimit,
    config: QueueConfig,
    /// Permits out, including those reserved for waiters who have not polled yet.
    permits: BTreeSet<u64>,
    /// One FIFO per priority, most important first.
    waiting: [VecDeque<Waiter>; PRIORITIES],
    /// Tickets granted a permit on a release, until they poll.
    ready: BTreeMap<u64, Permit>,
    next_id: u64,
    /// The latest `now_ms` seen, for [`Admission::cancel`]'s hand-over.
    now_ms: u64,
    samples: u64,
    demand: u64,
}

impl Admission {
    pub fn new(limit: LimitConfig, queue: QueueConfig) -> Self {
        Self {
            limit: AdaptiveLimit::new(limit),
            config: queue,
            permits: BTreeSet::new(),
            waiting: Default::default(),
            ready: BTreeMap::new(),
            next_id: 0,
            now_ms: 0,
            samples: 0,
            demand: 0,
        }
    }

    /// Asks for a slot for a request of `priority`.
    pub fn try_acquire(&mut self, now_ms: u64, priority: Priority) -> Acquire {
        self.demand = self.demand.saturating_add(1);
        self.dispatch(now_ms);
        if self.in_flight() < self.limit() {
            return Acquire::Granted(self.grant());
        }
        let rank = usize::from(priority.rank()).min(PRIORITIES - 1);
        let ahead = self
            .waiting
            .iter()
            .take(rank + 1)
            .map(VecDeque::len)
            .sum::<usize>() as u64
            + 1;
        let refused = Acquire::Refused {
            retry_after_ms: self.retry_after_ms(ahead),
        };
        let budget = self.budget_ms(priority);
        if self
            .expected_wait_ms(ahead)
            .is_some_and(|w| w > budget as f64)
        {
            // Whoever waits behind this one could not be served in time either.
            for q in self.waiting.iter_mut().skip(rank + 1) {
                q.clear();
            }
            return refused;
        }
        if self.queued() >= self.config.max_queued {
            let lower = self
                .waiting
                .iter_mut()
                .skip(rank + 1)
                .rev()
                .find(|q| !q.is_empty());
            match lower {
                Some(q) => {
                    q.pop_back();
                }
                None => return refused,
            }
        }
        let ticket = self.next_id();
        // `rank` is clamped to the queues above, so there is always one.
        let Some(queue) = self.waiting.get_mut(rank) else {
            return refused;
        };
        queue.push_back(Waiter {
            ticket,
            deadline_ms: now_ms.saturating_add(budget),
        });
        Acquire::Queued(Ticket(ticket))
    }

    /// Where a waiter stands: granted once a release handed it a permit, refused once its
    /// deadline passed (or it lost its place, or was never queued).
    pub fn poll(&mut self, ticket: Ticket, now_ms: u64) -> Wait {
        self.dispatch(now_ms);
        if let Some(permit) = self.ready.remove(&ticket.0) {
            return Wait::Granted(permit);
        }
        let place = self.waiting.iter().enumerate().find_map(|(rank, q)| {
            q.iter()
                .position(|w| w.ticket == ticket.0)
                .map(|i| (rank, i))
        });
        match place {
            Some(_) => Wait::Waiting,
            None => Wait::Refused {
                retry_after_ms: self.retry_after_ms(self.queued() as u64 + 1),
            },
        }
    }

    /// When `ticket` will be refused if still waiting; `None` unless it waits.
    pub fn deadline_ms(&self, ticket: Ticket) -> Option<u64> {
        self.waiting
            .iter()
            .flatten()
            .find(|w| w.ticket == ticket.0)
            .map(|w| w.deadline_ms)
    }

    /// Gives up a place in the queue, or the permit a release reserved for it.
    pub fn cancel(&mut self, ticket: Ticket) {
        for q in &mut self.waiting {
            q.retain(|w| w.ticket != ticket.0);
        }
        if let Some(permit) = self.ready.remove(&ticket.0) {
            self.permits.remove(&permit.0);
            self.dispatch(self.now_ms);
        }
    }

    /// Returns a permit with what its request measured, and hands the freed capacity to the
    /// waiters. A permit already returned, or never granted, is ignored.
    pub fn release(&mut self, permit: Permit, now_ms: u64, rtt_ms: f64, outcome: Sample) {
        let inflight = self.in_flight();
        if self.permits.remove(&permit.0) {
            self.samples = self.samples.saturating_add(1);
            self.limit.on_sample(now_ms, rtt_ms, inflight, outcome);
        }
        self.dispatch(now_ms);
    }

    /// Takes this isolate's share of a global limit (see [`super::shares`]); `None` lifts the
    /// cap.
    pub fn set_share(&mut self, share: Option<Share>, now_ms: u64) {
        self.limit.set_share(share);
        self.dispatch(now_ms);
    }

    /// Permits out, those reserved for waiters included.
    pub fn in_flight(&self) -> u32 {
        u32::try_from(self.permits.len()).unwrap_or(u32::MAX)
    }

    pub fn limit(&self) -> u32 {
        self.limit.limit()
    }

    /// Waiters across all priorities.
    pub fn queued(&self) -> u32 {
        let n = self.waiting.iter().map(VecDeque::len).sum::<usize>();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The snapshot, counting samples and demand since the last [`Admission::take_measurement`].
    pub fn measurement(&self) -> Measurement {
        Measurement {
            limit: self.limit(),
            in_flight: self.in_flight(),
            no_load_rtt_ms: self.limit.no_load_rtt_ms(),
            recent_rtt_ms: self.limit.recent_rtt_ms(),
            samples: self.samples,
            demand: self.demand,
        }
    }

    /// The snapshot, starting a new count of samples and demand.
    pub fn take_measurement(&mut self) -> Measurement {
        let m = self.measurement();
        self.samples = 0;
        self.demand = 0;
        m
    }

    /// The wait budget of a `priority` request: `max_wait_ms` when configured (half for Low);
    /// otherwise derived (see the module documentation).
    pub fn budget_ms(&self, priority: Priority) -> u64 {
        let low = priority == Priority::Low;
        if let Some(fixed) = self.config.max_wait_ms {
            return if low { fixed / 2 } else { fixed };
        }
        let (Some(no_load), Some(recent)) =
            (self.limit.no_load_rtt_ms(), self.limit.recent_rtt_ms())
        else {
            return self.config.fallback_wait_ms;
        };
        // The time the origin takes to serve what its queue may hold.
        let allowance = self.limit.queue_allowance() * recent / f64::from(self.limit().max(1));
        let derived = match priority {
            Priority::Low => (2.0 * no_load - recent).max(allowance) / 2.0,
            Priority::Normal => (2.0 * no_load - recent).max(allowance),
            Priority::High | Priority::Critical => {
                (2.0 * no_load - recent).max(DRAINS_ABOVE_NORMAL * allowance)
            }
        };
        // Finite and at most an hour each: the limit clamps what it keeps.
        (derived.max(0.0).ceil() as u64).max(self.config.min_wait_ms)
    }

    /// Expires waiters past their deadline, then hands free capacity to the rest, highest
    /// priority first.
    fn dispatch(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        for q in &mut self.waiting {
            q.retain(|w| w.deadline_ms > now_ms);
        }
        while self.in_flight() < self.limit() {
            let Some(waiter) = self.waiting.iter_mut().find_map(VecDeque::pop_front) else {
                break;
            };
            let permit = self.grant();
            self.ready.insert(waiter.ticket, permit);
        }
    }

    fn grant(&mut self) -> Permit {
        let id = self.next_id();
        self.permits.insert(id);
        Permit(id)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// How long `ahead` waiters take to drain at `limit` per recent RTT; `None` before the first
    /// sample.
    fn expected_wait_ms(&self, ahead: u64) -> Option<f64> {
        let rtt = self.limit.recent_rtt_ms()?;
        Some(ahead as f64 * rtt / f64::from(self.limit().max(1)))
    }

    fn retry_after_ms(&self, ahead: u64) -> u64 {
        let cap = self.config.max_retry_after_ms.max(1_000);
        let wait = self.expected_wait_ms(ahead).unwrap_or(0.0);
        // `wait` is finite and non-negative; the clamp bounds it before the cast.
        let seconds = (wait / 1_000.0).ceil().clamp(1.0, (cap / 1_000) as f64) as u64;
        (seconds * 1_000).min(cap)
    }
}
