//! Per-route cache policy, configured in `wrangler.toml` under `[vars.CACHE_POLICY]`, and the
//! cache key it implies.
//!
//! Parsed once into values that can only be valid; a bad policy fails with the route and field it
//! is about and the reason, e.g. `CACHE_POLICY.routes[1] ("/api/cart").ttl.floor: 90 exceeds the
//! ceiling 60`.

use serde::Deserialize;
use serde_json::Value;

/// What the edge does with the origin's caching headers on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The origin's headers decide (RFC 9111), clamped by the TTL floor/ceiling if given.
    Honor,
    /// Cache for `ttl.ceiling` seconds whatever the origin says, unless the response is private
    /// (`private`, `no-store`, `Set-Cookie`, or a request with credentials): forcing never leaks.
    Force,
    /// Never read or fill any tier.
    Bypass,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Honor => "honor",
            Self::Force => "force",
            Self::Bypass => "bypass",
        }
    }
}

/// Whether a request with a verified access token may use the shared tiers on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authenticated {
    /// Never read or fill a shared tier (`Cache-Status: ...; fwd=bypass; detail=authenticated`):
    /// the answer may depend on who asked. The default.
    #[default]
    Bypass,
    /// The route's answers do not depend on the user (a public catalogue): the token is verified,
    /// then the request is served and filled like an anonymous one (the `Authorization` header is
    /// neither keyed nor forwarded).
    Shared,
}

impl Authenticated {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::Shared => "shared",
        }
    }
}

/// A cache tier, in lookup order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The isolate's own memory.
    Memory,
    /// The data centre's Cache API.
    CacheApi,
    /// Workers KV, global and eventually consistent: only for routes that can bear staleness.
    Kv,
}

impl Tier {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::CacheApi => "cache-api",
            Self::Kv => "kv",
        }
    }
}

/// Bounds on the freshness lifetime, in seconds (applied by `cache::Entry::lifetime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ttl {
    pub floor: u32,
    pub ceiling: Option<u32>,
}

/// How a request URL and headers become a cache key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRules {
    /// Sort query parameters, so `?a=1&b=2` and `?b=2&a=1` share an entry.
    pub sort_query: bool,
    /// Parameters to drop (tracking); a trailing `*` matches a prefix (`utm_*`).
    pub drop_params: Vec<String>,
    /// Request headers that become part of the key (lower-case). Which headers reach the origin
    /// is [`RoutePolicy::forward`]'s; a response varying on others is told apart by its
    /// secondary key (RFC 9111 §4.1).
    pub headers: Vec<String>,
}

/// The policy of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    pub prefix: String,
    pub mode: Mode,
    pub ttl: Ttl,
    /// RFC 5861 windows the edge grants on top of the origin's (seconds).
    pub stale_while_revalidate: u32,
    pub stale_if_error: u32,
    pub tiers: Vec<Tier>,
    pub key: KeyRules,
    /// What requests with a verified access token may do here.
    pub authenticated: Authenticated,
    /// Request headers (lower-case) forwarded to the origin: `None` forwards every end-to-end
    /// header (the default); `Some` is a strict allow-list (`"forward"` in the policy).
    pub forward: Option<Vec<String>>,
    /// A request carrying `Cookie` bypasses the tiers (`Cache-Status: ...; detail=credentials`).
    /// Off by default: the request uses the tiers, and RFC 9111 §3.5 (with `Cookie` counted as a
    /// credential) decides whether the response is stored.
    pub bypass_cookie: bool,
    /// Ceiling on the freshness lifetime of a stored 4xx/5xx, in seconds (default
    /// [`DEFAULT_ERROR_TTL_CEILING`]): an error one odd request provoked is replayed to others for
    /// at most this long.
    pub error_ttl_ceiling: u32,
}

/// The default [`RoutePolicy::error_ttl_ceiling`]: a minute.
pub const DEFAULT_ERROR_TTL_CEILING: u32 = 60;

/// Every route's policy; the first route whose prefix matches wins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CachePolicy {
    pub routes: Vec<RoutePolicy>,
}

/// A policy that cannot be used, with the place it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CACHE_POLICY{at}: {reason}")]
pub struct PolicyError {
    /// Where in the policy, e.g. `.routes[1] ("/api/cart").ttl.floor`.
    pub at: String,
    pub reason: String,
}

