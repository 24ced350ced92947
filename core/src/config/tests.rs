//! Parsing `[vars]` into an [`EdgeConfig`]: every field, its default and its refusal.

use super::*;
use std::collections::HashMap;

fn parse(vars: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    EdgeConfig::from_vars(|k| map.get(k).cloned())
}

#[test]
fn defaults_fill_everything_but_the_origin() {
    let c = parse(&[("ORIGIN_URL", "http://127.0.0.1:8080/")]).unwrap();
    assert_eq!(c.origin_url, "http://127.0.0.1:8080");
    assert_eq!(
        c.origin_timeout,
        Duration::from_millis(DEFAULT_ORIGIN_TIMEOUT_MS)
    );
    assert_eq!(c.origin_prefixes, vec!["/api/".to_owned()]);
    assert_eq!(c.memory_tier_bytes as u64, DEFAULT_MEMORY_TIER_BYTES);
    assert_eq!(c.purge_sync, Duration::from_millis(DEFAULT_PURGE_SYNC_MS));
    assert_eq!(c.control_shards, DEFAULT_CONTROL_SHARDS);
    assert!(c.warm.is_empty());
    let unsharded = parse(&[("ORIGIN_URL", "http://x"), ("CONTROL_SHARDS", "0")]).unwrap();
    assert_eq!(unsharded.control_shards, 0);
}

#[test]
fn the_warm_list_is_whitespace_separated() {
    let c = parse(&[
        ("ORIGIN_URL", "http://x"),
        ("CACHE_WARM", " /api/products?page=1\n /api/products/1 "),
    ])
    .unwrap();
    assert_eq!(c.warm, ["/api/products?page=1", "/api/products/1"]);
}

#[test]
fn every_bad_value_names_its_field() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "ORIGIN_URL"),
        (&[("ORIGIN_URL", "ftp://x")], "ORIGIN_URL"),
        (&[("ORIGIN_URL", "http://")], "ORIGIN_URL"),
        (&[("ORIGIN_URL", "http://x/path")], "ORIGIN_URL"),
        (
            &[("ORIGIN_URL", "http://x"), ("ORIGIN_TIMEOUT_MS", "soon")],
            "ORIGIN_TIMEOUT_MS",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("ORIGIN_TIMEOUT_MS", "0")],
            "ORIGIN_TIMEOUT_MS",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("CACHE_MEMORY_BYTES", "lots")],
            "CACHE_MEMORY_BYTES",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("PURGE_SYNC_MS", "600000")],
            "PURGE_SYNC_MS",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("CONTROL_SHARDS", "5000")],
            "CONTROL_SHARDS",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("CACHE_WARM", "/a api/b")],
            "CACHE_WARM",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("ORIGIN_PREFIXES", "api")],
            "ORIGIN_PREFIXES",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("ORIGIN_PREFIXES", " , ")],
            "ORIGIN_PREFIXES",
        ),
        (
            &[("ORIGIN_URL", "http://x"), ("ORIGIN_PREFIXES", "/")],
            "ORIGIN_PREFIXES",
        ),
    ];
    for (vars, field) in cases {
        let err = parse(vars).unwrap_err();
        assert_eq!(err.field, *field, "{vars:?}");
        assert!(err.to_string().contains(field));
    }
}

#[test]
fn a_bad_cache_policy_is_a_config_error_naming_the_route() {
    let base = parse(&[("ORIGIN_URL", "http://x")]).unwrap();
    let bad = serde_json::json!({"routes": [{"prefix": "/a", "mode": "force"}]});
    let err = base.clone().with_cache_policy(Some(bad)).unwrap_err();
    assert_eq!(err.field, "CACHE_POLICY");
    assert!(
        err.reason.starts_with("routes[0] (\"/a\").ttl.ceiling: "),
        "{err}"
    );
    assert!(
        base.with_cache_policy(None)
            .unwrap()
            .cache
            .routes
            .is_empty()
    );
}

