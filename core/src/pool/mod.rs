//! Several origins behind the edge: which one a request goes to ([`Balancer`]) and which ones are
//! out of rotation for failing ([`Ejector`]). Pure: time and random values come in as arguments;
//! the edge keeps one of each per isolate.
//!
//! Candidates are the origins neither ejected nor reported unhealthy ([`candidates`]). Among them
//! the balancer takes two at random (by weight) and sends to the one with the lower cost, in-flight
//! requests times recent latency over weight ("power of two choices"); with no signal (nothing
//! in flight) it falls back to smooth weighted round robin, so no origin is starved of the
//! requests that would show it has become fast again.

#![expect(
    clippy::indexing_slicing,
    reason = "indices range over the pool's own records and vectors built from them with the same length"
)]

mod config;
pub mod health;
pub mod retry;
#[cfg(test)]
mod tests;

pub use config::{EjectionConfig, HealthConfig, OriginSpec, PoolConfig};
pub use health::HealthRecord;
pub use retry::{Failure, RetryBudget, RetryConfig};

/// `raw` as an origin base URL: `http(s)://host[:port]`, no path, query or trailing slash.
pub fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{raw:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "{raw:?} must be a scheme and host[:port] only, with no path, query or spaces"
        ));
    }
    Ok(url.to_owned())
}

/// How long the `n`th ejection in a row lasts: `base · 2^(n-1)`, at most `max` (`n` ≥ 1).
pub fn ejection_ms(config: &EjectionConfig, n: u32) -> u64 {
    let shift = n.saturating_sub(1).min(63);
    config
        .base_ejection_ms
        .saturating_mul(1u64 << shift)
        .min(config.max_ejection_ms)
}

/// How many origins of a pool of `n` may be ejected at once.
pub fn max_ejected(config: &EjectionConfig, n: usize) -> usize {
    n * config.max_ejected_percent as usize / 100
}

/// One origin's passive record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    consecutive_failures: u32,
    /// Ejections in a row (reset once the origin stays in for `max_ejection_ms`).
    ejections: u32,
    /// When the last ejection began, and until when it lasts.
    ejected_at_ms: Option<u64>,
    until_ms: u64,
    /// Back from an ejection with no success yet: one failure ejects it again.
    probation: bool,
}

/// Passive ejection for a pool: consecutive failures take an origin out for a growing period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ejector {
    records: Vec<Record>,
}

impl Ejector {
    pub fn new(origins: usize) -> Self {
        Self {
            records: vec![Record::default(); origins],
        }
    }

    /// Whether origin `i`'s ejection period still runs at `now_ms` (the cap aside).
    pub fn is_ejected(&self, i: usize, now_ms: u64) -> bool {
        self.records
            .get(i)
            .is_some_and(|r| r.ejected_at_ms.is_some() && now_ms < r.until_ms)
    }

    /// Records one answer from origin `i`: `ok` is false for a `5xx`, no connection or a
    /// timeout. Returns the ejection period when this failure ejected it. Failures while it is
    /// ejected (sent there because the cap forced it) change nothing.
    pub fn record(
        &mut self,
        config: &EjectionConfig,
        i: usize,
        now_ms: u64,
        ok: bool,
    ) -> Option<u64> {
        let ejected = self.is_ejected(i, now_ms);
        let r = self.records.get_mut(i)?;
        if ok {
            r.consecutive_failures = 0;
            if !ejected {
                r.probation = false;
                if r.ejected_at_ms.is_some()
                    && now_ms >= r.until_ms.saturating_add(config.max_ejection_ms)
                {
                    r.ejections = 0;
                }
            }
            return None;
        }
        if ejected {
            return None;
        }
        r.consecutive_failures += 1;
        if !r.probation && r.consecutive_failures < config.consecutive_failures {
            return None;
        }
        r.ejections = r.ejections.saturating_add(1);
        let period = ejection_ms(config, r.ejections);
        r.ejected_at_ms = Some(now_ms);
        r.until_ms = now_ms.saturating_add(period);
        r.consecutive_failures = 0;
        r.probation = true;
        Some(period)
    }

    /// An active health check of origin `i` passed at `passed_ms`: an ejection that began before
    /// it ends now. The origin stays on probation, so one failure ejects it again.
    pub fn passed_check(&mut self, i: usize, passed_ms: u64) {
        if let Some(r) = self.records.get_mut(i)
            && r.ejected_at_ms.is_some_and(|at| at < passed_ms)
            && passed_ms < r.until_ms
        {
            r.until_ms = passed_ms;
        }
    }

    /// Which origins may take traffic at `now_ms`: all but the ejected, except that when more are
    /// ejected than the cap allows, the least recently ejected of them stay eligible.
    pub fn eligible(&self, config: &EjectionConfig, now_ms: u64) -> Vec<bool> {
        let n = self.records.len();
        let mut ejected: Vec<usize> = (0..n).filter(|&i| self.is_ejected(i, now_ms)).collect();
        // Most recently ejected first; they are the ones that stay out.
        ejected.sort_by_key(|&i| (std::cmp::Reverse(self.records[i].ejected_at_ms), i));
        let mut eligible = vec![true; n];
        for &i in ejected.iter().take(max_ejected(config, n)) {
            eligible[i] = false;
        }
        eligible
    }
}

