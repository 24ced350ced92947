//! The edge's configuration, parsed once from `wrangler.toml` `[vars]` into values that can only
//! be valid. A bad value fails with the variable's name and the reason.

use crate::access;
use crate::breaker::BreakerConfig;
use crate::concurrency::{LimitConfig, QueueConfig};
use crate::idempotency::{IdempotencyKey, KeyError, Policy as IdempotencyPolicy, parse_key};
use crate::policy::{CachePolicy, PolicyError};
use crate::pool::PoolConfig;
use crate::ratelimit::AdmissionPolicy;
use crate::shedding::SloConfig;
use crate::token::Verifier;
use crate::writebehind::WriteBehindConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod load;
pub use load::{Secrets, Vars};

/// Validated edge settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    /// Base URL of the origin, without a trailing slash (`http://127.0.0.1:8080`).
    pub origin_url: String,
    /// The origins every origin call (proxied requests, the cron trigger's warming, write-behind
    /// batches) is balanced over (`ORIGINS`); without it, `origin_url` alone.
    pub pool: PoolConfig,
    /// How long the edge waits for the origin's response head before answering `504`.
    pub origin_timeout: Duration,
    /// Path prefixes proxied to the origin; everything else is a static asset.
    pub origin_prefixes: Vec<String>,
    /// Per-route cache policy; empty (nothing cached) until [`EdgeConfig::with_cache_policy`].
    pub cache: CachePolicy,
    /// Bytes the isolate-memory tier may hold (0 turns the tier off).
    pub memory_tier_bytes: usize,
    /// How long an isolate trusts its copy of the purge log before asking `CONTROL` again: the
    /// longest a purge can take to reach an isolate that did not issue it.
    pub purge_sync: Duration,
    /// Paths (with query) the cron trigger keeps warm: refreshed before they expire.
    pub warm: Vec<String>,
    /// Admission control (`ADMISSION`): principals, per-route quotas and priorities. Empty
    /// (nothing limited) until [`EdgeConfig::with_admission`].
    pub admission: AdmissionPolicy,
    /// The SLO and the load-shedding controller's tuning (`SLO`).
    pub slo: SloConfig,
    /// The circuit breaker toward the origin (`BREAKER`).
    pub breaker: BreakerConfig,
    /// The adaptive concurrency limit in front of each origin (`CONCURRENCY`).
    pub concurrency: ConcurrencyConfig,
    /// How often an isolate reports its counts to `CONTROL` and learns the admission fraction
    /// and breaker state (`CONTROL_REPORT_MS`).
    pub control_report: Duration,
    /// Shard objects isolates report to and read the purge log from (`CONTROL_SHARDS`); 0: all
    /// go to the root `CONTROL` object (see [`crate::control::relay`]).
    pub control_shards: u64,
    /// `PANIC_PROBE = "on"` opens `POST /_breakwater/panic` (admin token required), which panics
    /// the isolate on purpose: for the tests of what a panic does. Never set in production.
    pub panic_probe: bool,
    /// Idempotency keys on unsafe requests (`IDEMPOTENCY_POLICY`).
    pub idempotency: IdempotencyConfig,
    /// Routes answered `202` and queued, and the queue consumer's delivery (`WRITE_BEHIND`).
    /// No routes (nothing written behind) until [`EdgeConfig::with_write_behind`].
    pub write_behind: WriteBehindConfig,
    /// Verifies `Authorization: Bearer` access tokens (`ACCESS_TOKENS`); `None` (absent, or no
    /// keys) leaves tokens unverified at the edge and their requests anonymous.
    pub access_tokens: Option<Verifier>,
}

