//! Histograms, merging, the wire form of a report's metrics, route labels and the exposition
//! format, checked by a small parser of the format rather than against fixed text.

use super::*;
use crate::breaker::{Phase, View};
use crate::control::Overview;
use crate::pool::HealthRecord;
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

fn config() -> EdgeConfig {
    EdgeConfig::from_vars(|name| match name {
        "ORIGIN_URL" => Some("http://origin".into()),
        "ORIGIN_PREFIXES" => Some("/api/,/internal/".into()),
        _ => None,
    })
    .unwrap()
    .with_admission(
        Some(json!({"routes": [
            {"prefix": "/api/products", "quotas": [{"name": "s", "limit": 1, "period": "1s"}]},
            {"prefix": "/api/auth/", "quotas": [{"name": "s", "limit": 1, "period": "1s"}]},
        ]})),
        None,
        None,
    )
    .unwrap()
    .with_cache_policy(Some(
        json!({"routes": [{"prefix": "/api/products/", "mode": "bypass"}]}),
    ))
    .unwrap()
    .with_idempotency(Some(
        json!({"routes": [{"prefix": "/api/orders", "required": true}]}),
    ))
    .unwrap()
}

#[test]
fn route_labels_are_the_longest_configured_prefix() {
    let config = config();
    for (path, assets, label) in [
        ("/api/products/7", false, "/api/products/"),
        ("/api/products", false, "/api/products"),
        ("/api/orders/9", false, "/api/orders"),
        ("/api/auth/login", false, "/api/auth/"),
        ("/api/cart", false, "/api/"),
        ("/internal/events/batch", false, "/internal/"),
        ("/_breakwater/metrics", false, ADMIN_ROUTE),
        ("/css/app.3f2a.css", true, "assets"),
        ("/%2e%2e/etc", false, OTHER_ROUTE),
    ] {
        assert_eq!(route_label(&config, path, assets), label, "{path}");
    }
}

proptest! {
    /// Whatever the path, the label is one of a fixed few: a client cannot make new series.
    #[test]
    fn route_labels_come_from_a_bounded_set(path in "\\PC{0,40}", assets: bool) {
        let config = config();
        let allowed = [
            "/api/products/", "/api/products", "/api/orders", "/api/auth/", "/api/",
            "/internal/", ADMIN_ROUTE, "assets", OTHER_ROUTE,
        ];
        prop_assert!(allowed.contains(&route_label(&config, &path, assets)));
    }

    /// Each observation lands in exactly one bucket, the first whose bound is not below it.
    #[test]
    fn an_observation_lands_in_the_first_bucket_that_holds_it(ms in 0u64..20_000) {
        let mut h = Histogram::default();
        h.observe(ms);
        let cumulative: Vec<(&str, u64)> = h.cumulative().collect();
        prop_assert_eq!(cumulative.len(), BOUNDS_MS.len() + 1);
        for (i, (_, n)) in cumulative.iter().enumerate() {
            let holds = BOUNDS_MS.get(i).is_none_or(|&bound| ms <= bound);
            prop_assert_eq!(*n, u64::from(holds), "bucket {} for {} ms", i, ms);
        }
        prop_assert_eq!((h.count(), h.sum_ms), (1, ms));
    }

    /// Summing reports in any grouping (isolates into shards into the root) counts the same.
    #[test]
    fn merging_is_grouping_independent(
        events in prop::collection::vec((0u8..5, 0u16..3, 0u64..3_000), 0..120),
        split in 0usize..120,
    ) {
        let record = |m: &mut Metrics, (kind, n, ms): (u8, u16, u64)| match kind {
            0 => m.count_request(["/api/", "assets"][usize::from(n % 2)], 200 + n, "memory"),
            1 => m.count_refusal(["rate-limited", "overloaded"][usize::from(n % 2)]),
            2 => m.observe_durable_object("CONTROL", "report", ms),
            3 => m.record_error(RecentError {
                at_ms: ms,
                request_id: format!("r{n}"),
                status: 503,
                route: "/api/".into(),
                problem: "overloaded".into(),
            }),
            _ => m.observe_origin(["http://a", "http://b"][usize::from(n % 2)], ms),
        };
        let mut whole = Metrics::default();
        events.iter().for_each(|e| record(&mut whole, *e));
        let (left, right) = events.split_at(split.min(events.len()));
        let (mut a, mut b) = (Metrics::default(), Metrics::default());
        left.iter().for_each(|e| record(&mut a, *e));
        right.iter().for_each(|e| record(&mut b, *e));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b;
        ba.merge(&a);
        prop_assert_eq!(&ab, &whole);
        prop_assert_eq!(&ba, &whole);
    }
}

