//! A deterministic discrete-event model of origins and of a fleet of isolates in front of one,
//! for the tests: a fake clock in whole milliseconds and a seeded xorshift generator, so every run
//! is the same run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::admit::{Acquire, Admission, Permit, QueueConfig, Ticket, Wait};
use super::limit::{AdaptiveLimit, LimitConfig, Sample};
use super::shares::aggregate;
use crate::ratelimit::Priority;

/// An origin with `servers` workers taking `service_ms` each, and a FIFO queue in front of them:
/// a request sent at `t` starts when the first worker frees up and ends `service_ms` later.
#[derive(Debug, Clone)]
pub struct Origin {
    free_at: Vec<u64>,
    active: usize,
    pub service_ms: u64,
}

impl Origin {
    pub fn new(servers: usize, service_ms: u64) -> Self {
        Self {
            free_at: vec![0; servers.max(1)],
            active: servers.max(1),
            service_ms,
        }
    }

    /// Workers serving our requests from now on: fewer models other load taking the rest. Work
    /// already queued on a worker taken away still finishes.
    pub fn set_servers(&mut self, servers: usize) {
        let servers = servers.max(1);
        if servers > self.free_at.len() {
            self.free_at.resize(servers, 0);
        }
        self.active = servers;
    }

    /// When a request sent at `now_ms` is answered.
    pub fn send(&mut self, now_ms: u64) -> u64 {
        let mut best = 0;
        for i in 1..self.active {
            if self.free_at[i] < self.free_at[best] {
                best = i;
            }
        }
        let finish = self.free_at[best].max(now_ms) + self.service_ms;
        self.free_at[best] = finish;
        finish
    }
}

/// A closed loop: `clients` callers, each sending its next request as soon as the previous one
/// is answered and the limit allows.
pub struct ClosedLoop {
    pub origin: Origin,
    pub limit: AdaptiveLimit,
    pub clients: u32,
    pub now_ms: u64,
    /// (answered at, sent at) of the requests in flight.
    pending: BinaryHeap<Reverse<(u64, u64)>>,
}

/// What a stretch of a closed loop did.
#[derive(Debug, Clone, Default)]
pub struct Stretch {
    pub answered: u64,
    pub rtts: Vec<f64>,
    pub limits: Vec<u32>,
}

impl Stretch {
    pub fn mean_rtt(&self) -> f64 {
        self.rtts.iter().sum::<f64>() / self.rtts.len().max(1) as f64
    }

    pub fn mean_limit(&self) -> f64 {
        self.limits.iter().map(|&l| f64::from(l)).sum::<f64>() / self.limits.len().max(1) as f64
    }
}

impl ClosedLoop {
    pub fn new(origin: Origin, limit: AdaptiveLimit, clients: u32) -> Self {
        Self {
            origin,
            limit,
            clients,
            now_ms: 0,
            pending: BinaryHeap::new(),
        }
    }

    fn fill(&mut self) {
        let cap = self.limit.limit().min(self.clients) as usize;
        while self.pending.len() < cap {
            let finish = self.origin.send(self.now_ms);
            self.pending.push(Reverse((finish, self.now_ms)));
        }
    }

    /// Runs until `end_ms`, every answer a sample.
    pub fn run(&mut self, end_ms: u64) -> Stretch {
        let mut stretch = Stretch::default();
        loop {
            self.fill();
            let Some(&Reverse((finish, sent))) = self.pending.peek() else {
                break;
            };
            if finish > end_ms {
                break;
            }
            self.pending.pop();
            self.now_ms = finish;
            let inflight = self.pending.len() as u32 + 1;
            let rtt = (finish - sent) as f64;
            self.limit.on_sample(finish, rtt, inflight, Sample::Ok);
            stretch.answered += 1;
            stretch.rtts.push(rtt);
            stretch.limits.push(self.limit.limit());
        }
        self.now_ms = end_ms;
        stretch
    }
}

/// xorshift64*: small, seeded, good enough to scatter arrivals.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Exponentially distributed with mean `mean`.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -self.unit().ln() * mean
    }
}

