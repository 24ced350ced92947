//! The `config` target's inputs: the vars `wrangler.toml` sets, perturbed.

use serde_json::{Map, Value, json};

use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

/// Var names and every field name the parsers know, for the generator and the mutator.
const KEYS: &[&str] = &[
    "routes",
    "prefix",
    "mode",
    "ttl",
    "floor",
    "ceiling",
    "stale_while_revalidate",
    "stale_if_error",
    "tiers",
    "key",
    "sort_query",
    "drop_params",
    "headers",
    "authenticated",
    "forward",
    "bypass_cookie",
    "error_ttl_ceiling",
    "api_key_header",
    "trust_forwarded_for",
    "plans",
    "name",
    "quotas",
    "plan_quotas",
    "priority",
    "fail_open",
    "cost",
    "limit",
    "period",
    "burst",
    "slo",
    "short_window_ms",
    "long_window_ms",
    "burn_threshold",
    "recover_threshold",
    "cut",
    "restore",
    "dwell_ms",
    "min_fraction",
    "min_requests",
    "adjust_interval_ms",
    "shadow",
    "failure_rate",
    "slow_rate",
    "slow_call_ms",
    "min_calls",
    "window_ms",
    "open_ms",
    "half_open_probes",
    "probe_timeout_ms",
    "origins",
    "url",
    "weight",
    "ejection",
    "consecutive_failures",
    "base_ejection_ms",
    "max_ejection_ms",
    "max_ejected_percent",
    "health",
    "path",
    "interval_ms",
    "healthy_threshold",
    "unhealthy_threshold",
    "timeout_ms",
    "retry",
    "budget_percent",
    "min_per_second",
    "enabled",
    "queue",
    "initial",
    "min",
    "max",
    "tolerance",
    "backoff",
    "no_load_window_ms",
    "queue_allowance",
    "max_wait_ms",
    "max_queued",
    "fallback_wait_ms",
    "min_wait_ms",
    "max_retry_after_ms",
    "lease_ms",
    "retention_ms",
    "max_body_bytes",
    "required",
    "max_event_bytes",
    "batch_path",
    "max_attempts",
    "retry_base_seconds",
    "retry_max_seconds",
    "dead_letter_queue",
    "method",
    "kind",
    "issuer",
    "audience",
    "leeway_seconds",
    "jwks",
    "keys",
    "kty",
    "crv",
    "x",
    "kid",
    "alg",
    "use",
];

const STRINGS: &[&str] = &[
    "/",
    "/api/",
    "/api/products",
    "/api/products/{id}/views",
    "/api/products/{id}/votes",
    "/api/{id}",
    "/{id}/{id}",
    "/api/orders",
    "honor",
    "force",
    "bypass",
    "memory",
    "cache_api",
    "kv",
    "shared",
    "high",
    "low",
    "critical",
    "normal",
    "1s",
    "1d",
    "500ms",
    "0s",
    "1w",
    "30d",
    "31d",
    "x-api-key",
    "utm_*",
    "*x",
    "POST",
    "GET",
    "view",
    "vote",
    "http://127.0.0.1:8080",
    "https://o.example/",
    "ftp://x",
    "http://",
    "breakwater-events-dlq",
    "Bad_Queue",
    "OKP",
    "Ed25519",
    "EdDSA",
    "sig",
    "authorization",
    "cookie",
    "accept-language",
    "",
];

pub(super) const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e308",
    "0.5",
    "\"routes\"",
    "\"prefix\"",
    "\"/api/\"",
    "\"quotas\"",
    "\"period\"",
    "\"burst\"",
    "\"cost\"",
    "\"ttl\"",
    "\"ceiling\"",
    "\"floor\"",
    "\"origins\"",
    "\"url\"",
    "\"weight\"",
    "\"{id}\"",
    "\"lease_ms\"",
    "\"max_attempts\"",
    "\"ORIGIN_URL\"",
    "\"CACHE_POLICY\"",
    "\"ADMISSION\"",
    "\"WRITE_BEHIND\"",
    "\\\"",
    "\\u0000",
    "ms\"",
    "d\"",
];

/// Plain vars and values near their limits.
const TEXT_VARS: &[(&str, &[&str])] = &[
    (
        "ORIGIN_URL",
        &[
            "http://127.0.0.1:8080",
            "https://o.example/",
            "http://a/b",
            "127.0.0.1",
            " http://x ",
        ],
    ),
    (
        "ORIGIN_TIMEOUT_MS",
        &["10000", "0", "1", "120000", "120001", "-5", " 7 ", "1e3"],
    ),
    (
        "ORIGIN_PREFIXES",
        &["/api/", "/api/, /x/", "/", "api", ",", "/a,,/b"],
    ),
    (
        "CACHE_MEMORY_BYTES",
        &["0", "67108864", "67108865", "18446744073709551616"],
    ),
    ("PURGE_SYNC_MS", &["0", "60000", "60001"]),
    (
        "CACHE_WARM",
        &[
            "/api/products?page=1 /api/products?page=2",
            "x",
            "/a\t/b",
            "",
        ],
    ),
    ("CONTROL_REPORT_MS", &["9", "10", "60000", "60001"]),
    ("CONTROL_SHARDS", &["0", "1024", "1025"]),
];

