//! The isolate's side of the origin pool (`ORIGINS`): which origin each origin request goes to
//! (and which one its retry goes to), the requests in flight and recent latency per origin,
//! passive ejection merged with the active health checks `CONTROL` reports, and the retry
//! budget. The decisions are `breakwater_core::pool`'s; this keeps their state for the
//! isolate's lifetime.

use crate::bindings::control::signals;
use crate::runtime::{now_ms, random};
use breakwater_core::config::EdgeConfig;
use breakwater_core::pool::retry::retry_candidates;
use breakwater_core::pool::{Balancer, Ejector, Load, RetryBudget, candidates, rejoin};
use serde::Serialize;
use std::cell::RefCell;

struct State {
    ejector: Ejector,
    balancer: Balancer,
    loads: Vec<Load>,
    retries: RetryBudget,
    /// The last first attempt's candidates ([`rejoin`]).
    was_candidate: Vec<bool>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with_state<T>(config: &EdgeConfig, f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with_borrow_mut(|state| {
        let n = config.pool.origins.len();
        let state = state.get_or_insert_with(|| State {
            ejector: Ejector::new(n),
            balancer: Balancer::default(),
            loads: vec![Load::default(); n],
            retries: RetryBudget::new(&config.pool.retry),
            was_candidate: vec![true; n],
        });
        f(state)
    })
}

/// What this isolate knows of one origin (the admin view).
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// As of this isolate's last report to `CONTROL`.
    pub healthy: bool,
    pub ejected: bool,
    pub in_flight: u32,
    pub latency_ewma_ms: Option<f64>,
}

/// This isolate's view of each origin, in pool order.
pub fn snapshot(config: &EdgeConfig) -> Vec<Snapshot> {
    let now = now_ms() as u64;
    with_state(config, |s| {
        let eligible = s.ejector.eligible(&config.pool.ejection, now);
        s.loads
            .iter()
            .zip(eligible)
            .zip(&config.pool.origins)
            .map(|((load, eligible), origin)| Snapshot {
                healthy: signals::health(&origin.url).is_none_or(|r| r.healthy),
                ejected: !eligible,
                in_flight: load.in_flight,
                latency_ewma_ms: load.latency_ewma_ms,
            })
            .collect()
    })
}

/// An origin request in flight to origin `index`; dropped unfinished (the client went away), it
/// still stops counting as in flight.
pub struct Call {
    pub index: usize,
    config_origins: usize,
    started_ms: f64,
    done: bool,
}

/// Picks the origin for one request and counts it in flight.
pub fn start(config: &EdgeConfig) -> Call {
    let now = now_ms();
    let index = with_state(config, |s| {
        s.retries.deposit(&config.pool.retry, now as u64);
        let healthy = healthy(s, config, now);
        let eligible = s.ejector.eligible(&config.pool.ejection, now as u64);
        let cands = candidates(&eligible, &healthy);
        rejoin(&mut s.loads, &mut s.was_candidate, &cands);
        s.pick(config, &cands)
    });
    Call::new(config, index, now)
}

/// Picks another origin for a request that failed on origin `failed` without an answer, if one
/// is eligible and healthy and the retry budget allows; counts it in flight.
pub fn retry(config: &EdgeConfig, failed: usize) -> Option<Call> {
    let now = now_ms();
    let index = with_state(config, |s| {
        let healthy = healthy(s, config, now);
        let eligible = s.ejector.eligible(&config.pool.ejection, now as u64);
        let cands = retry_candidates(&eligible, &healthy, failed);
        if !cands.contains(&true) || !s.retries.withdraw(&config.pool.retry, now as u64) {
            return None;
        }
        Some(s.pick(config, &cands))
    })?;
    Some(Call::new(config, index, now))
}

/// Which origins are believed healthy: not failing their active health checks, and with no
/// breaker known open. A health check passed since an origin's passive ejection began ends it.
fn healthy(s: &mut State, config: &EdgeConfig, now: f64) -> Vec<bool> {
    let mut healthy = Vec::with_capacity(config.pool.origins.len());
    for (i, origin) in config.pool.origins.iter().enumerate() {
        let record = signals::health(&origin.url).unwrap_or_default();
        if let Some(passed_ms) = record.passed_ms {
            s.ejector.passed_check(i, passed_ms);
        }
        healthy.push(record.healthy && !signals::breaker_open(&origin.url, now as u64));
    }
    healthy
}

impl State {
    fn pick(&mut self, config: &EdgeConfig, cands: &[bool]) -> usize {
        let weights: Vec<u32> = config.pool.origins.iter().map(|o| o.weight).collect();
        let index = self
            .balancer
            .pick(&weights, cands, &self.loads, u64::from_le_bytes(random()))
            .unwrap_or(0);
        if let Some(load) = self.loads.get_mut(index) {
            load.in_flight += 1;
        }
        index
    }
}

/// The base URL of origin `index` of the pool (an index this module handed out), or `""`.
pub fn origin_url(config: &EdgeConfig, index: usize) -> &str {
    config
        .pool
        .origins
        .get(index)
        .map_or("", |o| o.url.as_str())
}

impl Call {
    fn new(config: &EdgeConfig, index: usize, started_ms: f64) -> Self {
        Self {
            index,
            config_origins: config.pool.origins.len(),
            started_ms,
            done: false,
        }
    }

    /// Records the outcome: `ok` is false for a `5xx`, no connection or a timeout (whose latency
    /// counts as the whole timeout).
    pub fn finish(mut self, config: &EdgeConfig, ok: bool) {
        self.done = true;
        let now = now_ms();
        let latency = if ok {
            now - self.started_ms
        } else {
            (now - self.started_ms).max(config.origin_timeout.as_millis() as f64)
        };
        let index = self.index;
        let ejected = with_state(config, |s| {
            if let Some(load) = s.loads.get_mut(index) {
                load.in_flight = load.in_flight.saturating_sub(1);
                load.observe(latency);
            }
            let period = s
                .ejector
                .record(&config.pool.ejection, index, now as u64, ok)?;
            let eligible = s.ejector.eligible(&config.pool.ejection, now as u64);
            Some((period, !eligible.get(index).copied().unwrap_or(true)))
        });
        let url = origin_url(config, index);
        match ejected {
            Some((period_ms, true)) => {
                worker::console_warn!("origin {url} ejected for {period_ms} ms after failing")
            }
            Some((_, false)) => worker::console_warn!(
                "origin {url} failing, kept in rotation by the ejection cap (max_ejected_percent)"
            ),
            None => {}
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let index = self.index;
        STATE.with_borrow_mut(|s| {
            if let Some(load) = s
                .as_mut()
                .filter(|s| s.loads.len() == self.config_origins)
                .and_then(|s| s.loads.get_mut(index))
            {
                load.in_flight = load.in_flight.saturating_sub(1);
            }
        });
    }
}
