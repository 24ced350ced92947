//! The edge cache stage's decision ladder, pure: which requests the stage takes, which go
//! straight to the origin and why, what to do with what the tiers found, how long single-flight
//! waits, when the cron trigger refreshes a warm path, and what to do when the origin fails.
//!
//! The edge adapter only moves bytes: it reads the request's facts and the tiers, calls these in
//! order, and acts on the outcome. The ladder, in the order the adapter applies it:
//!
//! 1. [`gate`]: not `GET`/`HEAD` → the next stage; else bypass (with a [`BypassReason`]) or use
//!    the tiers, reading them with the headers of [`shared_request_headers`] and the
//!    [`options`] of the route.
//! 2. [`plan()`] over what the tiers found: serve it (maybe refreshing after the answer), answer
//!    `504` to `only-if-cached`, forward a `HEAD` (or a range or conditional request with
//!    nothing stored) unstored, or fill from the origin, without the client's conditionals and
//!    range ([`fill_drops`]).
//! 3. Filling is single-flight ([`flight_timeouts`]); a follower whose wait ended re-reads the
//!    tiers and asks [`after_wait`].
//! 4. The origin's answer, or its absence, goes through [`after_origin`] (the stored response may
//!    stand in), then RFC 9111 storing, where [`body_fits`] bounds what is buffered.
//! 5. The cron trigger refreshes a warm path when [`warm`] says so.

mod fill;
mod warm;

use super::date::Timestamp;
use super::entry::Entry;
use super::lookup::{Lookup, lookup, lookup_miss};
use super::message::{HeaderList, RequestHead};
use super::options::CacheOptions;
use crate::policy::{Authenticated, Mode, RoutePolicy};

pub use fill::{
    AfterOrigin, AfterWait, FromOrigin, LEADER_MARGIN_MS, MAX_BODY, TOO_LARGE, after_origin,
    after_wait, body_fits, flight_timeouts,
};
pub use warm::{WARM_AHEAD_SECS, Warm, warm, warms};

/// How the route's policy tunes RFC 9111.
pub fn options(route: &RoutePolicy) -> CacheOptions<'_> {
    let force = route.mode == Mode::Force;
    CacheOptions {
        stale_while_revalidate: u64::from(route.stale_while_revalidate),
        stale_if_error: u64::from(route.stale_if_error),
        // Force: the policy's ceiling is the lifetime, whatever the origin said.
        min_lifetime: if force {
            route.ttl.ceiling.map_or(0, u64::from)
        } else {
            u64::from(route.ttl.floor)
        },
        max_lifetime: route.ttl.ceiling.map(u64::from),
        error_max_lifetime: u64::from(route.error_ttl_ceiling),
        force,
        ..CacheOptions::default()
    }
}

/// What the bypass decision reads from a request on a caching route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// The method token as the runtime normalised it (`GET`, `HEAD`); case-sensitive (RFC 9110
    /// §9.1).
    pub method: &'a str,
    /// The edge verified an access token naming a user.
    pub verified_user: bool,
    /// The request carries `Cookie`.
    pub cookie: bool,
}

/// Why a request on a caching route goes to the origin without reading or filling any tier
/// (`Cache-Status: ...; fwd=bypass; detail=<as_str>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassReason {
    /// The route's mode is `bypass`.
    Policy,
    /// A verified user on a route that does not share its tiers with token holders.
    Authenticated,
    /// `Cookie` on a route with `bypass_cookie`: the operator says its answers are personal.
    Credentials,
    /// The route names no tier.
    NoTier,
}

impl BypassReason {
    /// The `Cache-Status` detail.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Authenticated => "authenticated",
            Self::Credentials => "credentials",
            Self::NoTier => "no-tier",
        }
    }
}

/// Whether the cache stage takes a request on a caching route, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Not `GET` or `HEAD`: not this stage's; the next stage handles it.
    NextStage,
    /// Forward to the origin, touching no tier.
    Bypass(BypassReason),
    /// Read the tiers (then [`plan()`]).
    Tiers,
}

impl Gate {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NextStage => "next-stage",
            Self::Bypass(_) => "bypass",
            Self::Tiers => "tiers",
        }
    }
}

