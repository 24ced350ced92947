//! A 3× surge against a slowed origin with admission on. One fresh edge in front of a relay that
//! gives the origin a fixed capacity (service time × concurrency, FIFO queue); open-loop Poisson
//! traffic from several API keys, half on a high-priority route and half on a low-priority one,
//! both uncached: an unloaded phase at a rate the origin sustains, the surge at a multiple of it,
//! and the same rate again after, to see whether the controls let go. Per-key quotas, the SLO
//! shedding controller and the circuit breaker are tuned to react within seconds.

mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{API_KEY_HEADER, Bench, step};
use crate::load::{self, Request};
use crate::report::Section;
use crate::stats::{Sample, Summary};
use crate::throttle::{Counts, Throttle};
use crate::workload;
use crate::zipf::SplitMix64;

/// The edge's origin timeout here: a second, so a queue at the origin turns into `504`s the SLO
/// controller and the breaker can see within the run.
const ORIGIN_TIMEOUT_MS: u64 = 1_000;
/// How often the isolate reports to `CONTROL` (and learns the fraction and breaker state).
const CONTROL_REPORT_MS: u64 = 100;
/// The plan every API key is on.
const PLAN: &str = "bench";
/// A key's quota per route, as a multiple of the share of the unloaded rate it sends there: the
/// unloaded phase is never limited, the surge (3× the share) is, but what the quotas let through
/// (1.6× the unloaded rate) is still more than the origin can serve, so shedding has work too.
const QUOTA_HEADROOM: f64 = 1.6;

/// What to run.
pub struct Plan {
    pub throttle: Throttle,
    /// Requests per second offered in the unloaded phase (and after the surge).
    pub rate: f64,
    /// The surge's rate as a multiple of `rate`.
    pub factor: f64,
    /// Length of each phase.
    pub phase: Duration,
    pub principals: usize,
    /// The edge's `CONCURRENCY`, if given (JSON).
    pub concurrency: Option<String>,
    /// Product ids `1..=products` and list pages `1..=list_pages` to draw from.
    pub products: usize,
    pub list_pages: usize,
    pub seed: u64,
}

/// The two routes, by their priority when load is shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    High,
    Low,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Self::High => "high `/api/products/{id}`",
            Self::Low => "low `/api/products?page=k`",
        }
    }
}

/// Where one request belongs.
#[derive(Debug, Clone, Copy)]
struct Meta {
    phase: usize,
    route: Route,
    at: Duration,
}

/// The requests, their send times and what each one is.
struct Traffic {
    requests: Arc<[Request]>,
    at: Vec<Duration>,
    meta: Vec<Meta>,
}

