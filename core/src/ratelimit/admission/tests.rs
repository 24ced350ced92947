//! The admission policy: a valid policy and its defaults, and every bad field named.

use super::*;

fn parse(v: Value) -> Result<AdmissionPolicy, AdmissionError> {
    AdmissionPolicy::from_value(v)
}

fn example() -> Value {
    json!({
        "api_key_header": "X-API-Key",
        "routes": [
            {"prefix": "/api/login", "name": "login", "priority": "critical", "fail_open": false,
             "quotas": [{"name": "per-minute", "limit": 5, "period": "1m", "burst": 5}]},
            {"prefix": "/api/", "plan_quotas": true, "priority": "low", "cost": 2,
             "quotas": [
                 {"name": "per-second", "limit": 10, "period": 1, "burst": 20},
                 {"name": "per-day", "limit": 10000, "period": "1d"}
             ]}
        ],
        "plans": {
            "free": [{"name": "per-second", "limit": 5, "period": "1s", "burst": 10}],
            "pro": [{"name": "per-second", "limit": 3, "period": "333ms", "burst": 50}]
        }
    })
}

#[test]
fn a_valid_policy_parses_with_defaults_and_round_trips() {
    let policy = parse(example()).unwrap();
    assert_eq!(policy.api_key_header.as_deref(), Some("x-api-key"));
    assert!(!policy.trust_forwarded_for);
    let login = policy.route("/api/login/refresh").unwrap();
    assert_eq!(
        (
            login.name.as_str(),
            login.priority,
            login.fail_open,
            login.cost
        ),
        ("login", Priority::Critical, false, 1)
    );
    assert_eq!(login.quotas[0].period_ms, 60_000);
    let api = policy.route("/api/orders").unwrap();
    assert_eq!((api.name.as_str(), api.plan_quotas), ("/api/", true));
    assert_eq!(
        api.quotas[1],
        Quota {
            name: "per-day".into(),
            limit: 10_000,
            period_ms: 86_400_000,
            burst: 10_000
        },
        "burst defaults to the limit"
    );
    assert_eq!(api.quotas[0].period_ms, 1_000, "a bare number is seconds");
    assert_eq!(policy.plans["pro"][0].period_ms, 333);
    assert!(policy.route("/health").is_none());
    assert_eq!(parse(policy.to_value()).unwrap(), policy);

    let minimal = parse(json!({"routes": [{"prefix": "/"}]})).unwrap();
    let route = &minimal.routes[0];
    assert_eq!(
        (
            route.priority,
            route.fail_open,
            route.cost,
            route.quotas.len()
        ),
        (Priority::Normal, true, 1, 0)
    );
    assert_eq!(minimal.api_key_header, None);
    assert_eq!(parse(minimal.to_value()).unwrap(), minimal);
}