/// The origins a request may go to: eligible and healthy; if none, eligible ones; if none (a cap
/// of 100 %), all of them. Never empty for a non-empty pool.
pub fn candidates(eligible: &[bool], healthy: &[bool]) -> Vec<bool> {
    let both: Vec<bool> = eligible
        .iter()
        .zip(healthy.iter().chain(std::iter::repeat(&true)))
        .map(|(&e, &h)| e && h)
        .collect();
    if both.iter().any(|&c| c) {
        both
    } else if eligible.iter().any(|&c| c) {
        eligible.to_vec()
    } else {
        vec![true; eligible.len()]
    }
}

/// What the isolate knows of an origin's load.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub in_flight: u32,
    /// Exponentially weighted moving average of response latency; `None` before the first.
    pub latency_ewma_ms: Option<f64>,
}

/// Weight of the newest latency sample in the moving average.
pub const EWMA_ALPHA: f64 = 0.3;

impl Load {
    /// Folds one latency sample into the average.
    pub fn observe(&mut self, latency_ms: f64) {
        let sample = latency_ms.max(0.0);
        self.latency_ewma_ms = Some(match self.latency_ewma_ms {
            Some(prev) => prev + EWMA_ALPHA * (sample - prev),
            None => sample,
        });
    }
}

/// Origins back among the candidates after being out (ejected, unhealthy) forget their latency
/// average, which the failures that took them out inflated to the origin timeout: under steady
/// load the balancer always has a signal and would never pick such an origin again to learn it
/// is fast. `was_candidate` is the caller's memory of the last candidates; updated here.
pub fn rejoin(loads: &mut [Load], was_candidate: &mut Vec<bool>, candidates: &[bool]) {
    was_candidate.resize(candidates.len(), true);
    for (i, (&now, was)) in candidates.iter().zip(was_candidate.iter_mut()).enumerate() {
        if now
            && !*was
            && let Some(load) = loads.get_mut(i)
        {
            load.latency_ewma_ms = None;
        }
        *was = now;
    }
}

/// Picks an origin per request; keeps the round-robin state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Balancer {
    current: Vec<i64>,
}

impl Balancer {
    /// The origin for the next request among `candidates` (see [`candidates`]); `None` only when
    /// there is none. `random` is a fresh random value.
    pub fn pick(
        &mut self,
        weights: &[u32],
        candidates: &[bool],
        loads: &[Load],
        random: u64,
    ) -> Option<usize> {
        let cands: Vec<usize> = (0..weights.len())
            .filter(|&i| candidates.get(i).copied().unwrap_or(false))
            .collect();
        match cands.as_slice() {
            [] => return None,
            [only] => return Some(*only),
            _ => {}
        }
        let load = |i: usize| loads.get(i).copied().unwrap_or_default();
        // Latency weighs in only with something in flight: alone, sequential traffic would all go
        // to whichever origin was faster lately, and the other would never be measured again.
        let signal = cands.iter().any(|&i| load(i).in_flight > 0);
        if !signal {
            return Some(self.round_robin(weights, &cands));
        }
        let a = weighted_draw(weights, &cands, random as u32);
        let rest: Vec<usize> = cands.iter().copied().filter(|&i| i != a).collect();
        let b = weighted_draw(weights, &rest, (random >> 32) as u32);
        let known: Vec<f64> = cands
            .iter()
            .filter_map(|&i| load(i).latency_ewma_ms)
            .collect();
        let typical = if known.is_empty() {
            1.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        let cost = |i: usize| {
            let l = load(i);
            let latency = l.latency_ewma_ms.unwrap_or(typical).max(0.001);
            (f64::from(l.in_flight) + 1.0) * latency / f64::from(weights[i].max(1))
        };
        Some(if cost(b) < cost(a) { b } else { a })
    }

    /// Smooth weighted round robin over `cands` (nginx's): each gains its weight, the largest
    /// is picked and pays back the total.
    fn round_robin(&mut self, weights: &[u32], cands: &[usize]) -> usize {
        self.current.resize(weights.len(), 0);
        let total: i64 = cands.iter().map(|&i| i64::from(weights[i])).sum();
        let mut best = cands[0];
        for &i in cands {
            self.current[i] += i64::from(weights[i]);
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        best
    }
}

/// One of `cands` drawn with probability proportional to its weight.
fn weighted_draw(weights: &[u32], cands: &[usize], random: u32) -> usize {
    let total: u64 = cands.iter().map(|&i| u64::from(weights[i].max(1))).sum();
    let mut point = u64::from(random) % total.max(1);
    for &i in cands {
        let w = u64::from(weights[i].max(1));
        if point < w {
            return i;
        }
        point -= w;
    }
    cands[cands.len() - 1]
}
