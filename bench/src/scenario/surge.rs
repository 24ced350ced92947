//! Overload against a slowed origin with admission on, in one of two [`Profile`]s: a surge (the
//! offered load × a factor) or a brownout (the origin's service time × a factor, load
//! unchanged). One fresh edge in front of a relay that gives the origin a fixed capacity
//! (service time × concurrency, FIFO queue); open-loop Poisson traffic from several API keys,
//! half on a high-priority route and half on a low-priority one, both uncached: an unloaded
//! phase at a rate the origin sustains, the surge or brownout, and the unloaded rate again
//! after, to see whether the controls let go. Per-key quotas, the SLO shedding controller and
//! the circuit breaker are tuned to react within seconds. Each run is checked against the
//! goals ([`goals`]).

mod goals;
mod tables;

pub use goals::summary;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{API_KEY_HEADER, Bench, step};
use crate::load::{self, Request};
use crate::plot::{self, Plot, Series};
use crate::report::Section;
use crate::stats::{Sample, Summary};
use crate::throttle::{Counts, Throttle, ThrottledProxy};
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
/// unloaded phase (and a brownout, at the same rate) is never limited, a surge (3× the share or
/// more) is, but what the quotas let through (1.6× the unloaded rate) is still more than the
/// origin can serve, so shedding has work too.
const QUOTA_HEADROOM: f64 = 1.6;

/// What happens in the middle phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// The offered rate × `factor`.
    Surge { factor: f64 },
    /// The origin's service time × `slowdown`, the offered rate unchanged.
    Brownout { slowdown: f64 },
}

/// How much slower the origin gets in a `brownout`.
const BROWNOUT_SLOWDOWN: f64 = 5.0;

impl Profile {
    /// `3x` (a surge at 3× the unloaded rate, any positive factor) or `brownout` (the origin 5×
    /// slower).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "brownout" {
            return Ok(Self::Brownout {
                slowdown: BROWNOUT_SLOWDOWN,
            });
        }
        match s.strip_suffix('x').map(str::parse::<f64>) {
            Some(Ok(factor)) if factor > 0.0 && factor.is_finite() => Ok(Self::Surge { factor }),
            _ => Err(format!(
                "{s:?}: a profile is `Nx` (a surge at N× the unloaded rate) or `brownout`"
            )),
        }
    }

    fn name(self) -> String {
        match self {
            Self::Surge { factor } => format!("{factor}× surge"),
            Self::Brownout { slowdown } => format!("brownout (origin {slowdown}× slower)"),
        }
    }

    fn is_brownout(self) -> bool {
        matches!(self, Self::Brownout { .. })
    }

    /// The middle phase's offered rate as a multiple of the unloaded one.
    fn load(self) -> f64 {
        match self {
            Self::Surge { factor } => factor,
            Self::Brownout { .. } => 1.0,
        }
    }

    /// The middle phase's service time as a multiple of the unloaded one.
    fn slowdown(self) -> f64 {
        match self {
            Self::Surge { .. } => 1.0,
            Self::Brownout { slowdown } => slowdown,
        }
    }
}

/// What to run.
#[derive(Clone)]
pub struct Plan {
    pub throttle: Throttle,
    /// Requests per second offered in the unloaded phase (and after the middle one).
    pub rate: f64,
    pub profile: Profile,
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
        let middle = if self.profile.is_brownout() {
            "brownout"
        } else {
            "surge"
        };
        [
            ("unloaded", 1.0),
            (middle, self.profile.load()),
            ("after", 1.0),
        ]
    }

    /// The `CONCURRENCY` setting, as the report names it.
    fn setting(&self) -> String {
        self.concurrency
            .as_ref()
            .map_or("shipped".into(), |c| format!("`{c}`"))
    }

    /// The origin as the middle phase has it.
    fn middle(&self) -> Throttle {
        Throttle {
            delay: self.throttle.delay.mul_f64(self.profile.slowdown()),
            ..self.throttle
        }
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

/// One run: its section of the report, and its goals for the summary.
pub fn run(bench: &Bench, plan: &Plan) -> Result<(Section, goals::Verdicts), String> {
    let traffic = plan.traffic();
    let (front, addr) = bench.throttled(plan.throttle)?;
    let slowed = format!("http://{addr}");

    // The unloaded phase's requests straight to the slowed origin: what it gives without an edge.
    step(&format!(
        "surge reference: the unloaded phase against the slowed origin directly: {slowed}"
    ));
    let direct = unloaded_directly(bench, &slowed, &traffic, plan.phase)?;
    // A brownout's own unloaded latency: the slower origin at the same utilisation, directly.
    let direct_middle = if plan.profile.is_brownout() {
        let slowdown = plan.profile.slowdown();
        step(&format!(
            "brownout reference: the slower origin ({} ms) directly, at 1/{slowdown} of the rate",
            plan.middle().delay.as_millis()
        ));
        front.set_delay(plan.middle().delay);
        let lighter = Plan {
            rate: plan.rate / slowdown,
            ..plan.clone()
        };
        let summary = unloaded_directly(bench, &slowed, &lighter.traffic(), plan.phase)?;
        front.set_delay(plan.throttle.delay);
        Some(summary)
    } else {
        None
    };

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
        let brownout = plan
            .profile
            .is_brownout()
            .then(|| tokio::spawn(brown_out(front.clone(), plan.clone())));
        let (samples, lag) = load::open_loop(
            &client,
            &edge.url,
            traffic.requests.clone(),
            &traffic.at,
            "surge scenario",
        )
        .await;
        if let Some(task) = brownout {
            task.abort();
            front.set_delay(plan.throttle.delay);
        }
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
        direct_middle,
        meta: &traffic.meta,
        samples: &samples.samples,
        lag,
        origin,
    };
    let verdicts = goals::Verdicts::of(plan, &measured);
    let mut section = tables::section(plan, &vars, &measured, &verdicts);
    section.plots = plots(plan, &measured);
    Ok((section, verdicts))
}