/// Longest lifetime or window accepted: a year, like an immutable asset.
const MAX_SECONDS: u32 = 31_536_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    routes: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    #[serde(default = "honor")]
    mode: Mode,
    #[serde(default)]
    ttl: RawTtl,
    #[serde(default)]
    stale_while_revalidate: u32,
    #[serde(default)]
    stale_if_error: u32,
    #[serde(default = "default_tiers")]
    tiers: Vec<Tier>,
    #[serde(default)]
    key: RawKey,
    #[serde(default)]
    authenticated: Authenticated,
    #[serde(default)]
    forward: Option<Vec<String>>,
    #[serde(default)]
    bypass_cookie: bool,
    #[serde(default = "default_error_ttl_ceiling")]
    error_ttl_ceiling: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTtl {
    #[serde(default)]
    floor: u32,
    ceiling: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    sort_query: bool,
    #[serde(default)]
    drop_params: Vec<String>,
    #[serde(default)]
    headers: Vec<String>,
}

fn honor() -> Mode {
    Mode::Honor
}

fn default_error_ttl_ceiling() -> u32 {
    DEFAULT_ERROR_TTL_CEILING
}

fn default_tiers() -> Vec<Tier> {
    vec![Tier::Memory, Tier::CacheApi]
}

impl CachePolicy {
    /// Parses the `CACHE_POLICY` var (a JSON object: wrangler turns the TOML table into one).
    pub fn from_value(value: Value) -> Result<Self, PolicyError> {
        let raw: RawPolicy = serde_json::from_value(value).map_err(|e| PolicyError {
            at: String::new(),
            reason: e.to_string(),
        })?;
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, value) in raw.routes.into_iter().enumerate() {
            let prefix = value
                .get("prefix")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let at = |field: &str| format!(".routes[{i}] ({prefix:?}){field}");
            let raw: RawRoute = serde_json::from_value(value).map_err(|e| PolicyError {
                at: at(""),
                reason: e.to_string(),
            })?;
            let fail = |field: &str, reason: String| PolicyError {
                at: at(field),
                reason,
            };
            if !raw.prefix.starts_with('/') {
                return Err(fail(".prefix", "must start with '/'".into()));
            }
            if routes
                .iter()
                .any(|r: &RoutePolicy| raw.prefix.starts_with(&r.prefix))
            {
                return Err(fail(
                    ".prefix",
                    "is shadowed by an earlier route with a shorter prefix".into(),
                ));
            }
            for (field, v) in [
                (".ttl.floor", Some(raw.ttl.floor)),
                (".ttl.ceiling", raw.ttl.ceiling),
                (".stale_while_revalidate", Some(raw.stale_while_revalidate)),
                (".stale_if_error", Some(raw.stale_if_error)),
                (".error_ttl_ceiling", Some(raw.error_ttl_ceiling)),
            ] {
                if v.is_some_and(|v| v > MAX_SECONDS) {
                    return Err(fail(
                        field,
                        format!("{} exceeds a year ({MAX_SECONDS} s)", v.unwrap_or(0)),
                    ));
                }
            }
            if let Some(ceiling) = raw.ttl.ceiling
                && raw.ttl.floor > ceiling
            {
                return Err(fail(
                    ".ttl.floor",
                    format!("{} exceeds the ceiling {ceiling}", raw.ttl.floor),
                ));
            }
            if raw.mode == Mode::Force && raw.ttl.ceiling.is_none_or(|c| c == 0) {
                return Err(fail(
                    ".ttl.ceiling",
                    "mode \"force\" needs a ceiling > 0: it is the TTL".into(),
                ));
            }
            let mut tiers = raw.tiers;
            tiers.sort();
            tiers.dedup();
            if raw.mode != Mode::Bypass && tiers.is_empty() {
                return Err(fail(
                    ".tiers",
                    "is empty; use mode \"bypass\" to disable caching".into(),
                ));
            }
            let mut headers = Vec::with_capacity(raw.key.headers.len());
            for h in raw.key.headers {
                let lower = h.to_ascii_lowercase();
                if lower.is_empty()
                    || !lower
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(fail(".key.headers", format!("{h:?} is not a header name")));
                }
                if matches!(lower.as_str(), "authorization" | "cookie") {
                    return Err(fail(
                        ".key.headers",
                        format!(
                            "{h:?} would key on credentials; private routes must bypass the shared cache"
                        ),
                    ));
                }
                headers.push(lower);
            }
            headers.sort();
            headers.dedup();
            let forward = match raw.forward {
                None => None,
                Some(names) => {
                    let mut forward = Vec::with_capacity(names.len());
                    for h in names {
                        if h.is_empty() || !h.bytes().all(is_tchar) {
                            return Err(fail(".forward", format!("{h:?} is not a header name")));
                        }
                        forward.push(h.to_ascii_lowercase());
                    }
                    forward.sort();
                    forward.dedup();
                    Some(forward)
                }
            };
            if let Some(bad) = raw
                .key
                .drop_params
                .iter()
                .find(|p| p.is_empty() || p.strip_suffix('*').unwrap_or(p).contains('*'))
            {
                return Err(fail(
                    ".key.drop_params",
                    format!("{bad:?}: only a trailing '*' is allowed"),
                ));
            }
            routes.push(RoutePolicy {
                prefix: raw.prefix,
                mode: raw.mode,
                ttl: Ttl {
                    floor: raw.ttl.floor,
                    ceiling: raw.ttl.ceiling,
                },
                stale_while_revalidate: raw.stale_while_revalidate,
                stale_if_error: raw.stale_if_error,
                tiers,
                key: KeyRules {
                    sort_query: raw.key.sort_query,
                    drop_params: raw.key.drop_params,
                    headers,
                },
                authenticated: raw.authenticated,
                forward,
                bypass_cookie: raw.bypass_cookie,
                error_ttl_ceiling: raw.error_ttl_ceiling,
            });
        }
        Ok(Self { routes })
    }

    /// The policy for `path`, if any route covers it. Uncovered paths are not cached.
    pub fn route(&self, path: &str) -> Option<&RoutePolicy> {
        self.routes.iter().find(|r| path.starts_with(&r.prefix))
    }

    /// The key a purge of the URL `path` + `query` names: the route's key rules applied to the
    /// URL, without the keyed-header part, so one URL purge covers every header variant
    /// ([`crate::purge::PurgeLog::is_purged`] compares keys up to that part). A path no route
    /// covers keeps its query as given.
    pub fn url_key(&self, path: &str, query: &str) -> String {
        match self.route(path) {
            Some(route) => {
                let key = route.key.key(path, query, |_| None);
                key.split('\n').next().unwrap_or_default().to_owned()
            }
            None => format!("{path}{query}"),
        }
    }
}

