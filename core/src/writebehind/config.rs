//! `WRITE_BEHIND` (a `wrangler.toml` table, or JSON through `--var`): which routes are answered
//! `202` and queued, and how the queue consumer delivers them. Parsed once; an error names the
//! field path (`routes[1].path: ...`).

use super::backoff::MAX_DELAY_SECONDS;
use super::event::EventKind;
use serde::Deserialize;
use serde_json::Value;

/// Validated write-behind settings. The default has no routes: nothing is written behind.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBehindConfig {
    pub routes: Vec<WriteBehindRoute>,
    /// Largest request body a route accepts (`413` above), and largest queue message the consumer
    /// treats as an event (poison above).
    pub max_event_bytes: usize,
    /// The origin's batch endpoint (`POST`), a path on `ORIGIN_URL`.
    pub batch_path: String,
    /// Deliveries a message gets; the consumer dead-letters it, with the last error, on the last.
    pub max_attempts: u32,
    /// Backoff between deliveries: the `n`th retry waits about `base · 2^(n-1)` seconds, at
    /// most `retry_max_seconds`, with jitter ([`super::backoff`]).
    pub retry_base_seconds: u32,
    pub retry_max_seconds: u32,
    /// The dead-letter queue's name (its `[[queues.consumers]]` entry keeps dead letters for
    /// listing; the consumer tells its batches from `EVENTS`' by this name).
    pub dead_letter_queue: String,
}

/// One route written behind.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBehindRoute {
    pub path: PathPattern,
    pub kind: EventKind,
}

pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024;
const MIN_EVENT_BYTES: usize = 256;
/// Well under a queue message's 128 KB.
const MAX_EVENT_BYTES: usize = 64 * 1024;
pub const DEFAULT_BATCH_PATH: &str = "/internal/events/batch";
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Miniflare caps a consumer's `max_retries` at 100, and `max_retries` must stay above this.
const MAX_ATTEMPTS: u32 = 100;
pub const DEFAULT_RETRY_BASE_SECONDS: u32 = 2;
pub const DEFAULT_RETRY_MAX_SECONDS: u32 = 300;
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "breakwater-events-dlq";

impl Default for WriteBehindConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            batch_path: DEFAULT_BATCH_PATH.to_owned(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_base_seconds: DEFAULT_RETRY_BASE_SECONDS,
            retry_max_seconds: DEFAULT_RETRY_MAX_SECONDS,
            dead_letter_queue: DEFAULT_DEAD_LETTER_QUEUE.to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    routes: Vec<Value>,
    #[serde(default)]
    max_event_bytes: Option<u64>,
    #[serde(default)]
    batch_path: Option<String>,
    #[serde(default)]
    max_attempts: Option<u64>,
    #[serde(default)]
    retry_base_seconds: Option<u64>,
    #[serde(default)]
    retry_max_seconds: Option<u64>,
    #[serde(default)]
    dead_letter_queue: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    method: String,
    path: String,
    kind: EventKind,
}