#[test]
fn a_report_carries_its_metrics_as_json() {
    let mut m = Metrics::default();
    m.count_request("/api/", 200, "kv");
    m.count_request("/api/", 200, "kv");
    m.count_refusal("rate-limited");
    m.observe_durable_object("RATE_LIMITER", "check", 3);
    m.observe_origin("http://a", 40);
    let text = serde_json::to_string(&m).unwrap();
    let back: Metrics = serde_json::from_str(&text).unwrap();
    assert_eq!(back, m);
    // A report from before the metrics existed still reads, with none.
    let old: crate::control::Report = serde_json::from_value(
        json!({"requests": 3, "errors": 0, "would_shed": 0, "breakers": {}}),
    )
    .unwrap();
    assert_eq!(old.metrics, Metrics::default());
}

#[test]
fn only_the_latest_errors_are_kept() {
    let error = |at_ms| RecentError {
        at_ms,
        request_id: format!("r{at_ms}"),
        status: 502,
        route: "/api/".into(),
        problem: "origin-unreachable".into(),
    };
    let (mut old, mut new) = (Metrics::default(), Metrics::default());
    (0..40).for_each(|ms| old.record_error(error(ms)));
    (100..140).for_each(|ms| new.record_error(error(ms)));
    old.merge(&new);
    assert_eq!(old.recent_errors.len(), RECENT_ERRORS);
    assert_eq!(old.recent_errors.first().map(|e| e.at_ms), Some(30));
    assert_eq!(old.recent_errors.last().map(|e| e.at_ms), Some(139));
}

#[test]
fn histograms_from_a_build_with_more_buckets_keep_their_counts() {
    let mut mine = Histogram::default();
    mine.observe(1);
    let wider = Histogram {
        counts: vec![1; BOUNDS_MS.len() + 3],
        sum_ms: 10,
    };
    mine.merge(&wider);
    assert_eq!(mine.count(), 1 + wider.count());
    assert_eq!(mine.counts.len(), BOUNDS_MS.len() + 1);
}

/// One parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, String);

/// Parses the exposition as a scraper would, failing on any line the format does not allow:
/// every sample's family has `# TYPE` before it, and label values are quoted and escaped.
fn parse(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "two TYPEs: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap(), line)),
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name: {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
        samples.push((name.to_owned(), labels, value.to_owned()));
    }
    samples
}

fn parse_labels(mut rest: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars
                .next()
                .unwrap_or_else(|| panic!("unterminated: {line}"))
            {
                (_, '\\') => match chars.next().unwrap().1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}: {line}"),
                },
                (i, '"') => break i,
                (_, '\n') => panic!("raw line feed: {line}"),
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

fn overview(metrics: Metrics) -> Overview {
    Overview {
        since_ms: 1_700_000_000_123,
        now_ms: 1_700_000_060_000,
        metrics,
        fraction: 0.5,
        effective: 1.0,
        burn_short: Some(14.4),
        burn_long: None,
        shed: BTreeMap::new(),
        purge_epoch: 0,
        purges: Vec::new(),
        breakers: [(
            "http://a".to_owned(),
            View {
                phase: Phase::Open,
                open_until_ms: Some(1),
            },
        )]
        .into(),
        health: [(
            "http://b".to_owned(),
            HealthRecord {
                healthy: false,
                ..HealthRecord::default()
            },
        )]
        .into(),
    }
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<String> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v.clone())
}

