//! Whether a stored response may answer a request (RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861), and
//! what to do with it when the origin then fails.
//!
//! Serving stale is the exception: only within a `stale-while-revalidate` window (while a
//! background revalidation runs), within what the client's `max-stale` accepts, or within a
//! `stale-if-error` window once the origin has failed. `must-revalidate`, `proxy-revalidate`,
//! `s-maxage` and an unqualified `no-cache` forbid all three (§4.2.4).

use super::date::Timestamp;
use super::directives::{Delta, MaxStale, RequestDirectives};
use super::entry::Entry;
use super::head::CacheMethod;
use super::message::RequestHead;
use super::options::CacheOptions;
use super::storable::shared_with_credentials;

/// How a request may be answered given a stored entry (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Fresh: serve it.
    Fresh,
    /// Stale within `stale-while-revalidate`: serve it and revalidate in the background
    /// (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Stale, but within the client's `max-stale` (§5.2.1.2): serve it.
    StaleAllowed,
    /// Ask the origin first, conditionally (§4.3.1); see [`on_origin_error`] if it fails.
    Revalidate(Revalidate),
    /// The entry cannot answer this request: forward it as a miss.
    Miss(Miss),
    /// `only-if-cached` and nothing servable: answer `504` (§5.2.1.7).
    GatewayTimeout,
}

impl Lookup {
    /// A stable label for logs and `Cache-Status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::StaleWhileRevalidate => "stale-while-revalidate",
            Self::StaleAllowed => "stale-allowed",
            Self::Revalidate(r) => r.as_str(),
            Self::Miss(m) => m.as_str(),
            Self::GatewayTimeout => "only-if-cached",
        }
    }

    /// True when the stored response is sent to the client now.
    pub fn serves_stored(&self) -> bool {
        matches!(
            self,
            Self::Fresh | Self::StaleWhileRevalidate | Self::StaleAllowed
        )
    }
}

/// Why the origin must be asked before the entry is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revalidate {
    /// Stale with no window that allows serving it.
    Stale,
    /// Stale and `must-revalidate`, `proxy-revalidate` or `s-maxage` forbid serving it (§4.2.4).
    MustRevalidate,
    /// The response said `no-cache` (§5.2.2.4).
    NoCache,
    /// The request said `no-cache` (§5.2.1.4).
    RequestNoCache,
    /// Older than the request's `max-age` (§5.2.1.1).
    RequestMaxAge,
    /// Not fresh for the request's `min-fresh` seconds more (§5.2.1.3).
    RequestMinFresh,
}

impl Revalidate {
    /// A stable label for logs and `Cache-Status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stale => "revalidate-stale",
            Self::MustRevalidate => "revalidate-must",
            Self::NoCache => "revalidate-no-cache",
            Self::RequestNoCache => "revalidate-request-no-cache",
            Self::RequestMaxAge => "revalidate-request-max-age",
            Self::RequestMinFresh => "revalidate-request-min-fresh",
        }
    }
}

/// Why there is nothing to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No entry under the key.
    NotStored,
    /// An entry for another variant (§4.1).
    VaryMismatch,
    /// A method the cache does not answer (only `GET` and `HEAD`, §4).
    Method,
    /// The request carries `Authorization` and the stored response did not opt in to being
    /// shared with credentialed requests (§3.5): the origin may answer it differently.
    Credentials,
}

impl Miss {
    /// A stable label for logs and `Cache-Status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotStored => "miss",
            Self::VaryMismatch => "miss-vary",
            Self::Method => "miss-method",
            Self::Credentials => "miss-credentials",
        }
    }
}

/// What to do when the origin failed (a `500`, `502`, `503` or `504`, or no answer: RFC 5861
/// §4) while the request needed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOriginError {
    /// The entry is still fresh (the origin was asked only because the request wanted it):
    /// serve it.
    ServeFresh,
    /// Serve the stale entry (`stale-if-error`).
    ServeStale,
    /// Pass the error on (or a `504`, §5.2.2.2).
    Fail(StaleRefusal),
}

impl OnOriginError {
    /// A stable label for logs and `Cache-Status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ServeFresh => "fresh-on-error",
            Self::ServeStale => "stale-if-error",
            Self::Fail(r) => r.as_str(),
        }
    }
}

