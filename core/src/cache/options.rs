//! The knobs a deployment sets on the shared-cache semantics: everything RFC 9111 leaves to the
//! cache (heuristics, the targeted fields it answers to) and the platform facts it must respect.

/// The target list of a CDN cache that honours only the standard targeted field (RFC 9213 §3).
pub const DEFAULT_TARGETS: &[&str] = &["cdn-cache-control"];

/// Upper bound on a heuristic freshness lifetime: one day.
pub const DEFAULT_HEURISTIC_MAX: u64 = 86_400;

/// Upper bound on the freshness lifetime of a stored 4xx/5xx: one minute.
pub const DEFAULT_ERROR_MAX_LIFETIME: u64 = 60;

/// How this shared cache applies RFC 9111. Built once per route; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions<'a> {
    /// Targeted fields this cache obeys, lower-case, most specific first (RFC 9213 §2.2), e.g.
    /// `["cloudflare-cdn-cache-control", "cdn-cache-control"]`.
    pub target_list: &'a [&'a str],
    /// Store responses carrying `Set-Cookie`. Off by default: the Cache API never stores them,
    /// and a stored cookie would be handed to every later visitor (T-CA-01).
    pub store_set_cookie: bool,
    /// Treat a request `Cookie` like `Authorization` (RFC 9111 §3.5): store the response only if
    /// the origin opted in with `public`, `s-maxage` or `must-revalidate`. On by default
    /// (T-CA-01); the RFC itself is silent on cookies.
    pub cookie_is_credential: bool,
    /// Ceiling (seconds) on the freshness lifetime of a stored 4xx/5xx, applied after the route
    /// policy's clamp. RFC 9111 §3 lets any final status with explicit freshness be stored; the
    /// ceiling bounds how long an error a request anomaly provoked can be replayed to clean
    /// requests under the same key (cache-poisoned DoS, T-CA-05).
    pub error_max_lifetime: u64,
    /// Cap on a heuristic lifetime (RFC 9111 §4.2.2 leaves the heuristic to the cache).
    pub heuristic_max: u64,
    /// A `stale-while-revalidate` window this cache grants by out-of-band agreement with the
    /// origin (RFC 9111 §4.2.4); the larger of this and the response's directive applies.
    pub stale_while_revalidate: u64,
    /// A `stale-if-error` window granted the same way.
    pub stale_if_error: u64,
    /// The route policy's floor on a stored entry's lifetime (seconds): an operator override of
    /// the origin's headers, applied after RFC 9111 computed the lifetime.
    pub min_lifetime: u64,
    /// The route policy's ceiling on a stored entry's lifetime, if any.
    pub max_lifetime: Option<u64>,
    /// The route is in `force` mode: store responses the origin marked `no-store` or gave no
    /// freshness, for the policy's lifetime. Never overrides `private`, `Set-Cookie` or
    /// credentials: force is for public content whose origin sends poor headers.
    pub force: bool,
}

impl Default for CacheOptions<'_> {
    fn default() -> Self {
        Self {
            target_list: DEFAULT_TARGETS,
            store_set_cookie: false,
            cookie_is_credential: true,
            error_max_lifetime: DEFAULT_ERROR_MAX_LIFETIME,
            heuristic_max: DEFAULT_HEURISTIC_MAX,
            stale_while_revalidate: 0,
            stale_if_error: 0,
            min_lifetime: 0,
            max_lifetime: None,
            force: false,
        }
    }
}
