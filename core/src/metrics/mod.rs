//! Edge metrics: what isolates count as they answer (requests by route, status and cache
//! outcome; refusals by reason; Durable Object and origin call latency), carried to `CONTROL` in
//! their reports ([`crate::control::Report`]), summed there ([`Metrics::merge`]) and rendered in
//! the Prometheus text format ([`exposition`]).
//!
//! Every label value comes from a bounded set: routes are the configuration's prefixes
//! ([`route_label`]), statuses are three digits, outcomes and reasons are the edge's own names,
//! origins and bindings are configured. Nothing a client sends becomes a label, so a hostile
//! client cannot grow the series without bound.

mod exposition;
#[cfg(test)]
mod tests;

pub use exposition::{CONTENT_TYPE, exposition};

use crate::config::EdgeConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Upper bounds of the latency histograms' buckets, in milliseconds (the last bucket, `+Inf`,
/// takes the rest).
pub const BOUNDS_MS: [u64; 13] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

/// [`BOUNDS_MS`] in seconds, as the exposition's `le` labels spell them.
const BOUNDS_LE: [&str; 13] = [
    "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10",
];

/// The cache outcome of an answer the cache stage did not touch.
pub const NO_CACHE: &str = "none";

/// The route label of paths under no configured prefix.
pub const OTHER_ROUTE: &str = "other";

/// The route label of the operator endpoints.
pub const ADMIN_ROUTE: &str = "/_breakwater/";

/// What one answer is counted under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestKey {
    /// [`route_label`] of the path.
    pub route: String,
    pub status: u16,
    /// The cache stage's outcome: the tier a hit came from (`memory`, `cache-api`, `kv`), or
    /// `collapsed`, `revalidated`, `stored`, `miss`, `bypass`; [`NO_CACHE`] when it did not run.
    pub cache: String,
}

/// A Durable Object call, by binding and command.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallKey {
    pub binding: String,
    pub command: String,
}

/// Latencies in [`BOUNDS_MS`] buckets, with their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations per bucket, not cumulative: `counts[i]` are those at most `BOUNDS_MS[i]` and
    /// above the bound before; the last entry, those above every bound. Empty until the first.
    pub counts: Vec<u64>,
    pub sum_ms: u64,
}

