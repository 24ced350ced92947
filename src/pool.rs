//! The isolate's side of the origin pool (`ORIGINS`): which origin each origin request goes to,
//! the requests in flight and recent latency per origin, and passive ejection. The decisions are
//! `breakwater_core::pool`'s; this keeps their state for the isolate's lifetime.

use crate::exchange::{now_ms, random};
use crate::signals;
use breakwater_core::config::EdgeConfig;
use breakwater_core::pool::{Balancer, Ejector, Load, candidates};
use std::cell::RefCell;

struct State {
    ejector: Ejector,
    balancer: Balancer,
    loads: Vec<Load>,
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
        });
        f(state)
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
        let eligible = s.ejector.eligible(&config.pool.ejection, now as u64);
        // An origin whose breaker is known open is passed over while another is left.
        let healthy: Vec<bool> = config
            .pool
            .origins
            .iter()
            .map(|o| !signals::breaker_open(&o.url, now as u64))
            .collect();
        let cands = candidates(&eligible, &healthy);
        let weights: Vec<u32> = config.pool.origins.iter().map(|o| o.weight).collect();
        let index = s
            .balancer
            .pick(&weights, &cands, &s.loads, u64::from_le_bytes(random()))
            .unwrap_or(0);
        s.loads[index].in_flight += 1;
        index
    });
    Call {
        index,
        config_origins: config.pool.origins.len(),
        started_ms: now,
        done: false,
    }
}

impl Call {
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
            let load = &mut s.loads[index];
            load.in_flight = load.in_flight.saturating_sub(1);
            load.observe(latency);
            s.ejector
                .record(&config.pool.ejection, index, now as u64, ok)
        });
        if let Some(period_ms) = ejected {
            worker::console_warn!(
                "origin {} ejected for {period_ms} ms after failing",
                config.pool.origins[index].url
            );
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