impl Plan {
    /// (name, multiple of the unloaded rate) of each phase, in order.
    fn phases(&self) -> [(&'static str, f64); 3] {
        [("unloaded", 1.0), ("surge", self.factor), ("after", 1.0)]
    }

    fn keys(&self) -> Vec<String> {
        (1..=self.principals)
            .map(|i| format!("bench-surge-{i}"))
            .collect()
    }

    /// A key's quota on one route: [`QUOTA_HEADROOM`] × its unloaded share, and a second of
    /// it as burst (Poisson arrivals bunch; the unloaded phase must pass untouched).
    fn quota(&self) -> (u32, u32) {
        let share = self.rate / (2 * self.principals.max(1)) as f64;
        let limit = (share * QUOTA_HEADROOM).ceil().max(1.0) as u32;
        (limit, limit)
    }

    /// One request per key and route, untimed: creates every `RATE_LIMITER` object the timed
    /// phases use, so none is created on the clock.
    fn priming(&self) -> Arc<[Request]> {
        self.keys()
            .into_iter()
            .flat_map(|key| {
                ["/api/products/1", "/api/products?page=1"]
                    .map(|path| Request::get(path).with_header(API_KEY_HEADER, key.clone()))
            })
            .collect()
    }

    fn traffic(&self) -> Traffic {
        let keys = self.keys();
        let mut rng = SplitMix64::new(self.seed);
        let (mut requests, mut at, mut meta) = (Vec::new(), Vec::new(), Vec::new());
        for (phase, (_, multiple)) in self.phases().into_iter().enumerate() {
            let from = self.phase * phase as u32;
            for t in workload::poisson(&mut rng, self.rate * multiple, from, from + self.phase) {
                let key = &keys[rng.below(keys.len())];
                let (route, path) = if rng.below(2) == 0 {
                    let id = 1 + rng.below(self.products.max(1));
                    (Route::High, format!("/api/products/{id}"))
                } else {
                    let page = 1 + rng.below(self.list_pages.max(1));
                    (Route::Low, format!("/api/products?page={page}"))
                };
                requests.push(Request::get(path).with_header(API_KEY_HEADER, key.clone()));
                at.push(t);
                meta.push(Meta {
                    phase,
                    route,
                    at: t,
                });
            }
        }
        Traffic {
            requests: requests.into(),
            at,
            meta,
        }
    }

    /// The vars of the edge: admission, SLO, breaker, no caching.
    fn vars(&self) -> Vec<(&'static str, String)> {
        let (limit, burst) = self.quota();
        let quota = json!([{"name": "per-second", "limit": limit, "period": "1s", "burst": burst}]);
        // Requests without a key (the warm-up) are not what is measured: no limit for them.
        let open = json!([{"name": "per-second", "limit": 1_000_000, "period": "1s"}]);
        let admission = json!({
            "api_key_header": API_KEY_HEADER,
            "routes": [
                {"prefix": "/api/products/", "name": "product", "priority": "high",
                 "plan_quotas": true, "quotas": open},
                {"prefix": "/api/products", "name": "listing", "priority": "low",
                 "plan_quotas": true, "quotas": open},
            ],
            "plans": {PLAN: quota},
        });
        let slo = json!({
            "slo": 0.99, "short_window_ms": 1_000, "long_window_ms": 5_000,
            "burn_threshold": 10.0, "recover_threshold": 2.0, "cut": 0.2, "restore": 0.1,
            "min_fraction": 0.5, "min_requests": 20, "adjust_interval_ms": 200,
        });
        let breaker = json!({
            "failure_rate": 0.5, "min_calls": 20, "window_ms": 2_000, "open_ms": 1_000,
            "half_open_probes": 2, "probe_timeout_ms": 2_000,
        });
        let api_keys: BTreeMap<String, &str> = self.keys().into_iter().map(|k| (k, PLAN)).collect();
        let concurrency = self.concurrency.iter().map(|c| ("CONCURRENCY", c.clone()));
        let mut vars = vec![
            ("ADMISSION", admission.to_string()),
            ("SLO", slo.to_string()),
            ("BREAKER", breaker.to_string()),
            ("CONTROL_REPORT_MS", CONTROL_REPORT_MS.to_string()),
            ("ORIGIN_TIMEOUT_MS", ORIGIN_TIMEOUT_MS.to_string()),
            (
                "CACHE_POLICY",
                json!({"routes": [{"prefix": "/api/", "mode": "bypass"}]}).to_string(),
            ),
            ("API_KEYS", json!(api_keys).to_string()),
        ];
        vars.extend(concurrency);
        vars
    }
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    let traffic = plan.traffic();
    let (front, addr) = bench.throttled(plan.throttle)?;
    let slowed = format!("http://{addr}");

    // The unloaded phase's requests straight to the slowed origin: what it gives without an edge.
    let unloaded = traffic.meta.iter().take_while(|m| m.phase == 0).count();
    step(&format!(
        "surge reference: the unloaded phase ({unloaded} requests) against the slowed origin \
         directly: {slowed}"
    ));
    let direct = bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &slowed).await;
        let requests: Arc<[Request]> = traffic.requests[..unloaded].into();
        let at = &traffic.at[..unloaded];
        let (samples, _) = load::open_loop(&client, &slowed, requests, at, "origin direct").await;
        Ok(Summary::of(&samples.samples, plan.phase))
    })?;

    let vars = plan.vars();
    let edge = bench.start_edge(&slowed, &vars)?;
    step(&format!(
        "surge: {} requests over {} s, open loop: {}",
        traffic.requests.len(),
        plan.phase.as_secs() * plan.phases().len() as u64,
        edge.url
    ));
    let (samples, lag, origin) = bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &edge.url).await;
        let priming = load::Shape {
            progress: false,
            ..bench.shape("priming")
        };
        load::closed_loop(&client, &edge.url, plan.priming(), priming).await;
        let before = front.counts();
        let (samples, lag) = load::open_loop(
            &client,
            &edge.url,
            traffic.requests.clone(),
            &traffic.at,
            "surge scenario",
        )
        .await;
        let after = front.counts();
        let origin = Counts {
            received: after.received - before.received,
            served: after.served - before.served,
            abandoned: after.abandoned - before.abandoned,
        };
        Ok((samples, lag, origin))
    })?;
    drop(edge);
    let measured = Measured {
        direct,
        meta: &traffic.meta,
        samples: &samples.samples,
        lag,
        origin,
    };
    Ok(tables::section(plan, &vars, &measured))
}