/// A valid value of each policy var, as `wrangler.toml` has it: the generator starts from these
/// and perturbs them, so most inputs reach the deepest checks.
pub(super) fn baseline(var: &str) -> Value {
    match var {
        "CACHE_POLICY" => json!({"routes": [
            {"prefix": "/api/products", "mode": "honor", "ttl": {"floor": 0, "ceiling": 3600},
             "stale_while_revalidate": 30, "stale_if_error": 600,
             "tiers": ["memory", "cache_api", "kv"], "authenticated": "shared",
             "key": {"sort_query": true, "drop_params": ["utm_*", "fbclid"], "headers": []}},
            {"prefix": "/api/", "mode": "bypass"}]}),
        "ADMISSION" => json!({"api_key_header": "x-api-key", "trust_forwarded_for": false,
            "routes": [
                {"prefix": "/api/products", "priority": "high", "plan_quotas": true, "quotas": [
                    {"name": "per-second", "limit": 20, "period": "1s", "burst": 40},
                    {"name": "per-day", "limit": 100000, "period": "1d"}]},
                {"prefix": "/api/", "quotas": [{"name": "s", "limit": 10, "period": 1, "burst": 20}]}],
            "plans": {"pro": [{"name": "per-second", "limit": 200, "period": "1s", "burst": 400}]}}),
        "SLO" => json!({"slo": 0.999, "shadow": false}),
        "BREAKER" => json!({"failure_rate": 0.5, "min_calls": 20, "open_ms": 5000}),
        "IDEMPOTENCY_POLICY" => json!({"lease_ms": 30000, "retention_ms": 86400000,
            "max_body_bytes": 65536, "routes": [{"prefix": "/api/orders", "required": true}]}),
        "WRITE_BEHIND" => json!({"max_event_bytes": 1024, "batch_path": "/internal/events/batch",
            "max_attempts": 6, "retry_base_seconds": 2, "retry_max_seconds": 300,
            "dead_letter_queue": "breakwater-events-dlq", "routes": [
                {"method": "POST", "path": "/api/products/{id}/views", "kind": "view"},
                {"method": "POST", "path": "/api/products/{id}/votes", "kind": "vote"}]}),
        "ORIGINS" => json!({"origins": [{"url": "http://127.0.0.1:8080", "weight": 1},
                                        {"url": "http://127.0.0.1:8081", "weight": 3}],
            "ejection": {"consecutive_failures": 3, "base_ejection_ms": 5000,
                         "max_ejection_ms": 60000, "max_ejected_percent": 50},
            "health": {"path": "/health", "interval_ms": 10000, "timeout_ms": 2000},
            "retry": {"budget_percent": 20, "min_per_second": 5}}),
        "CONCURRENCY" => json!({"enabled": true, "limit": {"initial": 20, "min": 2, "max": 200}}),
        "ACCESS_TOKENS" => json!({"issuer": "breakwater-origin", "audience": "breakwater",
            "leeway_seconds": 30, "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "21fe31dfa154a261",
                "alg": "EdDSA", "use": "sig"}]}}),
        _ => Value::Null,
    }
}

pub(super) const POLICY_VARS: &[&str] = &[
    "CACHE_POLICY",
    "ADMISSION",
    "SLO",
    "BREAKER",
    "IDEMPOTENCY_POLICY",
    "WRITE_BEHIND",
    "ORIGINS",
    "CONCURRENCY",
    "ACCESS_TOKENS",
];

/// `value` with a few random changes: a member replaced, removed or added, an element dropped.
fn perturb(rng: &mut Rng, value: &mut Value, depth: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            match rng.below(6) {
                0 => {
                    map.remove(key);
                }
                1 => {
                    map.insert(key.clone(), draw::json(rng, KEYS, STRINGS, 2));
                }
                2 => {
                    map.insert(
                        pick(rng, KEYS).to_owned(),
                        draw::json(rng, KEYS, STRINGS, 1),
                    );
                }
                _ => {
                    if let Some(inner) = map.get_mut(key) {
                        perturb(rng, inner, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.below(items.len());
            match rng.below(4) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    items.push(copy);
                }
                _ => perturb(rng, &mut items[i], depth + 1),
            }
        }
        _ if depth > 0 || rng.one_in(2) => *value = draw::json(rng, KEYS, STRINGS, 1),
        _ => {}
    }
}

pub(super) fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut vars = Map::new();
    for (name, values) in TEXT_VARS {
        if rng.one_in(3) || (*name == "ORIGIN_URL" && !rng.one_in(10)) {
            let value = if rng.one_in(5) {
                draw::noise(rng, 12)
            } else {
                pick(rng, values).to_owned()
            };
            vars.insert((*name).to_owned(), Value::String(value));
        }
    }
    for name in POLICY_VARS {
        if !rng.one_in(2) {
            continue;
        }
        let mut value = baseline(name);
        for _ in 0..rng.below(4) {
            perturb(rng, &mut value, 0);
        }
        // `--var NAME:<json>` hands the var over as a string.
        let value = if rng.one_in(4) {
            Value::String(draw::json_text(rng, &value))
        } else {
            value
        };
        vars.insert((*name).to_owned(), value);
    }
    if rng.one_in(4) {
        let keys = json!({"k-1": "pro", "k-2": 7});
        vars.insert(
            "API_KEYS".into(),
            Value::String(draw::json_text(rng, &keys)),
        );
    }
    Envelope::new()
        .with_body(draw::json_text(rng, &Value::Object(vars)).into_bytes())
        .to_bytes()
}