#[test]
fn every_bad_policy_names_its_field() {
    let with = |patch: fn(&mut Value)| {
        let mut v = example();
        patch(&mut v);
        v
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"routes": [], "colour": 1}), "", "colour"),
        (json!({}), "", "routes"),
        (json!({"routes": {}}), ".routes", "sequence"),
        (
            json!({"routes": [], "trust_forwarded_for": "yes"}),
            ".trust_forwarded_for",
            "bool",
        ),
        (
            with(|v| v["api_key_header"] = json!("x api key")),
            ".api_key_header",
            "header name",
        ),
        (
            with(|v| v["routes"][0]["prefix"] = json!("api")),
            ".routes[0] (\"api\").prefix",
            "'/'",
        ),
        (
            with(|v| v["routes"][1]["prefix"] = json!("/api/login/x")),
            ".routes[1] (\"/api/login/x\").prefix",
            "shadowed",
        ),
        (
            with(|v| v["routes"][1]["name"] = json!("login")),
            ".routes[1] (\"/api/\").name",
            "earlier route",
        ),
        (
            with(|v| v["routes"][1]["name"] = json!("caf\u{e9}")),
            ".routes[1] (\"/api/\").name",
            "printable",
        ),
        (
            with(|v| v["routes"][0]["priority"] = json!("urgent")),
            ".routes[0] (\"/api/login\").priority",
            "urgent",
        ),
        (
            with(|v| v["routes"][0]["fail_open"] = json!(0)),
            ".routes[0] (\"/api/login\").fail_open",
            "bool",
        ),
        (
            with(|v| v["routes"][0]["limit"] = json!(3)),
            ".routes[0] (\"/api/login\")",
            "unknown field `limit`",
        ),
        (
            with(|v| v["routes"][1]["cost"] = json!(0)),
            ".routes[1] (\"/api/\").cost",
            "at least 1",
        ),
        (
            with(|v| v["routes"][1]["cost"] = json!(11)),
            ".routes[1] (\"/api/\").cost",
            "plan \"free\" quota \"per-second\"",
        ),
        (
            with(|v| v["routes"][0]["cost"] = json!(6)),
            ".routes[0] (\"/api/login\").cost",
            "burst 5 of quota \"per-minute\"",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["period"] = json!("1w")),
            ".routes[1] (\"/api/\").quotas[1].period",
            "unit",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["period"] = json!("31d")),
            ".quotas[1].period",
            "30 days",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["period"] = json!(0)),
            ".quotas[1].period",
            "1 ms",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["period"] = json!(1.5)),
            ".quotas[1].period",
            "whole number",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["period"] = json!("ms")),
            ".quotas[1].period",
            "whole number",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["period"] = json!([1])),
            ".quotas[1].period",
            "neither",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["limit"] = json!(0)),
            ".quotas[1].limit",
            "at least 1",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["limit"] = json!(-1)),
            ".routes[1] (\"/api/\").quotas[1].limit",
            "u32",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["burst"] = json!(0)),
            ".quotas[1].burst",
            "at least 1",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["name"] = json!("per-second")),
            ".quotas[1].name",
            "twice",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["name"] = json!("")),
            ".quotas[1].name",
            "1 to 128",
        ),
        (
            with(|v| v["routes"][1]["quotas"][1]["per"] = json!(1)),
            ".quotas[1]",
            "unknown field `per`",
        ),
        (
            with(|v| {
                v["routes"][1]["quotas"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("limit");
            }),
            ".quotas[1]",
            "missing field `limit`",
        ),
        (
            with(|v| {
                v["routes"][1]["quotas"] =
                    Value::Array(vec![json!({"name": "a", "limit": 1, "period": 1}); 9])
            }),
            ".routes[1] (\"/api/\").quotas",
            "at most 8",
        ),
        (
            with(|v| v["plans"]["pro"][0]["period"] = json!("1y")),
            ".plans.pro[0].period",
            "unit",
        ),
        (
            with(|v| v["plans"] = json!({"": []})),
            ".plans.",
            "printable",
        ),
        (
            with(|v| v["plans"] = json!({})),
            ".routes[1] (\"/api/\").plan_quotas",
            "at least one plan",
        ),
        (
            with(|v| v["api_key_header"] = Value::Null),
            ".routes[1] (\"/api/\").plan_quotas",
            "api_key_header",
        ),
    ];
    for (policy, at, reason) in cases {
        let err = parse(policy.clone()).unwrap_err();
        assert!(
            err.at.ends_with(at) && err.reason.contains(reason),
            "{policy}\n  wanted {at}: …{reason}…\n  got {err}"
        );
        assert!(err.to_string().starts_with("ADMISSION"), "{err}");
    }
}

#[test]
fn periods() {
    let cases = [
        (json!(1), Ok(1_000)),
        (json!(2_592_000), Ok(MAX_PERIOD_MS)),
        (json!("1ms"), Ok(1)),
        (json!("250ms"), Ok(250)),
        (json!("90s"), Ok(90_000)),
        (json!("5m"), Ok(300_000)),
        (json!("1h"), Ok(3_600_000)),
        (json!("30d"), Ok(MAX_PERIOD_MS)),
        (json!(2_592_001), Err(())),
        (json!("0s"), Err(())),
        (json!("1 s"), Err(())),
        (json!("1S"), Err(())),
        (json!("-1s"), Err(())),
        (json!("99999999999999999999d"), Err(())),
        (json!(u64::MAX), Err(())),
        (json!(null), Err(())),
    ];
    for (value, want) in cases {
        assert_eq!(period_ms(&value).map_err(|_| ()), want, "{value}");
    }
}

#[test]
fn priorities_order_most_important_first() {
    let all = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    for p in all {
        assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
    }
}
