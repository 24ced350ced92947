//! `wrangler.toml` itself is checked: its `[vars]` must parse into a valid edge configuration,
//! through the same [`EdgeConfig::load`] a deployment runs, and every binding the architecture
//! names must be declared, so a bad edit fails here, not at deploy. Every deployment is checked:
//! the top level (`make dev`) and each `[env.*]` (staging, production), whose vars must not drift
//! from the top level's.
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

/// What an environment takes from the top level of `wrangler.toml`. Everything else these tests
/// read (vars, KV namespaces, Durable Object bindings, queues) wrangler does not carry over: an
/// environment declares its own or has none.
const INHERITED: [&str; 3] = ["assets", "triggers", "migrations"];

/// The environments that deploy (`wrangler deploy --env NAME`), each checked like the top level.
const ENVIRONMENTS: [&str; 2] = ["staging", "production"];

/// Each deployment `wrangler.toml` describes, named, as wrangler resolves it for the keys these
/// tests read: the top level (`make dev`, a plain `wrangler deploy`) and every `[env.*]`.
fn deployments() -> Vec<(String, toml::Table)> {
    let mut top = wrangler();
    let envs = top.remove("env").and_then(|e| e.as_table().cloned());
    let mut out = vec![("the top level".to_owned(), top.clone())];
    for (name, env) in envs.unwrap_or_default() {
        let mut env = env.as_table().expect("[env.NAME] is a table").clone();
        for key in INHERITED {
            if let Some(value) = top.get(key) {
                env.entry(key).or_insert_with(|| value.clone());
            }
        }
        out.push((format!("[env.{name}]"), env));
    }
    out
}