/// Over time, one point a second by send time: served latency per route, and the answers.
fn plots(plan: &Plan, m: &Measured) -> Vec<Plot> {
    let marks: Vec<(f64, String)> = plan
        .phases()
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, (name, _))| (plan.phase.as_secs_f64() * i as f64, (*name).to_owned()))
        .collect();
    let lines = |x_label: &str| plot::Kind::Lines {
        x_label: x_label.to_owned(),
        marks: marks.clone(),
    };
    let sent = || m.samples.iter().zip(m.meta);
    let served = |s: &Sample| s.status.is_some_and(|c| (200..300).contains(&c));
    let latency = |route: Route, p: f64| {
        let points = sent()
            .filter(|(s, meta)| meta.route == route && served(s))
            .map(|(s, meta)| (meta.at, s.latency));
        plot::percentile_per_second(points, p)
    };
    let answers = |name: &str, keep: &dyn Fn(&Sample) -> bool| {
        let times = sent().filter(|(s, _)| keep(s)).map(|(_, meta)| meta.at);
        Series::new(name, plot::count_per_second(times))
    };
    vec![
        Plot {
            title: "Served latency over time (by send time)".into(),
            y_label: "ms".into(),
            kind: lines("seconds"),
            series: vec![
                Series::new("high p99", latency(Route::High, 99.0)),
                Series::new("low p99", latency(Route::Low, 99.0)),
                Series::new("high p50", latency(Route::High, 50.0)),
            ],
        },
        Plot {
            title: "Answers per second".into(),
            y_label: "requests".into(),
            kind: lines("seconds"),
            series: vec![
                answers("2xx", &served),
                answers("429", &|s| s.status == Some(429)),
                answers("503", &|s| s.status == Some(503)),
                answers("other", &|s| {
                    !served(s) && !matches!(s.status, Some(429 | 503))
                }),
            ],
        },
    ]
}

/// The phase's unloaded requests of `traffic` (its first phase) straight to `url`, after a
/// warm-up.
fn unloaded_directly(
    bench: &Bench,
    url: &str,
    traffic: &Traffic,
    phase: Duration,
) -> Result<Summary, String> {
    let n = traffic.meta.iter().take_while(|m| m.phase == 0).count();
    bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, url).await;
        let requests: Arc<[Request]> = traffic.requests[..n].into();
        let at = &traffic.at[..n];
        let (samples, _) = load::open_loop(&client, url, requests, at, "origin direct").await;
        Ok(Summary::of(&samples.samples, phase))
    })
}

/// The slower origin for the middle phase of the run that starts now: the load's schedule is
/// relative to its start, which is within microseconds of this task's.
async fn brown_out(front: ThrottledProxy, plan: Plan) {
    let start = tokio::time::Instant::now();
    tokio::time::sleep_until(start + plan.phase).await;
    front.set_delay(plan.middle().delay);
    tokio::time::sleep_until(start + 2 * plan.phase).await;
    front.set_delay(plan.throttle.delay);
}

/// What the scenario measured.
struct Measured<'a> {
    /// The unloaded phase straight to the slowed origin.
    direct: Summary,
    /// In a brownout, the slower origin straight, at the same utilisation.
    direct_middle: Option<Summary>,
    meta: &'a [Meta],
    samples: &'a [Sample],
    /// How late the load generator's latest send was.
    lag: Duration,
    /// The slowed origin's counts over the timed phases.
    origin: Counts,
}

impl Measured<'_> {
    /// Phase `phase`'s requests, of one route or both, as a summary over `wall`.
    fn summary(&self, phase: usize, route: Option<Route>, wall: Duration) -> Summary {
        let samples = self
            .samples
            .iter()
            .zip(self.meta)
            .filter(|(_, meta)| meta.phase == phase && route.is_none_or(|r| r == meta.route));
        Summary::of(samples.map(|(s, _)| s), wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn plan() -> Plan {
        Plan {
            throttle: Throttle {
                delay: Duration::from_millis(30),
                concurrency: 8,
            },
            rate: 200.0,
            profile: Profile::Surge { factor: 3.0 },
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
    fn profiles_parse_and_a_brownout_slows_only_the_middle_phase() {
        assert_eq!(Profile::parse("10x"), Ok(Profile::Surge { factor: 10.0 }));
        for bad in ["10", "x", "0x", "-1x", "infx", "brown"] {
            assert!(Profile::parse(bad).is_err(), "{bad}");
        }
        let brownout = Plan {
            profile: Profile::parse("brownout").unwrap(),
            ..plan()
        };
        assert_eq!(brownout.phases().map(|(_, x)| x), [1.0, 1.0, 1.0]);
        assert_eq!(brownout.middle().delay, Duration::from_millis(150));
        assert_eq!(plan().middle(), plan().throttle);
    }

    #[test]
    fn quotas_admit_the_unloaded_share_but_not_the_surge() {
        let p = plan();
        let (limit, burst) = p.quota();
        let share = p.rate / (2 * p.principals) as f64;
        assert!(f64::from(limit) > share && f64::from(limit) < share * p.profile.load());
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