#[test]
fn admission_vars_overlay_the_defaults_and_name_their_field() {
    let base = parse(&[("ORIGIN_URL", "http://x")]).unwrap();
    let c = base
        .clone()
        .with_admission(None, Some(serde_json::json!({"slo": 0.99})), None)
        .unwrap();
    assert_eq!(c.slo.slo, 0.99);
    assert_eq!(c.slo.cut, SloConfig::default().cut);
    assert!(c.admission.routes.is_empty());
    for (slo, breaker, field) in [
        (Some(serde_json::json!({"sloo": 0.9})), None, "SLO"),
        (Some(serde_json::json!({"slo": 2.0})), None, "SLO"),
        (
            None,
            Some(serde_json::json!({"min_calls": "many"})),
            "BREAKER",
        ),
        (None, Some(serde_json::json!([1])), "BREAKER"),
    ] {
        let err = base.clone().with_admission(None, slo, breaker).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let err = base
        .with_admission(
            Some(serde_json::json!({"routes": [{"prefix": "x"}]})),
            None,
            None,
        )
        .unwrap_err();
    assert_eq!(err.field, "ADMISSION");
}

#[test]
fn idempotency_routes_require_keys_and_override_retention() {
    let base = parse(&[("ORIGIN_URL", "http://x")]).unwrap();
    let c = base
        .clone()
        .with_idempotency(Some(serde_json::json!({"routes": [
            {"prefix": "/api/orders", "required": true, "retention_ms": 3_600_000,
             "origin_dedupes": true},
            {"prefix": "/api/cart"}
        ]})))
        .unwrap();
    let orders = c.idempotency.route("/api/orders/1").unwrap();
    assert!(orders.required && orders.origin_dedupes);
    let cart = c.idempotency.route("/api/cart").unwrap();
    assert!(
        !cart.required && !cart.origin_dedupes,
        "neither unless said"
    );
    assert_eq!(c.idempotency.policy("/api/orders").retention_ms, 3_600_000);
    assert_eq!(
        c.idempotency.policy("/api/cart").retention_ms,
        24 * 3_600_000
    );
    assert_eq!(c.idempotency.min_key_chars, 16, "the default floor");
    let lax = base
        .clone()
        .with_idempotency(Some(serde_json::json!({"min_key_chars": 1})))
        .unwrap();
    assert_eq!(lax.idempotency.min_key_chars, 1);
    for bad in [
        serde_json::json!({"routes": [{"prefix": "api"}]}),
        serde_json::json!({"lease_ms": 1000}),
        serde_json::json!({"min_key_chars": 0}),
        serde_json::json!({"min_key_chars": 256}),
        serde_json::json!({"routes": [{"prefix": "/a", "needed": true}]}),
    ] {
        let err = base.clone().with_idempotency(Some(bad)).unwrap_err();
        assert_eq!(err.field, "IDEMPOTENCY_POLICY", "{err}");
    }
}

/// Found by the fuzzer (fuzz target `config`): without `IDEMPOTENCY_POLICY`, the default 30 s
/// lease was never checked against `ORIGIN_TIMEOUT_MS`, so a longer timeout let a retry take
/// over a live attempt's key.
#[test]
fn the_default_lease_must_outlast_the_origin_timeout_too() {
    // (ORIGIN_TIMEOUT_MS, IDEMPOTENCY_POLICY, accepted)
    let cases = [
        ("10000", None, true),
        ("29999", None, true),
        ("30000", None, false),
        ("120000", None, false),
        (
            "120000",
            Some(serde_json::json!({"lease_ms": 120_001})),
            true,
        ),
        (
            "120000",
            Some(serde_json::json!({"retention_ms": 5})),
            false,
        ),
    ];
    for (timeout, policy, accepted) in cases {
        let base = parse(&[("ORIGIN_URL", "http://x"), ("ORIGIN_TIMEOUT_MS", timeout)]).unwrap();
        let result = base.with_idempotency(policy.clone());
        assert_eq!(result.is_ok(), accepted, "{timeout} {policy:?}: {result:?}");
        if let Err(e) = result {
            assert_eq!(e.field, "IDEMPOTENCY_POLICY", "{e}");
        }
    }
}

#[test]
fn write_behind_routes_name_their_field_path() {
    let base = parse(&[("ORIGIN_URL", "http://x")]).unwrap();
    assert!(
        base.clone()
            .with_write_behind(None)
            .unwrap()
            .write_behind
            .routes
            .is_empty()
    );
    let route = |path: &str| {
        serde_json::json!({"routes": [
            {"method": "POST", "path": "/api/products/{id}/views", "kind": "view"},
            {"method": "POST", "path": path, "kind": "vote"}
        ]})
    };
    let c = base
        .clone()
        .with_write_behind(Some(route("/api/products/{id}/votes")))
        .unwrap();
    assert_eq!(c.write_behind.routes.len(), 2);
    for (raw, reason) in [
        (route("/api/products/votes"), "routes[1].path: "),
        (
            route("/other/{id}"),
            "routes[1].path: \"/other/{id}\" is outside ORIGIN_PREFIXES",
        ),
        (serde_json::json!({"max_attempts": 0}), "max_attempts: "),
    ] {
        let err = base.clone().with_write_behind(Some(raw)).unwrap_err();
        assert_eq!(err.field, "WRITE_BEHIND", "{err}");
        assert!(err.reason.starts_with(reason), "{err}");
    }
}

#[test]
fn several_prefixes() {
    let c = parse(&[
        ("ORIGIN_URL", "https://o.example"),
        ("ORIGIN_PREFIXES", "/api/, /auth/"),
    ])
    .unwrap();
    assert_eq!(c.origin_prefixes, vec!["/api/", "/auth/"]);
    assert_eq!(c.origin_url, "https://o.example");
}

#[test]
fn access_tokens_name_their_field_path() {
    let base = parse(&[("ORIGIN_URL", "http://o")]).unwrap();
    assert_eq!(base.access_tokens, None);
    let key = crate::token::Signer::from_seed(&[5; 32]).public_key();
    let jwks = serde_json::to_string(&crate::token::JwkSet::of([&key])).unwrap();
    let c = base
        .clone()
        .with_access_tokens(Some(serde_json::json!({ "jwks": jwks })))
        .unwrap();
    let verifier = c.access_tokens.expect("keys configured");
    assert_eq!(verifier.keys().collect::<Vec<_>>(), vec![&key]);
    let err = base
        .clone()
        .with_access_tokens(Some(
            serde_json::json!({ "jwks": {"keys": [{"kty": "OKP"}]} }),
        ))
        .unwrap_err();
    assert_eq!(err.field, "ACCESS_TOKENS");
    assert!(err.reason.starts_with("jwks.keys[0]: "), "{err}");
    let err = base
        .with_access_tokens(Some(serde_json::json!({ "leeway_seconds": 3600 })))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration variable ACCESS_TOKENS: leeway_seconds: 3600 exceeds 300"
    );
}

