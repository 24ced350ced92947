//! `ORIGINS` (a `wrangler.toml` table, or JSON through `--var`): the origin pool, its passive
//! ejection, its active health checks and its retry budget. Parsed once; an error names the
//! field path (`origins[1].weight: ...`). Absent, the pool is the one `ORIGIN_URL`.

use super::retry::RetryConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Validated pool settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// At least one; urls are distinct.
    pub origins: Vec<OriginSpec>,
    pub ejection: EjectionConfig,
    pub health: HealthConfig,
    pub retry: RetryConfig,
}

/// One origin: a base URL (scheme and host[:port], no trailing slash) and its share of traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginSpec {
    pub url: String,
    /// 1..=100.
    pub weight: u32,
}

/// Passive ejection ([`super::Ejector`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EjectionConfig {
    /// Consecutive failures (`5xx`, no connection, timeout) that eject an origin.
    pub consecutive_failures: u32,
    /// The `n`th ejection in a row lasts `base_ejection_ms · 2^(n-1)`, at most `max_ejection_ms`.
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    /// At most this share of the pool (rounded down) is ever ejected; 0 turns ejection off.
    pub max_ejected_percent: u32,
}

impl Default for EjectionConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            base_ejection_ms: 5_000,
            max_ejection_ms: 60_000,
            max_ejected_percent: 50,
        }
    }
}

/// Active health checks (run from the cron trigger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Path on each origin answering `2xx` when it is healthy.
    pub path: String,
    /// Shortest time between two checks of an origin.
    pub interval_ms: u64,
    /// Consecutive passes that make an unhealthy origin healthy, and failures the other way.
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// A check not answered within this has failed.
    pub timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            path: "/health".to_owned(),
            interval_ms: 10_000,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            timeout_ms: 2_000,
        }
    }
}

const MAX_ORIGINS: usize = 16;
const MAX_WEIGHT: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    origins: Vec<Value>,
    #[serde(default)]
    ejection: Option<Value>,
    #[serde(default)]
    health: Option<Value>,
    #[serde(default)]
    retry: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    url: String,
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

impl PoolConfig {
    /// The pool of one origin, as `ORIGIN_URL` alone configures it.
    pub fn single(url: &str) -> Self {
        Self {
            origins: vec![OriginSpec {
                url: url.to_owned(),
                weight: 1,
            }],
            ejection: EjectionConfig::default(),
            health: HealthConfig::default(),
            retry: RetryConfig::default(),
        }
    }

    /// Parses the `ORIGINS` value; the error is `field path: reason`.
    pub fn from_value(raw: Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(raw).map_err(|e| e.to_string())?;
        if raw.origins.is_empty() {
            return Err("origins: lists no origins".into());
        }
        if raw.origins.len() > MAX_ORIGINS {
            return Err(format!(
                "origins: lists {}; at most {MAX_ORIGINS}",
                raw.origins.len()
            ));
        }
        let mut origins: Vec<OriginSpec> = Vec::with_capacity(raw.origins.len());
        for (i, value) in raw.origins.into_iter().enumerate() {
            let at = format!("origins[{i}]");
            let o: RawOrigin = serde_json::from_value(value).map_err(|e| format!("{at}: {e}"))?;
            let url = super::parse_base_url(&o.url).map_err(|e| format!("{at}.url: {e}"))?;
            if !(1..=MAX_WEIGHT).contains(&o.weight) {
                return Err(format!(
                    "{at}.weight: {} is outside 1..={MAX_WEIGHT}",
                    o.weight
                ));
            }
            if origins.iter().any(|x| x.url == url) {
                return Err(format!("{at}.url: {url:?} is listed twice"));
            }
            origins.push(OriginSpec {
                url,
                weight: o.weight,
            });
        }
        let ejection: EjectionConfig = overlay("ejection", raw.ejection)?;
        ejection.validate().map_err(|e| format!("ejection.{e}"))?;
        let health: HealthConfig = overlay("health", raw.health)?;
        health.validate().map_err(|e| format!("health.{e}"))?;
        let retry: RetryConfig = overlay("retry", raw.retry)?;
        retry.validate().map_err(|e| format!("retry.{e}"))?;
        Ok(Self {
            origins,
            ejection,
            health,
            retry,
        })
    }
}

/// The defaults with the fields `raw` sets replaced.
#[expect(
    clippy::expect_used,
    reason = "a config struct of plain fields always serialises"
)]
fn overlay<T: Default + Serialize + serde::de::DeserializeOwned>(
    at: &str,
    raw: Option<Value>,
) -> Result<T, String> {
    let Some(raw) = raw else {
        return Ok(T::default());
    };
    let mut merged = serde_json::to_value(T::default()).expect("a config serialises");
    let (Some(target), Some(given)) = (merged.as_object_mut(), raw.as_object()) else {
        return Err(format!("{at}: must be a table (a JSON object)"));
    };
    for (key, value) in given {
        if !target.contains_key(key) {
            return Err(format!("{at}: unknown field {key:?}"));
        }
        target.insert(key.clone(), value.clone());
    }
    serde_json::from_value(merged).map_err(|e| format!("{at}: {e}"))
}

impl EjectionConfig {
    fn validate(&self) -> Result<(), String> {
        if self.consecutive_failures == 0 {
            return Err("consecutive_failures: must be at least 1".into());
        }
        if self.base_ejection_ms == 0 {
            return Err("base_ejection_ms: must be at least 1".into());
        }
        if self.max_ejection_ms < self.base_ejection_ms {
            return Err("max_ejection_ms: must be at least base_ejection_ms".into());
        }
        if self.max_ejected_percent > 100 {
            return Err("max_ejected_percent: must be in 0..=100".into());
        }
        Ok(())
    }
}

impl HealthConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path: {:?} must start with '/'", self.path));
        }
        if self.interval_ms == 0 {
            return Err("interval_ms: must be at least 1".into());
        }
        if self.healthy_threshold == 0 {
            return Err("healthy_threshold: must be at least 1".into());
        }
        if self.unhealthy_threshold == 0 {
            return Err("unhealthy_threshold: must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms: must be at least 1".into());
        }
        Ok(())
    }
}
