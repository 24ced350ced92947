//! `wrangler.toml` itself is checked: its `[vars]` must parse into a valid edge configuration,
//! through the same [`EdgeConfig::load`] a deployment runs, and every binding the architecture
//! names must be declared, so a bad edit fails here, not at deploy.
#![cfg(not(target_arch = "wasm32"))]

use breakwater_core::config::{ConfigError, EdgeConfig, Vars};
use breakwater_core::policy::CachePolicy;

fn wrangler() -> toml::Table {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml")).unwrap();
    text.parse().expect("wrangler.toml is valid TOML")
}

/// `[vars]` as wrangler hands them to the worker: strings as text, tables as objects.
struct WranglerVars(toml::Table);

impl Vars for WranglerVars {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name)?.as_str().map(str::to_owned)
    }

    fn json(&self, name: &'static str) -> Result<Option<serde_json::Value>, ConfigError> {
        let Some(value) = self.0.get(name) else {
            return Ok(None);
        };
        let reason = |e: &dyn std::fmt::Display| ConfigError {
            field: name,
            reason: e.to_string(),
        };
        match value.as_str() {
            Some(json) => serde_json::from_str(json).map(Some).map_err(|e| reason(&e)),
            None => serde_json::to_value(value)
                .map(Some)
                .map_err(|e| reason(&e)),
        }
    }
}

/// The configuration a deployment of `wrangler.toml` loads.
fn loaded() -> EdgeConfig {
    let vars = wrangler()["vars"].as_table().expect("[vars]").clone();
    EdgeConfig::load(&WranglerVars(vars)).unwrap_or_else(|e| panic!("wrangler.toml {e}"))
}

#[test]
fn vars_make_a_valid_edge_config() {
    let parsed = loaded();
    assert!(parsed.origin_prefixes.iter().any(|p| p == "/api/"));
    assert_eq!(parsed.origin_url, "http://127.0.0.1:8080");
}

#[test]
fn cache_policy_is_valid() {
    let policy: CachePolicy = loaded().cache;
    let products = policy
        .route("/api/products/1")
        .expect("products are cacheable");
    assert_ne!(products.mode, breakwater_core::policy::Mode::Bypass);
    assert_eq!(
        products.authenticated,
        breakwater_core::policy::Authenticated::Shared,
        "the public catalogue does not depend on the user"
    );
    assert!(
        policy
            .route("/api/cart")
            .is_some_and(|r| r.mode == breakwater_core::policy::Mode::Bypass)
    );
}

#[test]
fn admission_slo_and_breaker_are_valid() {
    let parsed = loaded();
    let products = parsed
        .admission
        .route("/api/products/1")
        .expect("product reads are limited");
    assert!(!products.quotas.is_empty());
    assert!(parsed.admission.route("/api/cart").is_some());
    let auth = parsed
        .admission
        .route("/api/auth/login")
        .expect("sign-in is limited");
    assert!(
        !auth.fail_open && auth.quotas.iter().any(|q| q.period_ms >= 3_600_000),
        "sign-in fails closed, with an hourly cap on guesses"
    );
    assert!(parsed.admission.plans.contains_key("pro"));
    assert!(!parsed.slo.shadow, "the committed SLO enforces shedding");
    assert!(
        parsed
            .idempotency
            .route("/api/orders")
            .is_some_and(|r| r.required && r.origin_dedupes),
        "orders require an Idempotency-Key, and the origin keeps its own record of it"
    );
}