#[test]
fn the_exposition_parses_and_says_what_was_counted() {
    let mut m = Metrics::default();
    for _ in 0..3 {
        m.count_request("/api/products", 200, "memory");
    }
    m.count_request("/api/", 503, NO_CACHE);
    m.count_request("/api/products", 200, "kv");
    m.count_refusal("rate-limited");
    for ms in [0, 3, 3, 70, 9_000, 60_000] {
        m.observe_origin("http://a", ms);
    }
    m.observe_durable_object("RATE_LIMITER", "check", 4);
    let samples = parse(&exposition(&overview(m)));
    let get = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);

    let products = [
        ("route", "/api/products"),
        ("status", "200"),
        ("cache", "memory"),
    ];
    assert_eq!(
        get("breakwater_requests_total", &products).as_deref(),
        Some("3")
    );
    assert_eq!(
        get("breakwater_cache_hits_total", &[("tier", "memory")]).as_deref(),
        Some("3")
    );
    assert_eq!(
        get("breakwater_cache_hits_total", &[("tier", "kv")]).as_deref(),
        Some("1")
    );
    assert_eq!(
        get("breakwater_refusals_total", &[("reason", "rate-limited")]).as_deref(),
        Some("1")
    );

    // Buckets are cumulative and end in +Inf, which equals the count.
    let origin = "breakwater_origin_request_duration_seconds";
    let bucket = |le| {
        get(
            &format!("{origin}_bucket"),
            &[("origin", "http://a"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.001").as_deref(), Some("1"));
    assert_eq!(bucket("0.005").as_deref(), Some("3"));
    assert_eq!(bucket("0.1").as_deref(), Some("4"));
    assert_eq!(bucket("10").as_deref(), Some("5"));
    assert_eq!(bucket("+Inf").as_deref(), Some("6"));
    assert_eq!(
        get(&format!("{origin}_count"), &[("origin", "http://a")]).as_deref(),
        Some("6")
    );
    assert_eq!(
        get(&format!("{origin}_sum"), &[("origin", "http://a")]).as_deref(),
        Some("69.076")
    );
    let mut previous = 0;
    for (name, labels, v) in &samples {
        if name == &format!("{origin}_bucket") && labels["origin"] == "http://a" {
            let v: u64 = v.parse().unwrap();
            assert!(v >= previous, "buckets decrease at le={}", labels["le"]);
            previous = v;
        }
    }

    assert_eq!(
        get("breakwater_admission_fraction", &[("kind", "computed")]).as_deref(),
        Some("0.5")
    );
    assert_eq!(
        get("breakwater_slo_burn_rate", &[("window", "short")]).as_deref(),
        Some("14.4")
    );
    assert_eq!(get("breakwater_slo_burn_rate", &[("window", "long")]), None);
    let state = |s| {
        get(
            "breakwater_breaker_state",
            &[("origin", "http://a"), ("state", s)],
        )
    };
    assert_eq!(
        (state("open").as_deref(), state("closed").as_deref()),
        (Some("1"), Some("0"))
    );
    assert_eq!(
        get("breakwater_origin_healthy", &[("origin", "http://b")]).as_deref(),
        Some("0")
    );
    assert_eq!(
        get("breakwater_metrics_start_time_seconds", &[]).as_deref(),
        Some("1700000000.123")
    );
}

#[test]
fn label_values_are_escaped() {
    let mut m = Metrics::default();
    let hostile = "http://a\"} 1\nfake_metric 2\\";
    m.observe_origin(hostile, 1);
    let text = exposition(&overview(m));
    let samples = parse(&text);
    assert!(
        !samples.iter().any(|(n, _, _)| n == "fake_metric"),
        "{text}"
    );
    let count = "breakwater_origin_request_duration_seconds_count";
    assert_eq!(
        value(&samples, count, &[("origin", hostile)]).as_deref(),
        Some("1")
    );
}
