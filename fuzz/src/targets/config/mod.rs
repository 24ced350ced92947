//! `config`: every var the edge parses (`core/src/config/`, `core/src/policy.rs`,
//! `core/src/ratelimit/admission.rs`, `core/src/pool/config.rs`, `core/src/writebehind/config.rs`,
//! `core/src/access.rs`), through [`EdgeConfig::load`] with a fake [`Vars`], and each policy var
//! through its own parser as well, so a bad earlier var does not hide a later one.
//!
//! Input: the body is a JSON object of vars, as `wrangler.toml`'s `[vars]` hand them over:
//! strings for plain vars, objects (a table) or strings holding JSON (`--var NAME:<json>`) for
//! policy vars. `API_KEYS` is read as the secret.
//!
//! Asserts: an accepted configuration satisfies every documented limit (timeouts, sizes,
//! prefixes, TTL floors and ceilings, quotas, costs, weights, attempts, delays, names); the
//! admission policy's own rendering parses back to the same policy; each validated sub-config
//! still validates; and the values reach the code that uses them without a panic: a fresh bucket
//! admits one request of the route's cost and the `RateLimit` fields it reports are valid field
//! values, ejection periods and backoff delays stay within their bounds, a breaker driven to its
//! extremes answers retry times within its windows, the shedding controller's admission fraction
//! stays within `[min_fraction, 1]`, write-behind path patterns round-trip.

mod drive;
mod generate;
mod limits;

use breakwater_core::access;
use breakwater_core::config::{ConfigError, EdgeConfig, Secrets, Vars};
use breakwater_core::policy::CachePolicy;
use breakwater_core::pool::PoolConfig;
use breakwater_core::ratelimit::AdmissionPolicy;
use breakwater_core::writebehind::WriteBehindConfig;
use serde_json::{Map, Value};

use super::{Outcome, Target, ensure};
use crate::envelope::Envelope;
use drive::check_admission;
use generate::{DICTIONARY, generate};
use limits::{check_cache, check_config, check_pool, check_write_behind};

pub const TARGET: Target = Target {
    name: "config",
    about: "every var the edge parses (EdgeConfig::load with a fake Vars), and each policy var's \
            JSON on its own: CACHE_POLICY, ADMISSION, SLO, BREAKER, ORIGINS, CONCURRENCY, \
            IDEMPOTENCY_POLICY, WRITE_BEHIND, ACCESS_TOKENS, API_KEYS",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 8 * 1024,
};

/// The vars as the edge's environment would give them.
pub(super) struct FakeVars(Map<String, Value>);

impl Vars for FakeVars {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name)?.as_str().map(str::to_owned)
    }

    fn json(&self, name: &'static str) -> Result<Option<Value>, ConfigError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => {
                serde_json::from_str(text)
                    .map(Some)
                    .map_err(|e| ConfigError {
                        field: name,
                        reason: format!("is not valid JSON: {e}"),
                    })
            }
            Some(value) => Ok(Some(value.clone())),
        }
    }
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let Ok(Value::Object(vars)) = serde_json::from_slice::<Value>(&e.body) else {
        out.note("not-an-object");
        return Ok(out);
    };
    let vars = FakeVars(vars);
    let (_, warnings) = Secrets::parse(|name| vars.text(name));
    out.note_num(warnings.len() as u64);

    match EdgeConfig::load(&vars) {
        Ok(config) => {
            out.note("loaded");
            check_config(&config, &mut out)?;
        }
        Err(error) => {
            out.note(error.field);
            ensure!(
                !error.reason.is_empty(),
                "errors: name the reason",
                "{error:?}"
            );
        }
    }
    // Each policy var on its own, so one bad var does not hide the others.
    let json = |name| vars.json(name).ok().flatten();
    if let Some(raw) = json("CACHE_POLICY") {
        match CachePolicy::from_value(raw) {
            Ok(policy) => check_cache(&policy, &mut out)?,
            // The field, without the route's index and prefix: one label per kind of refusal.
            Err(error) => out.note(error.at.rsplit(')').next().unwrap_or_default()),
        }
    }
    if let Some(raw) = json("ADMISSION")
        && let Ok(policy) = AdmissionPolicy::from_value(raw)
    {
        check_admission(&policy, &mut out)?;
    }
    if let Some(raw) = json("ORIGINS")
        && let Ok(pool) = PoolConfig::from_value(raw)
    {
        check_pool(&pool, &mut out)?;
    }
    if let Some(raw) = json("WRITE_BEHIND")
        && let Ok(config) = WriteBehindConfig::from_value(raw)
    {
        check_write_behind(&config, &mut out)?;
    }
    if let Some(raw) = json("ACCESS_TOKENS") {
        match access::verifier_from_value(Some(raw)) {
            Ok(Some(verifier)) => {
                out.note("verifier");
                ensure!(
                    (1..=255).contains(&verifier.issuer().len())
                        && (1..=255).contains(&verifier.audience().len())
                        && verifier.leeway_secs() <= access::MAX_LEEWAY_SECS
                        && verifier.keys().next().is_some(),
                    "access tokens: issuer, audience, leeway and keys within their limits"
                );
            }
            Ok(None) => out.note("no-verifier"),
            Err((at, _)) => out.note(at.split('[').next().unwrap_or_default()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::generate::{POLICY_VARS, baseline};
    use super::*;
    use serde_json::json;

    fn seed(name: &str) -> FakeVars {
        let input = std::fs::read(crate::corpus::default_corpus().join("config").join(name))
            .expect("the seed exists");
        match serde_json::from_slice(&Envelope::parse(&input).body) {
            Ok(Value::Object(vars)) => FakeVars(vars),
            other => panic!("{name} is no object of vars: {other:?}"),
        }
    }

    #[test]
    fn the_wrangler_seeds_load() {
        for name in ["wrangler-vars", "vars-as-json-strings"] {
            let config = EdgeConfig::load(&seed(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(config.cache.routes.len(), 2, "{name}");
            assert_eq!(config.write_behind.routes.len(), 2, "{name}");
        }
    }

    #[test]
    fn the_baselines_parse() {
        for var in POLICY_VARS {
            let vars = FakeVars(Map::from_iter([
                ("ORIGIN_URL".to_owned(), json!("http://127.0.0.1:8080")),
                ((*var).to_owned(), baseline(var)),
            ]));
            assert!(
                EdgeConfig::load(&vars).is_ok(),
                "{var}: {:?}",
                EdgeConfig::load(&vars)
            );
        }
    }
}