impl WriteBehindConfig {
    /// Parses the var. The error is the reason, starting with the field path.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let defaults = Self::default();
        let number = |field: &str, v: Option<u64>, default: u64, min: u64, max: u64| match v {
            None => Ok(default),
            Some(n) if (min..=max).contains(&n) => Ok(n),
            Some(n) => Err(format!("{field}: {n} is outside {min}..={max}")),
        };
        let max_event_bytes = number(
            "max_event_bytes",
            raw.max_event_bytes,
            defaults.max_event_bytes as u64,
            MIN_EVENT_BYTES as u64,
            MAX_EVENT_BYTES as u64,
        )? as usize;
        let max_attempts = number(
            "max_attempts",
            raw.max_attempts,
            u64::from(defaults.max_attempts),
            1,
            u64::from(MAX_ATTEMPTS),
        )? as u32;
        let max = u64::from(MAX_DELAY_SECONDS);
        let retry_base_seconds = number(
            "retry_base_seconds",
            raw.retry_base_seconds,
            u64::from(defaults.retry_base_seconds),
            1,
            max,
        )? as u32;
        let retry_max_seconds = number(
            "retry_max_seconds",
            raw.retry_max_seconds,
            u64::from(defaults.retry_max_seconds.max(retry_base_seconds)),
            u64::from(retry_base_seconds),
            max,
        )? as u32;
        let batch_path = raw.batch_path.unwrap_or(defaults.batch_path);
        if !batch_path.starts_with('/')
            || batch_path.contains(|c: char| c == '?' || c == '#' || c.is_whitespace())
        {
            return Err(format!(
                "batch_path: {batch_path:?} must be a path starting with '/', without query or spaces"
            ));
        }
        let dead_letter_queue = raw.dead_letter_queue.unwrap_or(defaults.dead_letter_queue);
        if dead_letter_queue.is_empty()
            || dead_letter_queue.len() > 63
            || !dead_letter_queue
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "dead_letter_queue: {dead_letter_queue:?} is not a queue name (1 to 63 of a-z 0-9 -)"
            ));
        }
        let mut routes: Vec<WriteBehindRoute> = Vec::with_capacity(raw.routes.len());
        for (i, value) in raw.routes.into_iter().enumerate() {
            let at = |field: &str| format!("routes[{i}]{field}");
            let route: RawRoute =
                serde_json::from_value(value).map_err(|e| format!("{}: {e}", at("")))?;
            if route.method != "POST" {
                return Err(format!(
                    "{}: {:?} is not POST (only POST routes are written behind)",
                    at(".method"),
                    route.method
                ));
            }
            let path =
                PathPattern::parse(&route.path).map_err(|e| format!("{}: {e}", at(".path")))?;
            if let Some(j) = routes.iter().position(|r| r.path == path) {
                return Err(format!(
                    "{}: {:?} repeats routes[{j}]",
                    at(".path"),
                    route.path
                ));
            }
            routes.push(WriteBehindRoute {
                path,
                kind: route.kind,
            });
        }
        Ok(Self {
            routes,
            max_event_bytes,
            batch_path,
            max_attempts,
            retry_base_seconds,
            retry_max_seconds,
            dead_letter_queue,
        })
    }

    /// The route a `method path` request is written behind on, with the raw `{id}` segment.
    pub fn route<'p>(&self, method: &str, path: &'p str) -> Option<(&WriteBehindRoute, &'p str)> {
        if method != "POST" {
            return None;
        }
        self.routes
            .iter()
            .find_map(|r| r.path.matches(path).map(|id| (r, id)))
    }
}

/// A path with one `{id}` segment, such as `/api/products/{id}/views`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// Everything before `{id}` (ends with `/`) and after it (empty or starts with `/`).
    before: String,
    after: String,
}

const PLACEHOLDER: &str = "{id}";