/// `IDEMPOTENCY_POLICY`: which routes require an `Idempotency-Key`, and how long claims and answers
/// are kept. An unsafe request that carries a key is handled on every route; these routes make
/// it mandatory (`400` without) and may keep answers for another time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// `false` turns the edge's records off: keys then go to the origin, whose own unique
    /// (principal, key) rows still make writes safe ("origin-authoritative" mode, and the
    /// benchmark's baseline for what the edge records cost).
    pub enabled: bool,
    pub routes: Vec<IdempotencyRoute>,
    /// The defaults every route starts from.
    pub lease_ms: u64,
    pub retention_ms: u64,
    pub max_body_bytes: usize,
    /// The fewest characters a key may have, 16 (1 to 255): shorter keys (`1`, `order`) are
    /// refused with `400`, since two clients could pick the same one by chance.
    #[serde(default = "default_min_key_chars")]
    pub min_key_chars: usize,
}

fn default_min_key_chars() -> usize {
    16
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyRoute {
    pub prefix: String,
    #[serde(default)]
    pub required: bool,
    /// The origin keeps its own unique (principal, key) record for this route (as Breakwater's
    /// origin does for `/api/orders`), so when the `IDEMPOTENCY` object cannot be reached a keyed
    /// write goes ahead unrecorded at the edge and the origin keeps it exactly-once. Off (the
    /// default), such a write is refused with `503` and `Retry-After`, before anything is sent.
    #[serde(default)]
    pub origin_dedupes: bool,
    #[serde(default)]
    pub retention_ms: Option<u64>,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        let policy = IdempotencyPolicy::default();
        Self {
            enabled: true,
            routes: Vec::new(),
            lease_ms: policy.lease_ms,
            retention_ms: policy.retention_ms,
            max_body_bytes: policy.max_body_bytes,
            min_key_chars: default_min_key_chars(),
        }
    }
}

impl IdempotencyConfig {
    /// An `Idempotency-Key` field value parsed and held to `min_key_chars`.
    pub fn key(&self, raw: &str) -> Result<IdempotencyKey, KeyError> {
        parse_key(raw).and_then(|k| k.at_least(self.min_key_chars))
    }

    /// The route covering `path` (first prefix wins), if any.
    pub fn route(&self, path: &str) -> Option<&IdempotencyRoute> {
        self.routes.iter().find(|r| path.starts_with(&r.prefix))
    }

    /// The policy for `path`: the route's retention over the defaults.
    pub fn policy(&self, path: &str) -> IdempotencyPolicy {
        IdempotencyPolicy {
            lease_ms: self.lease_ms,
            retention_ms: self
                .route(path)
                .and_then(|r| r.retention_ms)
                .unwrap_or(self.retention_ms),
            max_body_bytes: self.max_body_bytes,
        }
    }

    fn validate(&self, origin_timeout: Duration) -> Result<(), String> {
        let timeout = origin_timeout.as_millis() as u64;
        if let Some(bad) = self.routes.iter().find(|r| !r.prefix.starts_with('/')) {
            return Err(format!("route prefix {:?} must start with '/'", bad.prefix));
        }
        if !(1..=crate::idempotency::MAX_KEY_CHARS).contains(&self.min_key_chars) {
            return Err(format!(
                "min_key_chars {} must be between 1 and {}",
                self.min_key_chars,
                crate::idempotency::MAX_KEY_CHARS
            ));
        }
        self.routes
            .iter()
            .map(|r| self.policy(&r.prefix))
            .chain([self.policy("")])
            .try_for_each(|policy| policy.validate(timeout))
    }
}

/// A configuration variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl From<PolicyError> for ConfigError {
    fn from(e: PolicyError) -> Self {
        Self::new(
            "CACHE_POLICY",
            format!(
                "{}{}{}",
                e.at.trim_start_matches('.'),
                if e.at.is_empty() { "" } else { ": " },
                e.reason
            ),
        )
    }
}

