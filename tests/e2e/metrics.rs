//! Edge metrics (`GET /_breakwater/metrics`, Prometheus text; `/_breakwater/overview`, JSON):
//! only with the admin token, and its counters move with traffic once the isolate's next report
//! reaches `CONTROL` (every `CONTROL_REPORT_MS`, 100 ms here): cache hits, a refusal, origin and
//! Durable Object call latency.

use crate::harness::{EDGE_ADMIN_TOKEN, Env};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 2] = [
    (
        "metrics::the_scrape_needs_the_admin_token",
        the_scrape_needs_the_admin_token,
    ),
    (
        "metrics::counts_move_with_traffic",
        counts_move_with_traffic,
    ),
];

const METRICS: &str = "/_breakwater/metrics";
/// A route of its own in the suite's admission policy: one request a minute per client.
const LIMITED: &str = "/api/limited/metrics";

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn the_scrape_needs_the_admin_token(env: &Env) -> Result<(), String> {
    let anonymous = env.get(METRICS, &[])?;
    check(anonymous.status == 401, || {
        format!("without a token: {} {}", anonymous.status, anonymous.text())
    })?;
    let wrong = env.get(METRICS, &[("authorization", "Bearer not-the-token")])?;
    check(wrong.status == 401, || {
        format!("wrong token: {}", wrong.status)
    })?;
    let scrape = scrape(env)?;
    check(
        scrape.sum("breakwater_metrics_start_time_seconds", |_| true) > 0.0,
        || "no start time".into(),
    )?;
    let auth = format!("Bearer {EDGE_ADMIN_TOKEN}");
    let overview = env.get("/_breakwater/overview", &[("authorization", &auth)])?;
    let json = overview.json()?;
    check(
        overview.status == 200 && json["metrics"]["requests"].is_array(),
        || format!("overview: {} {json}", overview.status),
    )
}

fn counts_move_with_traffic(env: &Env) -> Result<(), String> {
    let before = scrape(env)?;
    let hits = |s: &Scrape| s.sum("breakwater_cache_hits_total", |_| true);
    let api_200 = |s: &Scrape| {
        s.sum("breakwater_requests_total", |l| {
            l["status"] == "200" && l["route"].starts_with("/api/")
        })
    };
    let refused = |s: &Scrape| {
        s.sum("breakwater_refusals_total", |l| {
            l["reason"] == "rate-limited"
        })
    };
    let origin_calls =
        |s: &Scrape| s.sum("breakwater_origin_request_duration_seconds_count", |_| true);
    let limiter_calls = |s: &Scrape| {
        s.sum(
            "breakwater_durable_object_call_duration_seconds_count",
            |l| l["binding"] == "RATE_LIMITER",
        )
    };

    for _ in 0..10 {
        let r = env.get("/api/products/3", &[])?;
        check(r.status == 200, || format!("product: {}", r.status))?;
    }
    let statuses: Vec<u16> = (0..3)
        .map(|_| env.get(LIMITED, &[]).map(|r| r.status))
        .collect::<Result<_, _>>()?;
    check(statuses.contains(&429), || {
        format!("the limited route refused nothing: {statuses:?}")
    })?;

    // The counts arrive with the isolate's next report; each scrape is a request that can send it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let now = scrape(env)?;
        let arrived = api_200(&now) - api_200(&before) >= 10.0 && refused(&now) > refused(&before);
        if arrived {
            break now;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "counts did not arrive within 20 s: api 200s {} → {}, refusals {} → {}",
                api_200(&before),
                api_200(&now),
                refused(&before),
                refused(&now)
            ));
        }
        std::thread::park_timeout(Duration::from_millis(100));
    };
    // Ten reads of one product: at most the first missed the tiers.
    check(hits(&after) - hits(&before) >= 9.0, || {
        format!("cache hits {} → {}", hits(&before), hits(&after))
    })?;
    check(origin_calls(&after) > origin_calls(&before), || {
        "no origin call was timed".into()
    })?;
    check(limiter_calls(&after) > limiter_calls(&before), || {
        "no RATE_LIMITER call was timed".into()
    })?;
    after.histograms_are_cumulative()
}

/// One scrape, parsed: each sample as (name, labels, value).
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

fn scrape(env: &Env) -> Result<Scrape, String> {
    let auth = format!("Bearer {EDGE_ADMIN_TOKEN}");
    let r = env.get(METRICS, &[("authorization", &auth)])?;
    check(r.status == 200, || {
        format!("scrape: {} {}", r.status, r.text())
    })?;
    let content_type = r.header("content-type").unwrap_or_default();
    check(
        content_type.starts_with("text/plain; version=0.0.4"),
        || format!("content-type {content_type}"),
    )?;
    let text = r.text();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let bad = || format!("not a sample line: {line:?}");
        let (series, value) = line.rsplit_once(' ').ok_or_else(bad)?;
        let value: f64 = value.parse().map_err(|_| bad())?;
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').ok_or_else(bad)?;
                // The labels of these tests hold no quotes or commas, so a plain split serves.
                let labels = rest
                    .split("\",")
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").ok_or_else(bad)?;
                        Ok((k.to_owned(), v.trim_end_matches('"').to_owned()))
                    })
                    .collect::<Result<_, String>>()?;
                (name, labels)
            }
        };
        samples.push((name.to_owned(), labels, value));
    }
    Ok(Scrape(samples))
}

impl Scrape {
    /// The sum of `name`'s samples whose labels pass `filter`.
    fn sum(&self, name: &str, filter: impl Fn(&BTreeMap<String, String>) -> bool) -> f64 {
        self.0
            .iter()
            .filter(|(n, labels, _)| n == name && filter(labels))
            .map(|(_, _, v)| v)
            .sum()
    }

    /// Every histogram's buckets never decrease, and `+Inf` equals its `_count`.
    fn histograms_are_cumulative(&self) -> Result<(), String> {
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        for (name, labels, value) in &self.0 {
            let Some(family) = name.strip_suffix("_bucket") else {
                continue;
            };
            let mut series = labels.clone();
            let le = series.remove("le").unwrap_or_default();
            let key = format!("{family}{series:?}");
            let previous = last.insert(key.clone(), *value).unwrap_or(0.0);
            check(*value >= previous, || {
                format!("{key}: le={le} falls to {value}")
            })?;
            if le == "+Inf" {
                let count = self.sum(&format!("{family}_count"), |l| *l == series);
                check(count == *value, || {
                    format!("{key}: +Inf {value}, count {count}")
                })?;
            }
        }
        check(!last.is_empty(), || "no histogram in the scrape".into())
    }
}