/// Whether `route` serves the request described by `facts` from its tiers. The first reason
/// that applies wins, in this order: policy, authenticated, credentials, no tier.
///
/// A verified token names a user: only routes whose answers do not depend on the user share the
/// tiers with them (`authenticated = "shared"`); elsewhere a verified user bypasses. A `Cookie`
/// bypasses only on a route with `bypass_cookie`. Any other credential, an `Authorization` the
/// edge did not verify or a `Cookie`, goes to the tiers: RFC 9111 §3.5 then stores the response
/// only if the origin opted in (`public`, `s-maxage`, `must-revalidate`), with `Cookie` counted as
/// a credential ([`CacheOptions::cookie_is_credential`]).
pub fn gate(route: &RoutePolicy, facts: &RequestFacts<'_>) -> Gate {
    if !matches!(facts.method, "GET" | "HEAD") {
        return Gate::NextStage;
    }
    if route.mode == Mode::Bypass {
        Gate::Bypass(BypassReason::Policy)
    } else if facts.verified_user && route.authenticated == Authenticated::Bypass {
        Gate::Bypass(BypassReason::Authenticated)
    } else if facts.cookie && route.bypass_cookie {
        Gate::Bypass(BypassReason::Credentials)
    } else if route.tiers.is_empty() {
        Gate::Bypass(BypassReason::NoTier)
    } else {
        Gate::Tiers
    }
}

/// The request's headers as the tiers and RFC 9111 read them, past [`Gate::Tiers`]: a verified
/// user's `Authorization` is dropped, since a token holder on a shared route is served as anyone
/// would be, and the settled header must not make RFC 9111 §3.5 refuse to store or serve (it is
/// never forwarded either). Everything else is kept, in order.
pub fn shared_request_headers<N, V>(
    headers: impl IntoIterator<Item = (N, V)>,
    verified_user: bool,
) -> HeaderList
where
    N: Into<String>,
    V: Into<String>,
{
    headers
        .into_iter()
        .map(|(n, v)| (n.into(), v.into()))
        .filter(|(n, _)| !(verified_user && n.trim().eq_ignore_ascii_case("authorization")))
        .collect()
}

/// What to do with what the tiers found for a request the stage took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Serve the stored response (`Cache-Status: hit`). `detail` names why a stale one may be
    /// served (`None` when fresh); with `refresh`, also start a background fill
    /// (`stale-while-revalidate`) unless one is running for the key.
    Serve {
        detail: Option<&'static str>,
        refresh: bool,
    },
    /// `only-if-cached` and nothing servable: answer `504` (RFC 9111 §5.2.1.7).
    OnlyIfCached,
    /// Forward the request as the client sent it and relay the answer, storing nothing: a `HEAD`
    /// the stored response cannot answer (a `HEAD` response has no body to store; a `200` may
    /// still freshen the stored `GET` response, RFC 9111 §4.3.5), or a `Range` or conditional
    /// request with nothing stored to answer it from (the origin's `206` or `304` is for this
    /// client only).
    Forward,
    /// Fill from the origin, single-flight; conditionally when something was found (the
    /// [`Lookup`] says why it could not answer).
    Fill(Lookup),
}

impl Plan {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Serve { .. } => "serve",
            Self::OnlyIfCached => "only-if-cached",
            Self::Forward => "forward",
            Self::Fill(_) => "fill",
        }
    }
}

/// The plan for `request` given what the tiers `found` (purged entries count as nothing) at
/// `now`, under the route's `opts`. Serves exactly what [`lookup()`] says may be served.
pub fn plan(
    found: Option<&Entry>,
    request: &RequestHead<'_>,
    now: Timestamp,
    opts: &CacheOptions<'_>,
) -> Plan {
    let decision = match found {
        Some(entry) => lookup(entry, request, now, opts),
        None => lookup_miss(request),
    };
    if decision.serves_stored() {
        return Plan::Serve {
            // A stale answer (stale-while-revalidate, max-stale) names its reason.
            detail: (decision != Lookup::Fresh).then(|| decision.as_str()),
            refresh: decision == Lookup::StaleWhileRevalidate,
        };
    }
    if decision == Lookup::GatewayTimeout {
        return Plan::OnlyIfCached;
    }
    let nothing_stored = matches!(decision, Lookup::Miss(_));
    if request.method == "HEAD" || (nothing_stored && asks_for_part(request.headers)) {
        return Plan::Forward;
    }
    Plan::Fill(decision)
}

/// Request fields that ask for less than the whole current representation: a range, or a
/// conditional (RFC 9110 §13.1, §14.2).
const PARTIAL: [&str; 6] = [
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
];

/// True when the request carries a [`PARTIAL`] field.
fn asks_for_part(headers: &HeaderList) -> bool {
    PARTIAL.iter().any(|name| headers.contains(name))
}

/// True for the request fields a fill leaves out: it asks the origin for the whole current
/// representation (conditionally on the stored validators only, RFC 9111 §4.3.1), and the cache
/// then answers the client's own range or conditional from what it stored (§4.3.2; RFC 9110 §14).
pub fn fill_drops(name: &str) -> bool {
    PARTIAL.iter().any(|p| name.trim().eq_ignore_ascii_case(p))
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