/// A fleet of isolates in front of one origin, with open-loop arrivals.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub isolates: usize,
    pub servers: usize,
    pub service_ms: u64,
    /// Arrivals per second as a multiple of the origin's capacity `servers / service`.
    pub offered: f64,
    /// The edge gives up on the origin after this long: a dropped sample, a failed request.
    pub timeout_ms: u64,
    pub report_interval_ms: u64,
    /// Whether isolates cap their limits by their shares of the global limit.
    pub shares: bool,
    /// Whether to admit everything (the baseline without a concurrency limit).
    pub unlimited: bool,
    pub limit: LimitConfig,
    /// The priorities arrivals take, each equally likely.
    pub priorities: &'static [Priority],
    /// Up to this much (uniform) is added to every round trip: the edge's own delays (its event
    /// loop, the network), which the limit cannot tell from the origin's.
    pub jitter_ms: u64,
    pub seed: u64,
}

/// Every priority, most important first.
pub const ALL_PRIORITIES: &[Priority] = &[
    Priority::Critical,
    Priority::High,
    Priority::Normal,
    Priority::Low,
];

/// What a fleet run did after its warm-up.
#[derive(Debug, Clone, Default)]
pub struct FleetRun {
    pub arrivals: u64,
    pub ok: u64,
    pub failed: u64,
    pub refused: u64,
    /// Arrivals and refusals by priority rank.
    pub arrivals_by_rank: [u64; 4],
    pub refused_by_rank: [u64; 4],
    /// Arrival to answer, of the admitted requests that succeeded, sorted.
    pub latencies: Vec<u64>,
    /// Answered within the timeout per second, over the origin's capacity.
    pub goodput: f64,
}

impl FleetRun {
    pub fn p99(&self) -> u64 {
        let n = self.latencies.len();
        if n == 0 {
            return 0;
        }
        self.latencies[(n * 99 / 100).min(n - 1)]
    }

    /// Failed over admitted.
    pub fn failure_ratio(&self) -> f64 {
        self.failed as f64 / (self.ok + self.failed).max(1) as f64
    }

    /// Refused over arrivals, of one priority.
    pub fn refused_ratio(&self, priority: Priority) -> f64 {
        self.refused_by_rank[rank(priority)] as f64
            / self.arrivals_by_rank[rank(priority)].max(1) as f64
    }
}

fn rank(priority: Priority) -> usize {
    usize::from(priority.rank()).min(3)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival,
    /// A request answered or timed out.
    Done {
        isolate: usize,
        permit: Permit,
        arrived: u64,
        sent: u64,
        timed_out: bool,
    },
    /// A waiter's deadline.
    Deadline {
        isolate: usize,
        ticket: Ticket,
    },
    Report,
}

/// The moving parts of one fleet run.
struct World<'a> {
    fleet: &'a Fleet,
    origin: Origin,
    isolates: Vec<Admission>,
    /// Per isolate, its waiting tickets, when each request arrived and its priority.
    waiting: Vec<Vec<(Ticket, u64, Priority)>>,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    warmup_ms: u64,
    run: FleetRun,
    rng: Rng,
}

impl World<'_> {
    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    fn refused(&mut self, arrived: u64, priority: Priority) {
        if arrived >= self.warmup_ms {
            self.run.refused += 1;
            self.run.refused_by_rank[rank(priority)] += 1;
        }
    }

    /// Sends a granted request to the origin.
    fn send(&mut self, now: u64, isolate: usize, permit: Permit, arrived: u64) {
        let jitter = self.rng.below(self.fleet.jitter_ms + 1);
        let finish = self.origin.send(now) + jitter;
        let timed_out = finish - now > self.fleet.timeout_ms;
        let at = if timed_out {
            now + self.fleet.timeout_ms
        } else {
            finish
        };
        let done = Event::Done {
            isolate,
            permit,
            arrived,
            sent: now,
            timed_out,
        };
        self.push(at, done);
    }

    /// Polls every waiter of `isolate`: a release or a new ceiling may have granted some.
    fn poll_waiters(&mut self, now: u64, isolate: usize) {
        let waiters = std::mem::take(&mut self.waiting[isolate]);
        for (ticket, arrived, priority) in waiters {
            match self.isolates[isolate].poll(ticket, now) {
                Wait::Granted(permit) => self.send(now, isolate, permit, arrived),
                Wait::Waiting => self.waiting[isolate].push((ticket, arrived, priority)),
                Wait::Refused { .. } => self.refused(arrived, priority),
            }
        }
    }
}