impl Histogram {
    /// Counts one call that took `ms`.
    pub fn observe(&mut self, ms: u64) {
        self.counts.resize(BOUNDS_MS.len() + 1, 0);
        let bucket = BOUNDS_MS.partition_point(|&bound| bound < ms);
        if let Some(n) = self.counts.get_mut(bucket) {
            *n += 1;
        }
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other`'s observations. Buckets past the known ones (a report from a build with more
    /// buckets) are counted in the last.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        self.counts.resize(BOUNDS_MS.len() + 1, 0);
        for (i, n) in other.counts.iter().enumerate() {
            let bucket = i.min(BOUNDS_MS.len());
            if let Some(mine) = self.counts.get_mut(bucket) {
                *mine = mine.saturating_add(*n);
            }
        }
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    /// The cumulative counts by `le` label, `+Inf` last, as the exposition lists them.
    fn cumulative(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let labels = BOUNDS_LE.iter().copied().chain(["+Inf"]);
        labels.enumerate().scan(0u64, |total, (i, le)| {
            *total += self.counts.get(i).copied().unwrap_or(0);
            Some((le, *total))
        })
    }
}

/// How many recent errors an isolate keeps until its report, and `CONTROL` keeps in all.
pub const RECENT_ERRORS: usize = 50;

/// An answer that failed (a 5xx) or was refused (429, or a 503 of the edge's own), for the
/// dashboard's list of recent errors: enough to find the request in the logs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecentError {
    pub at_ms: u64,
    pub request_id: String,
    pub status: u16,
    /// [`route_label`] of the path (never the path itself: it may carry someone's data).
    pub route: String,
    /// The problem type the edge answered, or `origin` for the origin's own error.
    pub problem: String,
}

/// Counts since the last report (in an isolate), or since the object started (in `CONTROL`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, with = "entries")]
    pub requests: BTreeMap<RequestKey, u64>,
    /// Requests the edge turned away, by reason (the problem type it answered).
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
    #[serde(default, with = "entries")]
    pub durable_objects: BTreeMap<CallKey, Histogram>,
    /// Calls to each origin, answered or not, by base URL.
    #[serde(default)]
    pub origins: BTreeMap<String, Histogram>,
    /// The latest errors, oldest first, at most [`RECENT_ERRORS`].
    #[serde(default)]
    pub recent_errors: Vec<RecentError>,
}

impl Metrics {
    /// Counts one answer. On the request path: a key already counted (an isolate sees few
    /// between two reports) is found without allocating.
    pub fn count_request(&mut self, route: &str, status: u16, cache: &str) {
        let counted = self
            .requests
            .iter_mut()
            .find(|(k, _)| k.status == status && k.route == route && k.cache == cache);
        match counted {
            Some((_, n)) => *n += 1,
            None => {
                let key = RequestKey {
                    route: route.to_owned(),
                    status,
                    cache: cache.to_owned(),
                };
                self.requests.insert(key, 1);
            }
        }
    }

    pub fn count_refusal(&mut self, reason: &str) {
        match self.refusals.get_mut(reason) {
            Some(n) => *n += 1,
            None => drop(self.refusals.insert(reason.to_owned(), 1)),
        }
    }

    pub fn observe_durable_object(&mut self, binding: &str, command: &str, ms: u64) {
        let key = CallKey {
            binding: binding.to_owned(),
            command: command.to_owned(),
        };
        self.durable_objects.entry(key).or_default().observe(ms);
    }

    pub fn observe_origin(&mut self, origin: &str, ms: u64) {
        match self.origins.get_mut(origin) {
            Some(h) => h.observe(ms),
            None => {
                let mut h = Histogram::default();
                h.observe(ms);
                self.origins.insert(origin.to_owned(), h);
            }
        }
    }

    /// Keeps `error` among the recent ones, dropping the oldest past [`RECENT_ERRORS`].
    pub fn record_error(&mut self, error: RecentError) {
        self.recent_errors.push(error);
        self.keep_recent();
    }

    fn keep_recent(&mut self) {
        self.recent_errors.sort();
        let excess = self.recent_errors.len().saturating_sub(RECENT_ERRORS);
        self.recent_errors.drain(..excess);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Metrics) {
        for (key, n) in &other.requests {
            let mine = self.requests.entry(key.clone()).or_default();
            *mine = mine.saturating_add(*n);
        }
        for (reason, n) in &other.refusals {
            let mine = self.refusals.entry(reason.clone()).or_default();
            *mine = mine.saturating_add(*n);
        }
        for (key, h) in &other.durable_objects {
            self.durable_objects
                .entry(key.clone())
                .or_default()
                .merge(h);
        }
        for (origin, h) in &other.origins {
            self.origins.entry(origin.clone()).or_default().merge(h);
        }
        if !other.recent_errors.is_empty() {
            self.recent_errors
                .extend(other.recent_errors.iter().cloned());
            self.keep_recent();
        }
    }

    /// Hits by tier: the requests whose cache outcome names a tier.
    pub fn hits_by_tier(&self) -> BTreeMap<&str, u64> {
        let mut hits = BTreeMap::new();
        for (key, n) in &self.requests {
            if matches!(key.cache.as_str(), "memory" | "cache-api" | "kv") {
                *hits.entry(key.cache.as_str()).or_default() += n;
            }
        }
        hits
    }
}

/// The route label of `path`: the longest configured prefix it falls under (admission, cache
/// policy and idempotency routes, then the origin prefixes), [`ADMIN_ROUTE`] for the operator
/// endpoints, `assets` for the front end's, else [`OTHER_ROUTE`].
pub fn route_label<'a>(config: &'a EdgeConfig, path: &str, assets: bool) -> &'a str {
    if path.starts_with(ADMIN_ROUTE) {
        return ADMIN_ROUTE;
    }
    let prefixes = config
        .admission
        .routes
        .iter()
        .map(|r| r.prefix.as_str())
        .chain(config.cache.routes.iter().map(|r| r.prefix.as_str()))
        .chain(config.idempotency.routes.iter().map(|r| r.prefix.as_str()))
        .chain(config.origin_prefixes.iter().map(String::as_str));
    let longest = prefixes
        .filter(|prefix| path.starts_with(prefix))
        .max_by_key(|prefix| prefix.len());
    match longest {
        Some(prefix) => prefix,
        None if assets => "assets",
        None => OTHER_ROUTE,
    }
}

/// A map with structured keys as a JSON list of `[key, value]` pairs (JSON object keys are only
/// strings).
mod entries {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Vec::<(K, V)>::deserialize(deserializer).map(|pairs| pairs.into_iter().collect())
    }
}