pub const DEFAULT_ORIGIN_TIMEOUT_MS: u64 = 10_000;
const MAX_ORIGIN_TIMEOUT_MS: u64 = 120_000;
/// Isolates get 128 MiB in all; a quarter leaves room for requests in flight and the wasm heap.
pub const DEFAULT_MEMORY_TIER_BYTES: u64 = 32 * 1024 * 1024;
const MAX_MEMORY_TIER_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_PURGE_SYNC_MS: u64 = 1_000;
const MAX_PURGE_SYNC_MS: u64 = 60_000;
pub const DEFAULT_CONTROL_REPORT_MS: u64 = 1_000;
const MAX_CONTROL_REPORT_MS: u64 = 60_000;
/// 32 shards keep every object under 1,000 requests/s up to about 15,000 isolates, and the root
/// at 64/s.
pub const DEFAULT_CONTROL_SHARDS: u64 = 32;
const MAX_CONTROL_SHARDS: u64 = 1_024;
/// Paths the cron trigger may warm in one run (each is one origin request at most).
const MAX_WARM_PATHS: usize = 50;

impl EdgeConfig {
    /// Reads every setting through `var` (a lookup into the worker's environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let origin_url = parse_origin_url(var("ORIGIN_URL"))?;
        let origin_timeout = Duration::from_millis(parse_number(
            "ORIGIN_TIMEOUT_MS",
            var("ORIGIN_TIMEOUT_MS"),
            DEFAULT_ORIGIN_TIMEOUT_MS,
            1..=MAX_ORIGIN_TIMEOUT_MS,
        )?);
        let memory_tier_bytes = parse_number(
            "CACHE_MEMORY_BYTES",
            var("CACHE_MEMORY_BYTES"),
            DEFAULT_MEMORY_TIER_BYTES,
            0..=MAX_MEMORY_TIER_BYTES,
        )? as usize;
        let purge_sync = Duration::from_millis(parse_number(
            "PURGE_SYNC_MS",
            var("PURGE_SYNC_MS"),
            DEFAULT_PURGE_SYNC_MS,
            0..=MAX_PURGE_SYNC_MS,
        )?);
        let warm = parse_warm(var("CACHE_WARM").as_deref().unwrap_or(""))?;
        let control_report = Duration::from_millis(parse_number(
            "CONTROL_REPORT_MS",
            var("CONTROL_REPORT_MS"),
            DEFAULT_CONTROL_REPORT_MS,
            10..=MAX_CONTROL_REPORT_MS,
        )?);
        let control_shards = parse_number(
            "CONTROL_SHARDS",
            var("CONTROL_SHARDS"),
            DEFAULT_CONTROL_SHARDS,
            0..=MAX_CONTROL_SHARDS,
        )?;
        let origin_prefixes = parse_prefixes(var("ORIGIN_PREFIXES").as_deref().unwrap_or("/api/"))?;
        let panic_probe = match var("PANIC_PROBE").as_deref() {
            None | Some("" | "off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "PANIC_PROBE",
                    format!("{other:?} must be \"on\" or \"off\""),
                ));
            }
        };
        Ok(Self {
            pool: PoolConfig::single(&origin_url),
            origin_url,
            origin_timeout,
            origin_prefixes,
            cache: CachePolicy::default(),
            memory_tier_bytes,
            purge_sync,
            warm,
            admission: AdmissionPolicy::default(),
            slo: SloConfig::default(),
            breaker: BreakerConfig::default(),
            concurrency: ConcurrencyConfig::default(),
            control_report,
            control_shards,
            panic_probe,
            idempotency: IdempotencyConfig::default(),
            write_behind: WriteBehindConfig::default(),
            access_tokens: None,
        })
    }

    /// Adds `CONCURRENCY` (a table, or JSON); absent → the defaults (off).
    pub fn with_concurrency(mut self, raw: Option<serde_json::Value>) -> Result<Self, ConfigError> {
        self.concurrency = overlay(
            "CONCURRENCY",
            ConcurrencyConfig::default(),
            raw,
            ConcurrencyConfig::validate,
        )?;
        Ok(self)
    }

    /// Adds `WRITE_BEHIND` (a table, or JSON); absent → nothing is written behind. A route on a
    /// path outside `ORIGIN_PREFIXES` is refused: it would never reach the stage.
    pub fn with_write_behind(
        mut self,
        raw: Option<serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        const FIELD: &str = "WRITE_BEHIND";
        let Some(raw) = raw else { return Ok(self) };
        let config =
            WriteBehindConfig::from_value(raw).map_err(|reason| ConfigError::new(FIELD, reason))?;
        for (i, route) in config.routes.iter().enumerate() {
            let path = route.path.to_string();
            if !self.origin_prefixes.iter().any(|p| path.starts_with(p)) {
                return Err(ConfigError::new(
                    FIELD,
                    format!("routes[{i}].path: {path:?} is outside ORIGIN_PREFIXES"),
                ));
            }
        }
        self.write_behind = config;
        Ok(self)
    }

    /// Adds `ORIGINS` (a table, or JSON): the origin pool, its ejection and health checks.
    /// Absent → the pool is `ORIGIN_URL` alone.
    pub fn with_origins(mut self, raw: Option<serde_json::Value>) -> Result<Self, ConfigError> {
        if let Some(raw) = raw {
            self.pool = PoolConfig::from_value(raw)
                .map_err(|reason| ConfigError::new("ORIGINS", reason))?;
        }
        Ok(self)
    }

    /// Adds `ACCESS_TOKENS` (a table, or JSON): the origin's issuer, audience, leeway and public
    /// keys. Absent or without keys → tokens are not verified at the edge.
    pub fn with_access_tokens(
        mut self,
        raw: Option<serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        self.access_tokens = access::verifier_from_value(raw).map_err(|(at, reason)| {
            let sep = if at.is_empty() { "" } else { ": " };
            ConfigError::new("ACCESS_TOKENS", format!("{at}{sep}{reason}"))
        })?;
        Ok(self)
    }

    /// Adds the admission control vars (`ADMISSION`, `SLO`, `BREAKER`; tables in
    /// `wrangler.toml`, JSON objects here). Absent ones keep their defaults: nothing limited,
    /// the default SLO and breaker.
    pub fn with_admission(
        mut self,
        admission: Option<serde_json::Value>,
        slo: Option<serde_json::Value>,
        breaker: Option<serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        if let Some(raw) = admission {
            self.admission = AdmissionPolicy::from_value(raw)
                .map_err(|e| ConfigError::new("ADMISSION", e.to_string()))?;
        }
        self.slo = overlay("SLO", SloConfig::default(), slo, SloConfig::validate)?;
        self.breaker = overlay(
            "BREAKER",
            BreakerConfig::default(),
            breaker,
            BreakerConfig::validate,
        )?;
        Ok(self)
    }

    /// Adds `IDEMPOTENCY_POLICY` (a table, or JSON; not `IDEMPOTENCY`, the Durable Object binding); absent → no route requires a key, default policy.
    pub fn with_idempotency(mut self, raw: Option<serde_json::Value>) -> Result<Self, ConfigError> {
        let timeout = self.origin_timeout;
        self.idempotency = overlay(
            "IDEMPOTENCY_POLICY",
            IdempotencyConfig::default(),
            raw,
            |c| c.validate(timeout),
        )?;
        Ok(self)
    }

    /// Adds the `CACHE_POLICY` object var (wrangler passes TOML tables as JSON objects). Without
    /// one, nothing is cached.
    pub fn with_cache_policy(
        mut self,
        raw: Option<serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        if let Some(raw) = raw {
            self.cache = CachePolicy::from_value(raw)?;
        }
        Ok(self)
    }
}