impl Fleet {
    /// Runs `warmup_ms`, then measures over `measure_ms` (requests that arrived in it).
    pub fn run(&self, warmup_ms: u64, measure_ms: u64) -> FleetRun {
        let end = warmup_ms + measure_ms;
        let config = if self.unlimited {
            LimitConfig {
                initial: u32::MAX,
                min: u32::MAX,
                max: u32::MAX,
                ..LimitConfig::default()
            }
        } else {
            self.limit.clone()
        };
        let mut w = World {
            fleet: self,
            origin: Origin::new(self.servers, self.service_ms),
            isolates: (0..self.isolates)
                .map(|_| Admission::new(config.clone(), QueueConfig::default()))
                .collect(),
            waiting: vec![Vec::new(); self.isolates],
            events: BinaryHeap::new(),
            seq: 0,
            warmup_ms,
            run: FleetRun::default(),
            rng: Rng::new(self.seed),
        };
        let mean_gap = self.service_ms as f64 / self.servers as f64 / self.offered;
        // Arrival times are kept fractional, so the offered rate is exact.
        let mut next_arrival = 0.0f64;
        w.push(0, Event::Arrival);
        w.push(self.report_interval_ms, Event::Report);
        while let Some(Reverse((now, _, event))) = w.events.pop() {
            if now >= end + 10 * self.timeout_ms {
                break;
            }
            match event {
                Event::Arrival if now < end => {
                    let i = w.rng.below(self.isolates as u64) as usize;
                    let p = self.priorities[w.rng.below(self.priorities.len() as u64) as usize];
                    if now >= warmup_ms {
                        w.run.arrivals += 1;
                        w.run.arrivals_by_rank[rank(p)] += 1;
                    }
                    match w.isolates[i].try_acquire(now, p) {
                        Acquire::Granted(permit) => w.send(now, i, permit, now),
                        Acquire::Queued(ticket) => {
                            w.waiting[i].push((ticket, now, p));
                            let deadline = w.isolates[i].deadline_ms(ticket).unwrap_or(now);
                            w.push(deadline, Event::Deadline { isolate: i, ticket });
                        }
                        Acquire::Refused { .. } => w.refused(now, p),
                    }
                    next_arrival += w.rng.exp(mean_gap);
                    w.push(next_arrival as u64, Event::Arrival);
                }
                Event::Arrival => {}
                Event::Done {
                    isolate,
                    permit,
                    arrived,
                    sent,
                    timed_out,
                } => {
                    let outcome = if timed_out {
                        Sample::Dropped
                    } else {
                        Sample::Ok
                    };
                    w.isolates[isolate].release(permit, now, (now - sent) as f64, outcome);
                    if arrived >= warmup_ms && arrived < end {
                        if timed_out {
                            w.run.failed += 1;
                        } else {
                            w.run.ok += 1;
                            w.run.latencies.push(now - arrived);
                        }
                    }
                    w.poll_waiters(now, isolate);
                }
                Event::Deadline { isolate, .. } => w.poll_waiters(now, isolate),
                Event::Report => {
                    if self.shares {
                        let measurements: Vec<_> = w
                            .isolates
                            .iter_mut()
                            .map(Admission::take_measurement)
                            .collect();
                        let global = aggregate(&measurements);
                        for (i, m) in measurements.iter().enumerate() {
                            w.isolates[i].set_share(global.share_for(m.demand), now);
                            w.poll_waiters(now, i);
                        }
                    }
                    w.push(now + self.report_interval_ms, Event::Report);
                }
            }
        }
        let mut run = w.run;
        run.latencies.sort_unstable();
        let capacity = self.servers as f64 * measure_ms as f64 / self.service_ms as f64;
        run.goodput = run.ok as f64 / capacity;
        run
    }
}