impl PathPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !raw.starts_with('/') {
            return Err(format!("{raw:?} must start with '/'"));
        }
        if raw.contains(['?', '#']) || raw.contains(char::is_whitespace) || raw.contains("//") {
            return Err(format!(
                "{raw:?} must be a plain path (no query, spaces or '//')"
            ));
        }
        let (before, after) = raw
            .split_once(PLACEHOLDER)
            .ok_or_else(|| format!("{raw:?} must hold {PLACEHOLDER} once"))?;
        if after.contains(['{', '}']) || before.contains(['{', '}']) {
            return Err(format!(
                "{raw:?} must hold {PLACEHOLDER} once and no other braces"
            ));
        }
        if !before.ends_with('/') || !(after.is_empty() || after.starts_with('/')) {
            return Err(format!(
                "{raw:?}: {PLACEHOLDER} must be a whole path segment"
            ));
        }
        if after.ends_with('/') {
            return Err(format!("{raw:?} must not end with '/'"));
        }
        Ok(Self {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    /// The `{id}` segment of `path`, if `path` has this shape (it may be any non-empty segment;
    /// the route decides what it must hold).
    pub fn matches<'p>(&self, path: &'p str) -> Option<&'p str> {
        let id = path
            .strip_prefix(self.before.as_str())?
            .strip_suffix(self.after.as_str())?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{PLACEHOLDER}{}", self.before, self.after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn routes() -> Value {
        json!([
            {"method": "POST", "path": "/api/products/{id}/views", "kind": "view"},
            {"method": "POST", "path": "/api/products/{id}/votes", "kind": "vote"}
        ])
    }

    #[test]
    fn defaults_and_routes() {
        let c = WriteBehindConfig::from_value(json!({"routes": routes()})).unwrap();
        assert_eq!(c.max_event_bytes, 1024);
        assert_eq!(c.batch_path, "/internal/events/batch");
        assert_eq!(c.max_attempts, 6);
        let (route, id) = c.route("POST", "/api/products/42/votes").unwrap();
        assert_eq!((route.kind, id), (EventKind::Vote, "42"));
        assert_eq!(route.path.to_string(), "/api/products/{id}/votes");
        assert!(c.route("GET", "/api/products/42/votes").is_none());
        assert!(c.route("POST", "/api/products/42").is_none());
        assert!(c.route("POST", "/api/products//views").is_none());
        assert!(c.route("POST", "/api/products/1/2/views").is_none());
        assert!(c.route("POST", "/api/products/42/views/x").is_none());
        // The segment is handed over as it is: the route refuses what is not a product id.
        assert_eq!(c.route("POST", "/api/products/x/views").unwrap().1, "x");
        assert!(
            WriteBehindConfig::default()
                .route("POST", "/api/products/1/views")
                .is_none()
        );
    }

    #[test]
    fn a_trailing_placeholder_matches_the_last_segment() {
        let p = PathPattern::parse("/api/likes/{id}").unwrap();
        assert_eq!(p.matches("/api/likes/9"), Some("9"));
        assert_eq!(p.matches("/api/likes/9/x"), None);
        assert_eq!(p.matches("/api/likes/"), None);
    }

    #[test]
    fn every_bad_value_names_its_field_path() {
        let cases = [
            (
                json!({"routes": [{"method": "GET", "path": "/a/{id}", "kind": "view"}]}),
                "routes[0].method",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "/a/{id}", "kind": "like"}]}),
                "routes[0]: unknown variant",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "/a/{id}", "kind": "view", "x": 1}]}),
                "routes[0]: unknown field",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "/a/b", "kind": "view"}]}),
                "routes[0].path",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "a/{id}", "kind": "view"}]}),
                "routes[0].path",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "/a/x{id}", "kind": "view"}]}),
                "routes[0].path",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "/a/{id}/{id}", "kind": "view"}]}),
                "routes[0].path",
            ),
            (
                json!({"routes": [{"method": "POST", "path": "/a/{id}?q", "kind": "view"}]}),
                "routes[0].path",
            ),
            (
                json!({"routes": [
                    {"method": "POST", "path": "/a/{id}", "kind": "view"},
                    {"method": "POST", "path": "/a/{id}", "kind": "vote"}
                ]}),
                "routes[1].path",
            ),
            (json!({"max_event_bytes": 10}), "max_event_bytes"),
            (json!({"max_attempts": 0}), "max_attempts"),
            (json!({"max_attempts": 101}), "max_attempts"),
            (json!({"retry_base_seconds": 0}), "retry_base_seconds"),
            (
                json!({"retry_base_seconds": 10, "retry_max_seconds": 5}),
                "retry_max_seconds",
            ),
            (json!({"retry_max_seconds": 50000}), "retry_max_seconds"),
            (json!({"batch_path": "internal"}), "batch_path"),
            (
                json!({"dead_letter_queue": "Events DLQ"}),
                "dead_letter_queue",
            ),
            (json!({"batch_path": "/b?x=1"}), "batch_path"),
            (json!({"max_attempt": 3}), "unknown field"),
            (json!([1]), "invalid type"),
        ];
        for (value, field) in cases {
            let err = WriteBehindConfig::from_value(value.clone()).unwrap_err();
            assert!(
                err.starts_with(field) || err.contains(field),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn a_large_base_raises_the_default_ceiling() {
        let c = WriteBehindConfig::from_value(json!({"retry_base_seconds": 600})).unwrap();
        assert_eq!(c.retry_max_seconds, 600);
    }
}