/// tchar (RFC 9110 §5.6.2): a field name is a token (§5.1).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl KeyRules {
    /// The cache key for a request: path, normalised query and the keyed headers' values.
    /// `header` looks up a request header by lower-case name.
    pub fn key(&self, path: &str, query: &str, header: impl Fn(&str) -> Option<String>) -> String {
        let mut params: Vec<&str> = query
            .trim_start_matches('?')
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| !self.dropped(p.split('=').next().unwrap_or(p)))
            .collect();
        if self.sort_query {
            params.sort_unstable();
        }
        let mut key = path.to_owned();
        if !params.is_empty() {
            key.push('?');
            key.push_str(&params.join("&"));
        }
        for name in &self.headers {
            // Whitespace runs collapse: they are not semantic in these headers.
            let value = header(name).map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "));
            key.push_str(&format!("\n{name}: {}", value.unwrap_or_default()));
        }
        key
    }

    fn dropped(&self, name: &str) -> bool {
        self.drop_params
            .iter()
            .any(|rule| match rule.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == rule,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CachePolicy, PolicyError> {
        CachePolicy::from_value(v)
    }

    #[test]
    fn defaults_and_first_match() {
        let p = parse(json!({"routes": [
            {"prefix": "/api/products", "ttl": {"floor": 10, "ceiling": 600}, "tiers": ["kv", "memory", "kv"]},
            {"prefix": "/api/cart", "mode": "bypass"}
        ]}))
        .unwrap();
        let products = p.route("/api/products/7").unwrap();
        assert_eq!(products.mode, Mode::Honor);
        assert_eq!(
            products.tiers,
            vec![Tier::Memory, Tier::Kv],
            "sorted into lookup order, deduplicated"
        );
        assert_eq!(
            products.ttl,
            Ttl {
                floor: 10,
                ceiling: Some(600)
            }
        );
        assert_eq!(p.route("/api/cart").unwrap().mode, Mode::Bypass);
        assert!(p.route("/api/orders").is_none());
        assert_eq!(
            products.authenticated,
            Authenticated::Bypass,
            "token holders bypass the shared tiers unless the route says otherwise"
        );
        assert_eq!(products.forward, None, "every end-to-end header by default");
        assert!(
            !products.bypass_cookie,
            "a Cookie uses the tiers by default"
        );
        assert_eq!(products.error_ttl_ceiling, DEFAULT_ERROR_TTL_CEILING);
    }

    #[test]
    fn forwarding_cookies_and_error_ceiling_table() {
        let route = |extra: Value| {
            let mut r = json!({"prefix": "/a"});
            if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
                r.extend(extra.clone());
            }
            parse(json!({"routes": [r]})).map(|p| p.routes[0].clone())
        };
        let names = |n: &[&str]| Some(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // (route fields, Ok((forward, bypass_cookie, error_ttl_ceiling)) or Err(field), rule)
        #[rustfmt::skip]
        let cases = [
            (json!({}), Ok((None, false, 60)), "defaults: forward all, cookies use the tiers, errors 60 s"),
            (json!({"forward": ["Accept", "x-Trace_ID", "accept"]}), Ok((names(&["accept", "x-trace_id"]), false, 60)), "RFC 9110 §5.1: names lower-cased, deduplicated"),
            (json!({"forward": []}), Ok((names(&[]), false, 60)), "an empty allow-list forwards nothing"),
            (json!({"bypass_cookie": true}), Ok((None, true, 60)), "cookie bypass opt-in"),
            (json!({"error_ttl_ceiling": 0}), Ok((None, false, 0)), "errors never fresh"),
            (json!({"error_ttl_ceiling": 31_536_000}), Ok((None, false, 31_536_000)), "a year at most"),
            (json!({"forward": ["bad header"]}), Err(".forward"), "RFC 9110 §5.6.2: not a token"),
            (json!({"forward": [""]}), Err(".forward"), "an empty name"),
            (json!({"forward": ["a:b"]}), Err(".forward"), "':' is not tchar"),
            (json!({"forward": "accept"}), Err(""), "a list, not a string"),
            (json!({"bypass_cookie": "yes"}), Err(""), "a boolean"),
            (json!({"error_ttl_ceiling": 31_536_001}), Err(".error_ttl_ceiling"), "more than a year"),
            (json!({"error_ttl_ceiling": -1}), Err(""), "seconds are unsigned"),
        ];
        for (extra, want, rule) in cases {
            match (route(extra.clone()), want) {
                (Ok(r), Ok(want)) => assert_eq!(
                    (r.forward, r.bypass_cookie, r.error_ttl_ceiling),
                    want,
                    "{rule}"
                ),
                (Err(e), Err(field)) => {
                    assert_eq!(e.at, format!(".routes[0] (\"/a\"){field}"), "{rule}: {e}")
                }
                (got, want) => panic!("{rule}: {extra} gave {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_route_may_share_its_tiers_with_token_holders() {
        let p = parse(json!({"routes": [
            {"prefix": "/api/products", "authenticated": "shared"},
            {"prefix": "/api/", "authenticated": "bypass"}
        ]}))
        .unwrap();
        assert_eq!(
            p.route("/api/products/1").unwrap().authenticated,
            Authenticated::Shared
        );
        assert_eq!(p.route("/api/x").unwrap().authenticated.as_str(), "bypass");
        let err =
            parse(json!({"routes": [{"prefix": "/a", "authenticated": "always"}]})).unwrap_err();
        assert_eq!(err.at, ".routes[0] (\"/a\")", "{err}");
    }

    #[test]
    fn every_bad_policy_names_the_route_and_field() {
        let cases = [
            (
                json!({"routes": [{"prefix": "api"}]}),
                ".routes[0] (\"api\").prefix",
            ),
            (
                json!({"routes": [{"prefix": "/a", "ttl": {"floor": 90, "ceiling": 60}}]}),
                ".routes[0] (\"/a\").ttl.floor",
            ),
            (
                json!({"routes": [{"prefix": "/a", "mode": "force"}]}),
                ".routes[0] (\"/a\").ttl.ceiling",
            ),
            (
                json!({"routes": [{"prefix": "/a", "tiers": []}]}),
                ".routes[0] (\"/a\").tiers",
            ),
            (
                json!({"routes": [{"prefix": "/a", "key": {"headers": ["Cookie"]}}]}),
                ".key.headers",
            ),
            (
                json!({"routes": [{"prefix": "/a", "key": {"headers": ["bad header"]}}]}),
                ".key.headers",
            ),
            (
                json!({"routes": [{"prefix": "/a", "key": {"drop_params": ["u*m"]}}]}),
                ".key.drop_params",
            ),
            (
                json!({"routes": [{"prefix": "/a", "stale_if_error": 40000000}]}),
                ".stale_if_error",
            ),
            (
                json!({"routes": [{"prefix": "/a"}, {"prefix": "/a/b"}]}),
                ".routes[1] (\"/a/b\").prefix",
            ),
            (
                json!({"routes": [{"prefix": "/a", "mode": "sometimes"}]}),
                ".routes[0] (\"/a\")",
            ),
            (
                json!({"routes": [{"prefix": "/a", "tll": 3}]}),
                ".routes[0] (\"/a\")",
            ),
            (json!({"rutes": []}), ""),
        ];
        for (policy, at) in cases {
            let err = parse(policy.clone()).unwrap_err();
            assert!(
                err.at.ends_with(at) && err.to_string().starts_with("CACHE_POLICY"),
                "{policy}: {err}"
            );
        }
        let unknown = parse(json!({"routes": [{"prefix": "/a", "tll": 3}]})).unwrap_err();
        assert!(
            unknown.reason.contains("tll"),
            "names the unknown field: {unknown}"
        );
    }

    /// Found by the fuzzer (fuzz target `config`): a parameter ending in a multi-byte character
    /// was sliced inside that character, a panic at start-up.
    #[test]
    fn dropped_parameters_may_hold_any_character() {
        // (drop_params, accepted)
        let cases = [
            (json!(["é"]), true),
            (json!(["caf\u{e9}*", "\u{fffd}", "😀"]), true),
            (json!(["*é"]), false),
            (json!(["é*é"]), false),
            (json!(["**"]), false),
            (json!(["*"]), true),
        ];
        for (drop_params, accepted) in cases {
            let policy = json!({"routes": [{"prefix": "/a", "key": {"drop_params": drop_params}}]});
            let result = parse(policy.clone());
            assert_eq!(result.is_ok(), accepted, "{policy}: {result:?}");
        }
        let rules = parse(json!({"routes": [{"prefix": "/a", "key": {"drop_params": ["é"]}}]}))
            .unwrap()
            .routes[0]
            .key
            .clone();
        assert_eq!(rules.key("/a", "?é=1&b=2", |_| None), "/a?b=2");
    }

    #[test]
    fn key_normalisation() {
        let rules = KeyRules {
            sort_query: true,
            drop_params: vec!["utm_*".into(), "fbclid".into()],
            headers: vec!["accept-language".into()],
        };
        let h = |name: &str| (name == "accept-language").then(|| "en-GB,  en".to_owned());
        let a = rules.key("/p", "?b=2&utm_source=x&a=1&fbclid=z", h);
        let b = rules.key("/p", "a=1&b=2", h);
        assert_eq!(a, b);
        assert_eq!(a, "/p?a=1&b=2\naccept-language: en-GB, en");
        let other_lang = rules.key("/p", "a=1&b=2", |_| Some("fr".into()));
        assert_ne!(a, other_lang, "a keyed header separates entries");
        let unsorted = KeyRules {
            sort_query: false,
            ..KeyRules::default()
        };
        assert_ne!(
            unsorted.key("/p", "a=1&b=2", |_| None),
            unsorted.key("/p", "b=2&a=1", |_| None)
        );
        assert_eq!(unsorted.key("/p", "", |_| None), "/p");
    }

    #[test]
    fn a_url_purge_key_is_the_route_key_without_header_lines() {
        let policy = parse(json!({"routes": [{
            "prefix": "/api/", "mode": "honor",
            "key": {"sort_query": true, "drop_params": ["utm_*"], "headers": ["accept-language"]}
        }]}))
        .unwrap();
        assert_eq!(
            policy.url_key("/api/p", "?b=2&utm_source=x&a=1"),
            "/api/p?a=1&b=2"
        );
        assert_eq!(policy.url_key("/other", "?b=2&a=1"), "/other?b=2&a=1");
    }
}