/// A whole number in `range`, or `default` when the variable is unset.
fn parse_number(
    field: &'static str,
    raw: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(field, format!("{raw:?} is not a whole number")))?;
    if !range.contains(&n) {
        return Err(ConfigError::new(
            field,
            format!("{n} is outside {}..={}", range.start(), range.end()),
        ));
    }
    Ok(n)
}

/// `CACHE_WARM`: whitespace-separated paths, each starting with `/`.
fn parse_warm(raw: &str) -> Result<Vec<String>, ConfigError> {
    let paths: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
        return Err(ConfigError::new(
            "CACHE_WARM",
            format!("{bad:?} must be a path starting with '/'"),
        ));
    }
    if paths.len() > MAX_WARM_PATHS {
        return Err(ConfigError::new(
            "CACHE_WARM",
            format!("lists {} paths; at most {MAX_WARM_PATHS}", paths.len()),
        ));
    }
    Ok(paths)
}

/// The adaptive concurrency limit in front of each origin ([`crate::concurrency`]): each isolate
/// keeps requests in flight to an origin within a limit learnt from its latency, lets the excess
/// wait briefly by priority, and refuses the rest with `503` and `Retry-After`. In JSON, missing
/// fields take their defaults and unknown ones are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// On: the limit applies. Off by default for now: the round trips it learns from include the
    /// isolate's own delays, and on a busy isolate in front of a fast origin it takes them for
    /// the origin queueing and refuses what the origin would have served (README § Admission).
    /// Off, requests go to the origin however many are in flight (the breaker and the SLO loop
    /// still apply).
    pub enabled: bool,
    /// The controller's tuning.
    pub limit: LimitConfig,
    /// The wait queues' tuning.
    pub queue: QueueConfig,
}