/// What the scenario measured.
struct Measured<'a> {
    /// The unloaded phase straight to the slowed origin.
    direct: Summary,
    meta: &'a [Meta],
    samples: &'a [Sample],
    /// How late the load generator's latest send was.
    lag: Duration,
    /// The slowed origin's counts over the timed phases.
    origin: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            throttle: Throttle {
                delay: Duration::from_millis(30),
                concurrency: 8,
            },
            rate: 200.0,
            factor: 3.0,
            phase: Duration::from_secs(10),
            principals: 4,
            concurrency: None,
            products: 100,
            list_pages: 10,
            seed: 5,
        }
    }

    #[test]
    fn the_surge_phase_offers_its_multiple_on_both_routes() {
        let t = plan().traffic();
        let count = |phase, route| {
            t.meta
                .iter()
                .filter(|m| m.phase == phase && m.route == route)
                .count() as f64
        };
        for route in [Route::High, Route::Low] {
            // 1,000 expected per route in an unloaded phase, 3,000 in the surge.
            assert!((900.0..1100.0).contains(&count(0, route)));
            assert!((2_800.0..3_200.0).contains(&count(1, route)));
            assert!((900.0..1100.0).contains(&count(2, route)));
        }
        assert!(t.at.windows(2).all(|w| w[0] <= w[1]));
        assert!(t.requests.iter().all(|r| r.headers.len() == 1));
    }

    #[test]
    fn quotas_admit_the_unloaded_share_but_not_the_surge() {
        let p = plan();
        let (limit, burst) = p.quota();
        let share = p.rate / (2 * p.principals) as f64;
        assert!(f64::from(limit) > share && f64::from(limit) < share * p.factor);
        assert_eq!((limit, burst), (40, 40));
    }

    #[test]
    fn the_edge_accepts_the_vars() {
        let mut vars: BTreeMap<&str, String> = plan().vars().into_iter().collect();
        vars.insert("ORIGIN_URL", "http://127.0.0.1:1".into());
        let json = |name| vars.get(name).map(|v| serde_json::from_str(v).unwrap());
        let config = breakwater_core::config::EdgeConfig::from_vars(|n| vars.get(n).cloned())
            .unwrap()
            .with_cache_policy(json("CACHE_POLICY"))
            .unwrap()
            .with_admission(json("ADMISSION"), json("SLO"), json("BREAKER"))
            .unwrap();
        let admission = &config.admission;
        let priority = |path| admission.route(path).map(|r| r.priority.as_str());
        assert_eq!(priority("/api/products/7"), Some("high"));
        assert_eq!(priority("/api/products"), Some("low"));
        assert_eq!(admission.plans[PLAN][0].limit, 40);
        assert_eq!(
            config.origin_timeout,
            Duration::from_millis(ORIGIN_TIMEOUT_MS)
        );
        assert!(config.slo.adjust_interval_ms <= 200 && config.breaker.open_ms <= 1_000);
    }
}