/// The configuration a deployment's `[vars]` load into.
fn loaded_from(name: &str, deployment: &toml::Table) -> EdgeConfig {
    let vars = deployment["vars"]
        .as_table()
        .unwrap_or_else(|| panic!("{name} has no [vars]"))
        .clone();
    EdgeConfig::load(&WranglerVars(vars)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The configuration the top level (what `make dev` runs) loads.
fn loaded() -> EdgeConfig {
    loaded_from("the top level", &deployments()[0].1)
}

#[test]
fn vars_make_a_valid_edge_config() {
    let parsed = loaded();
    assert!(parsed.origin_prefixes.iter().any(|p| p == "/api/"));
    assert_eq!(parsed.origin_url, "http://127.0.0.1:8080");
    let deployments = deployments();
    for env in ENVIRONMENTS {
        let name = format!("[env.{env}]");
        let (_, deployment) = deployments
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        let parsed = loaded_from(&name, deployment);
        assert!(
            parsed.origin_url.starts_with("https://"),
            "{name} reaches its origin over TLS, not {}",
            parsed.origin_url
        );
    }
}

/// The top-level vars an environment may set to its own value: where its origin is, and its own
/// dead-letter queue (queues are per account, so each environment has its own). Every other var
/// must equal the top level's, so what `make dev` and the tests exercise is what deploys.
const PER_ENVIRONMENT: [(&str, Option<&str>); 3] = [
    ("ORIGIN_URL", None),
    ("ORIGINS", None),
    ("WRITE_BEHIND", Some("dead_letter_queue")),
];

#[test]
fn environments_change_only_their_origin_and_queues() {
    let without_own = |vars: &toml::Table| {
        let mut vars = vars.clone();
        for (var, field) in PER_ENVIRONMENT {
            match field {
                None => drop(vars.remove(var)),
                Some(field) => {
                    if let Some(table) = vars.get_mut(var).and_then(|v| v.as_table_mut()) {
                        table.remove(field);
                    }
                }
            }
        }
        vars
    };
    let deployments = deployments();
    let (_, top) = &deployments[0];
    let top_vars = without_own(top["vars"].as_table().expect("[vars]"));
    let mut queues = Vec::new();
    let mut kv_ids = Vec::new();
    for (name, deployment) in &deployments {
        let vars = without_own(deployment["vars"].as_table().expect("vars"));
        for key in top_vars.keys().chain(vars.keys()) {
            assert_eq!(
                vars.get(key),
                top_vars.get(key),
                "{name} vars.{key} differs from the top level's"
            );
        }
        for producer in deployment["queues"]["producers"]
            .as_array()
            .expect("queues")
        {
            queues.push(producer["queue"].as_str().expect("queue name").to_owned());
        }
        kv_ids.push(
            deployment["kv_namespaces"][0]["id"]
                .as_str()
                .expect("KV id")
                .to_owned(),
        );
        if name.starts_with("[env.") {
            let secrets: Vec<&str> = deployment["secrets"]["required"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} lists no secrets.required"))
                .iter()
                .filter_map(|s| s.as_str())
                .collect();
            for secret in ["ADMIN_TOKEN", "EDGE_KEY", "ORIGIN_TOKEN"] {
                assert!(
                    secrets.contains(&secret),
                    "{name} does not require {secret}"
                );
            }
            assert!(
                deployment
                    .get("routes")
                    .is_some_and(|r| r.as_array().is_some_and(|r| !r.is_empty())),
                "{name} has no routes"
            );
        }
    }
    let distinct = |names: &[String]| {
        let mut sorted = names.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.len() == names.len()
    };
    assert!(distinct(&queues), "environments share a queue: {queues:?}");
    assert!(
        distinct(&kv_ids),
        "environments share a KV namespace: {kv_ids:?}"
    );
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
    for (name, config) in deployments() {
        declares_every_binding(&name, &config);
    }
}

fn declares_every_binding(name: &str, config: &toml::Table) {
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
        "{name}: the worker must decide what is served"
    );
    assert_eq!(names("kv_namespaces", "binding"), ["CACHE_KV"]);
    let objects = names("durable_objects.bindings", "name");
    for binding in ["RATE_LIMITER", "IDEMPOTENCY", "CONTROL"] {
        assert!(
            objects.iter().any(|o| o == binding),
            "{name}: {binding} missing"
        );
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
            "{name}: class {class} has no migration"
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
        "{name}: EVENTS needs a DLQ"
    );
    assert!(
        !config["triggers"]["crons"].as_array().unwrap().is_empty(),
        "{name}: no cron trigger"
    );
}

#[test]
fn write_behind_matches_its_queues() {
    for (name, config) in deployments() {
        write_behind_matches(&name, &config);
    }
}

fn write_behind_matches(name: &str, config: &toml::Table) {
    let parsed = loaded_from(name, config).write_behind;
    for path in ["/api/products/1/views", "/api/products/1/votes"] {
        assert!(
            parsed.route("POST", path).is_some(),
            "{name}: {path} is not written behind"
        );
    }
    let queue_of = |binding: &str| -> String {
        config["queues"]["producers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["binding"].as_str() == Some(binding))
            .and_then(|p| p["queue"].as_str())
            .unwrap_or_else(|| panic!("{name}: no producer binding {binding}"))
            .to_owned()
    };
    let consumers = config["queues"]["consumers"].as_array().unwrap();
    let consumer = |queue: &str| {
        consumers
            .iter()
            .find(|c| c["queue"].as_str() == Some(queue))
            .unwrap_or_else(|| panic!("{name}: no consumer for {queue}"))
    };
    let events = consumer(&queue_of("EVENTS"));
    let dlq = queue_of("EVENTS_DLQ");
    assert_eq!(
        parsed.dead_letter_queue, dlq,
        "{name}: WRITE_BEHIND.dead_letter_queue"
    );
    assert_eq!(events["dead_letter_queue"].as_str(), Some(dlq.as_str()));
    // The consumer dead-letters on attempt max_attempts; the queue's own limit is a safety net
    // above it (it moves a message after max_retries + 1 deliveries).
    let max_retries = events["max_retries"].as_integer().expect("max_retries");
    assert!(
        max_retries >= i64::from(parsed.max_attempts),
        "{name}: max_retries {max_retries} must be at least WRITE_BEHIND.max_attempts {}",
        parsed.max_attempts
    );
    assert!(
        consumer(&dlq).get("dead_letter_queue").is_none(),
        "{name}: the DLQ has no DLQ of its own"
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