/// Why a stale entry may not stand in for a failed origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleRefusal {
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage` (§4.2.4).
    MustRevalidate,
    /// Unqualified `no-cache` (§5.2.2.4): never used without a successful validation.
    NoCache,
    /// Staler than every `stale-if-error` window.
    TooStale,
    /// The entry does not answer this request (method or variant).
    Unusable,
}

impl StaleRefusal {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MustRevalidate => "error-must-revalidate",
            Self::NoCache => "error-no-cache",
            Self::TooStale => "error-too-stale",
            Self::Unusable => "error-unusable",
        }
    }
}

/// True for the statuses RFC 5861 §4 counts as the origin failing.
pub fn is_origin_error(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// The decision when nothing is stored for the request.
pub fn lookup_miss(request: &RequestHead<'_>) -> Lookup {
    only_if_cached(request, Lookup::Miss(Miss::NotStored))
}

/// May `entry` answer `request` at `now`?
pub fn lookup(
    entry: &Entry,
    request: &RequestHead<'_>,
    now: Timestamp,
    opts: &CacheOptions<'_>,
) -> Lookup {
    only_if_cached(request, decide(entry, request, now, opts))
}

fn only_if_cached(request: &RequestHead<'_>, decision: Lookup) -> Lookup {
    let wants_stored_only = RequestDirectives::from_headers(request.headers).only_if_cached;
    match decision {
        Lookup::Revalidate(_) | Lookup::Miss(_) if wants_stored_only => Lookup::GatewayTimeout,
        other => other,
    }
}

fn decide(entry: &Entry, request: &RequestHead<'_>, now: Timestamp, opts: &CacheOptions) -> Lookup {
    if CacheMethod::parse(request.method).is_none() {
        return Lookup::Miss(Miss::Method);
    }
    if !entry.matches(request.headers) {
        return Lookup::Miss(Miss::VaryMismatch);
    }
    let req = RequestDirectives::from_headers(request.headers);
    let resp = entry.directives(opts);
    // §3.5 read the other way: a response the origin did not mark shareable with credentialed
    // requests is not what it would answer one (as Varnish, which passes them, and unlike caches
    // that serve everything they hold).
    if request.headers.contains("authorization") && !shared_with_credentials(&resp) {
        return Lookup::Miss(Miss::Credentials);
    }
    let lifetime = entry.lifetime(opts).seconds;
    let age = entry.current_age(now);
    if resp.requires_validation() {
        return Lookup::Revalidate(Revalidate::NoCache);
    }
    if req.no_cache {
        return Lookup::Revalidate(Revalidate::RequestNoCache);
    }
    // An invalid request max-age reads as 0: a malformed request directive never relaxes. Ages
    // are whole seconds, so `max-age=0` (a reload) would accept anything stored within the last
    // second; it asks for a response generated now, which only the origin can give.
    if let Some(max_age) = req.max_age.map(|d| d.seconds().unwrap_or(0))
        && (age > max_age || max_age == 0)
    {
        return Lookup::Revalidate(Revalidate::RequestMaxAge);
    }
    if let Some(min_fresh) = req.min_fresh {
        // "still fresh for at least N seconds": fresh at now + N; invalid cannot be met.
        let met = min_fresh
            .seconds()
            .is_some_and(|n| lifetime > age.saturating_add(n));
        if !met {
            return Lookup::Revalidate(Revalidate::RequestMinFresh);
        }
    }
    // §4.2: response_is_fresh = (freshness_lifetime > current_age)
    if lifetime > age {
        return Lookup::Fresh;
    }
    if resp.forbids_stale() {
        return Lookup::Revalidate(Revalidate::MustRevalidate);
    }
    let staleness = age - lifetime;
    let swr = window(resp.stale_while_revalidate, opts.stale_while_revalidate);
    if staleness < swr {
        return Lookup::StaleWhileRevalidate;
    }
    match req.max_stale {
        // "exceeded its freshness lifetime by no more than the specified number of seconds"
        Some(MaxStale::Any) => Lookup::StaleAllowed,
        Some(MaxStale::Seconds(n)) if staleness <= u64::from(n) => Lookup::StaleAllowed,
        _ => Lookup::Revalidate(Revalidate::Stale),
    }
}

/// A stale window: the response's directive (invalid counts as none) or the cache's grant,
/// whichever is longer.
fn window(directive: Option<Delta>, granted: u64) -> u64 {
    directive.and_then(Delta::seconds).unwrap_or(0).max(granted)
}

/// The `stale-if-error` window for `entry` and `request`: the longest of the response's
/// directive, the request's (RFC 5861 §4 defines both) and the cache's grant.
pub fn stale_if_error_window(entry: &Entry, request: &RequestHead<'_>, opts: &CacheOptions) -> u64 {
    let req = RequestDirectives::from_headers(request.headers);
    window(entry.directives(opts).stale_if_error, opts.stale_if_error)
        .max(req.stale_if_error.map_or(0, u64::from))
}

/// The origin failed while `request` needed it: may `entry` stand in?
///
/// RFC 5861 §4: within `stale-if-error`, a stale response may be used "regardless of other
/// freshness information", so request directives such as `no-cache` do not prevent it; the
/// response's own prohibitions do (RFC 9111 §4.2.4).
pub fn on_origin_error(
    entry: &Entry,
    request: &RequestHead<'_>,
    now: Timestamp,
    opts: &CacheOptions<'_>,
) -> OnOriginError {
    if CacheMethod::parse(request.method).is_none() || !entry.matches(request.headers) {
        return OnOriginError::Fail(StaleRefusal::Unusable);
    }
    let resp = entry.directives(opts);
    if resp.requires_validation() {
        return OnOriginError::Fail(StaleRefusal::NoCache);
    }
    let lifetime = entry.lifetime(opts).seconds;
    let age = entry.current_age(now);
    if lifetime > age {
        return OnOriginError::ServeFresh;
    }
    if resp.forbids_stale() {
        return OnOriginError::Fail(StaleRefusal::MustRevalidate);
    }
    if age - lifetime < stale_if_error_window(entry, request, opts) {
        OnOriginError::ServeStale
    } else {
        OnOriginError::Fail(StaleRefusal::TooStale)
    }
}

#[cfg(test)]
mod tests;