impl ConcurrencyConfig {
    /// The first field out of range, named (`limit.tolerance must be ...`).
    pub fn validate(&self) -> Result<(), String> {
        self.limit.validate().map_err(|e| format!("limit.{e}"))
    }
}

/// `defaults` with the fields `raw` (a JSON object) sets replaced; an unknown field, a wrong
/// type or a value `validate` refuses is an error naming `field`. Without `raw` the defaults are
/// validated all the same: whether they hold can depend on other vars (the idempotency lease
/// must outlast `ORIGIN_TIMEOUT_MS`).
#[expect(
    clippy::expect_used,
    reason = "a config struct of plain fields always serialises"
)]
fn overlay<T: Serialize + DeserializeOwned>(
    field: &'static str,
    defaults: T,
    raw: Option<serde_json::Value>,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let Some(raw) = raw else {
        validate(&defaults).map_err(|reason| ConfigError::new(field, reason))?;
        return Ok(defaults);
    };
    let mut merged = serde_json::to_value(defaults).expect("a config serialises");
    let (Some(target), Some(given)) = (merged.as_object_mut(), raw.as_object()) else {
        return Err(ConfigError::new(field, "must be a table (a JSON object)"));
    };
    for (key, value) in given {
        if !target.contains_key(key) {
            return Err(ConfigError::new(field, format!("unknown field {key:?}")));
        }
        target.insert(key.clone(), value.clone());
    }
    let parsed: T =
        serde_json::from_value(merged).map_err(|e| ConfigError::new(field, e.to_string()))?;
    validate(&parsed).map_err(|reason| ConfigError::new(field, reason))?;
    Ok(parsed)
}

fn parse_origin_url(raw: Option<String>) -> Result<String, ConfigError> {
    const FIELD: &str = "ORIGIN_URL";
    let raw = raw.ok_or_else(|| {
        ConfigError::new(
            FIELD,
            "is not set; point it at the origin, e.g. http://127.0.0.1:8080",
        )
    })?;
    crate::pool::parse_base_url(&raw).map_err(|reason| ConfigError::new(FIELD, reason))
}

fn parse_prefixes(raw: &str) -> Result<Vec<String>, ConfigError> {
    let prefixes: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if prefixes.is_empty() {
        return Err(ConfigError::new("ORIGIN_PREFIXES", "lists no prefixes"));
    }
    if let Some(bad) = prefixes
        .iter()
        .find(|p| !p.starts_with('/') || p.as_str() == "/")
    {
        return Err(ConfigError::new(
            "ORIGIN_PREFIXES",
            format!(
                "{bad:?} must start with '/' and not be '/' itself (that would hide the front end)"
            ),
        ));
    }
    Ok(prefixes)
}

#[cfg(test)]
mod tests;