#[test]
fn declares_every_binding_of_the_architecture() {
    let config = wrangler();
    let names = |key: &str, field: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut node = Some(&config[key.split('.').next().unwrap()]);
        for part in key.split('.').skip(1) {
            node = node.and_then(|n| n.get(part));
        }
        for item in node.and_then(|n| n.as_array()).into_iter().flatten() {
            out.push(item[field].as_str().unwrap().to_owned());
        }
        out
    };
    assert_eq!(config["assets"]["binding"].as_str(), Some("ASSETS"));
    assert_eq!(
        config["assets"]["run_worker_first"].as_bool(),
        Some(true),
        "the worker must decide what is served"
    );
    assert_eq!(names("kv_namespaces", "binding"), ["CACHE_KV"]);
    let objects = names("durable_objects.bindings", "name");
    for binding in ["RATE_LIMITER", "IDEMPOTENCY", "CONTROL"] {
        assert!(objects.iter().any(|o| o == binding), "{binding} missing");
    }
    let migrated: Vec<&str> = config["migrations"][0]["new_sqlite_classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for class in names("durable_objects.bindings", "class_name") {
        assert!(
            migrated.contains(&class.as_str()),
            "class {class} has no migration"
        );
    }
    assert_eq!(
        names("queues.producers", "binding"),
        ["EVENTS", "EVENTS_DLQ"]
    );
    let consumer = &config["queues"]["consumers"][0];
    assert!(
        consumer["dead_letter_queue"]
            .as_str()
            .is_some_and(|q| !q.is_empty()),
        "EVENTS needs a DLQ"
    );
    assert!(
        !config["triggers"]["crons"].as_array().unwrap().is_empty(),
        "no cron trigger"
    );
}

#[test]
fn write_behind_matches_its_queues() {
    let config = wrangler();
    let parsed = loaded().write_behind;
    for path in ["/api/products/1/views", "/api/products/1/votes"] {
        assert!(
            parsed.route("POST", path).is_some(),
            "{path} is not written behind"
        );
    }
    let queue_of = |binding: &str| -> String {
        config["queues"]["producers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["binding"].as_str() == Some(binding))
            .and_then(|p| p["queue"].as_str())
            .unwrap_or_else(|| panic!("no producer binding {binding}"))
            .to_owned()
    };
    let consumers = config["queues"]["consumers"].as_array().unwrap();
    let consumer = |queue: &str| {
        consumers
            .iter()
            .find(|c| c["queue"].as_str() == Some(queue))
            .unwrap_or_else(|| panic!("no consumer for {queue}"))
    };
    let events = consumer(&queue_of("EVENTS"));
    let dlq = queue_of("EVENTS_DLQ");
    assert_eq!(
        parsed.dead_letter_queue, dlq,
        "WRITE_BEHIND.dead_letter_queue"
    );
    assert_eq!(events["dead_letter_queue"].as_str(), Some(dlq.as_str()));
    // The consumer dead-letters on attempt max_attempts; the queue's own limit is a safety net
    // above it (it moves a message after max_retries + 1 deliveries).
    let max_retries = events["max_retries"].as_integer().expect("max_retries");
    assert!(
        max_retries >= i64::from(parsed.max_attempts),
        "max_retries {max_retries} must be at least WRITE_BEHIND.max_attempts {}",
        parsed.max_attempts
    );
    assert!(
        consumer(&dlq).get("dead_letter_queue").is_none(),
        "the DLQ has no DLQ of its own"
    );
}

#[test]
fn access_tokens_default_to_the_origins_issuer_and_audience() {
    let config = wrangler();
    let raw =
        serde_json::to_value(&config["vars"]["ACCESS_TOKENS"]).expect("TOML converts to JSON");
    // No keys are committed (they are the origin's, published at /.well-known/jwks.json): make
    // dev passes them with --var; here the rest of the table must be valid.
    let parsed = loaded();
    assert_eq!(parsed.access_tokens, None);
    let key = breakwater_core::token::Signer::from_seed(&[9; 32]).public_key();
    let mut with_keys = raw;
    with_keys["jwks"] = serde_json::to_value(breakwater_core::token::JwkSet::of([&key])).unwrap();
    let verifier = parsed
        .with_access_tokens(Some(with_keys))
        .unwrap()
        .access_tokens
        .expect("keys given");
    assert_eq!(
        (verifier.issuer(), verifier.audience()),
        ("breakwater-origin", "breakwater")
    );
}