#[test]
fn origins_default_to_origin_url_and_name_their_field_path() {
    let base = parse(&[("ORIGIN_URL", "http://o:1")]).unwrap();
    assert_eq!(base.pool, PoolConfig::single("http://o:1"));
    let c = base
        .clone()
        .with_origins(Some(serde_json::json!({
            "origins": [{"url": "http://a", "weight": 2}, {"url": "http://b"}]
        })))
        .unwrap();
    assert_eq!(c.pool.origins.len(), 2);
    assert_eq!(c.origin_url, "http://o:1");
    let err = base
        .with_origins(Some(serde_json::json!({
            "origins": [{"url": "http://a"}, {"url": "http://b/x"}]
        })))
        .unwrap_err();
    assert_eq!(err.field, "ORIGINS");
    assert!(err.reason.starts_with("origins[1].url: "), "{err}");
}

#[test]
fn concurrency_is_off_by_default_and_names_its_bad_field() {
    let base = parse(&[("ORIGIN_URL", "http://o")]).unwrap();
    assert!(
        !base.concurrency.enabled,
        "off until it tells the isolate's delays apart"
    );
    let on = base
        .clone()
        .with_concurrency(Some(
            serde_json::json!({"enabled": true, "limit": {"initial": 5}}),
        ))
        .unwrap();
    assert!(on.concurrency.enabled);
    assert_eq!(on.concurrency.limit.initial, 5);
    assert_eq!(
        on.concurrency.limit.max, 1_000,
        "unnamed fields keep their defaults"
    );
    let cases = [
        (serde_json::json!({"enable": true}), "unknown field"),
        (
            serde_json::json!({"limit": {"tolerance": 1.0}}),
            "limit.tolerance",
        ),
    ];
    for (raw, named) in cases {
        let err = base
            .clone()
            .with_concurrency(Some(raw))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONCURRENCY") && err.contains(named), "{err}");
    }
}

#[test]
fn the_panic_probe_is_off_unless_said_on() {
    let base = [("ORIGIN_URL", "http://o")];
    assert!(!parse(&base).unwrap().panic_probe);
    for (value, on) in [("on", true), ("off", false), ("", false)] {
        let config = parse(&[base[0], ("PANIC_PROBE", value)]).unwrap();
        assert_eq!(config.panic_probe, on, "{value:?}");
    }
    let err = parse(&[base[0], ("PANIC_PROBE", "yes")]).unwrap_err();
    assert_eq!(err.field, "PANIC_PROBE", "{err}");
}
