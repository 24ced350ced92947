//! Cache directives (RFC 9111 §5.2, RFC 5861, RFC 8246) as typed values, and the choice between
//! `Cache-Control` and a targeted field such as `CDN-Cache-Control` (RFC 9213 §2.2).
//!
//! Malformed input is resolved once, here, so the rest of the cache never sees a string:
//! - an invalid delta-seconds (`max-age=abc`) is [`Delta::Invalid`]; for freshness that means
//!   "stale" (RFC 9111 §4.2.1: "caches are encouraged to consider responses that have invalid
//!   freshness information to be stale"), and for the stale windows it means no window;
//! - a delta directive repeated in `Cache-Control`, on one line or several (`max-age=5,
//!   max-age=100`), takes its first occurrence (§4.2.1: "either the first occurrence should be
//!   used or the response should be considered stale"). First occurrence is what the shared
//!   caches of the HTTP caching tests do (Fastly, Varnish, Squid pass
//!   `freshness-max-age-two-fresh-stale-*`), so an origin that appends a later override gets
//!   the same answer here as from them; an invalid first occurrence stays invalid (stale);
//! - `no-cache`/`private` field lists repeated merge, and the unqualified form absorbs them (the
//!   most restrictive reading);
//! - a targeted field (`CDN-Cache-Control`) is a Structured Fields Dictionary (RFC 9213 §2.1):
//!   its last member wins (RFC 8941 §4.2.2), and a key that is not lower-case (`Max-Age=60`)
//!   makes the whole field invalid, so it is ignored and `Cache-Control` applies. RFC 8941
//!   §3.2 allows only lower-case keys and RFC 9213 §2.1 forbids recovering from a parse error;
//!   being strict here never makes a response more cacheable than its `Cache-Control` says;
//! - an argument on a directive that takes none is ignored for the directives that widen caching
//!   (`public`, `immutable`) and honoured for those that restrict it, so a malformed field never
//!   makes a response more cacheable than its author could have meant.

use super::cache_control::{self, Arg, RawDirective};
use super::message::HeaderList;
use super::targeted;

/// A delta-seconds argument (RFC 9111 §1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// A valid value, already clamped to 2^31.
    Seconds(u32),
    /// Present but malformed.
    Invalid,
}

impl Delta {
    /// The value, or `None` if invalid.
    pub fn seconds(self) -> Option<u64> {
        match self {
            Self::Seconds(s) => Some(u64::from(s)),
            Self::Invalid => None,
        }
    }
}

/// What a `no-cache` or `private` response directive covers (RFC 9111 §5.2.2.4, §5.2.2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldScope {
    /// The unqualified form: the whole response.
    All,
    /// The qualified form: only these header fields (lower-case). A shared cache stores the
    /// response without them (§3.1), which is the simplest behaviour both directives allow.
    Fields(Vec<String>),
}

/// Where a response's directives came from (RFC 9213 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectiveSource {
    /// `Cache-Control` (and `Expires` still applies).
    CacheControl,
    /// The targeted field at this index of the target list; `Cache-Control` and `Expires` are
    /// ignored for this response.
    Targeted(usize),
}

/// The response directives a shared cache acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDirectives {
    /// The field these came from.
    pub source: DirectiveSource,
    /// §5.2.2.1.
    pub max_age: Option<Delta>,
    /// §5.2.2.10: preferred by a shared cache; implies `proxy-revalidate`.
    pub s_maxage: Option<Delta>,
    /// §5.2.2.4.
    pub no_cache: Option<FieldScope>,
    /// §5.2.2.7.
    pub private: Option<FieldScope>,
    /// §5.2.2.5.
    pub no_store: bool,
    /// §5.2.2.6; the core never transforms content, so nothing reads it.
    pub no_transform: bool,
    /// §5.2.2.2.
    pub must_revalidate: bool,
    /// §5.2.2.8.
    pub proxy_revalidate: bool,
    /// §5.2.2.3.
    pub must_understand: bool,
    /// §5.2.2.9.
    pub public: bool,
    /// RFC 8246; parsed for completeness, a shared cache has no reload to skip.
    pub immutable: bool,
    /// RFC 5861 §3.
    pub stale_while_revalidate: Option<Delta>,
    /// RFC 5861 §4.
    pub stale_if_error: Option<Delta>,
}

/// The request directives (RFC 9111 §5.2.1, RFC 5861 §4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    /// An invalid value is read as `max-age=0`: a malformed request directive never relaxes.
    pub max_age: Option<Delta>,
    /// A malformed or conflicting value is ignored: the reading that accepts no staleness.
    pub max_stale: Option<MaxStale>,
    /// An invalid value cannot be satisfied, so it forces validation.
    pub min_fresh: Option<Delta>,
    /// §5.2.1.4.
    pub no_cache: bool,
    /// §5.2.1.5.
    pub no_store: bool,
    /// §5.2.1.6.
    pub no_transform: bool,
    /// §5.2.1.7.
    pub only_if_cached: bool,
    /// The client accepts a stale response this long past its lifetime when the origin fails.
    pub stale_if_error: Option<u32>,
}

/// The `max-stale` request directive (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// No argument: any staleness.
    Any,
    /// At most this many seconds past the freshness lifetime.
    Seconds(u32),
}

/// One response directive, typed, from either syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    MaxAge(Delta),
    SMaxage(Delta),
    StaleWhileRevalidate(Delta),
    StaleIfError(Delta),
    NoCache(FieldScope),
    Private(FieldScope),
    NoStore,
    NoTransform,
    MustRevalidate,
    ProxyRevalidate,
    MustUnderstand,
    Public,
    Immutable,
    Unknown,
}

/// How repeated directives combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeats {
    /// `Cache-Control`: the first occurrence of a delta directive is used (RFC 9111 §4.2.1);
    /// field lists merge.
    FirstOccurrence,
    /// Structured-field dictionaries: the last member wins (RFC 8941 §4.2.2).
    LastWins,
}

impl ResponseDirectives {
    /// No directives at all.
    pub fn empty(source: DirectiveSource) -> Self {
        Self {
            source,
            max_age: None,
            s_maxage: None,
            no_cache: None,
            private: None,
            no_store: false,
            no_transform: false,
            must_revalidate: false,
            proxy_revalidate: false,
            must_understand: false,
            public: false,
            immutable: false,
            stale_while_revalidate: None,
            stale_if_error: None,
        }
    }

    /// Parses a `Cache-Control` response field value.
    pub fn parse(cache_control: &str) -> Self {
        let mut out = Self::empty(DirectiveSource::CacheControl);
        for raw in cache_control::parse(cache_control) {
            out.apply(from_cache_control(&raw), Repeats::FirstOccurrence);
        }
        out
    }

    /// The directives a CDN cache obeys: the first targeted field in `target_list` (lower-case
    /// names, most specific first) with a valid, non-empty value, else `Cache-Control`
    /// (RFC 9213 §2.2). An invalid or empty targeted field is ignored as if absent (§2.1).
    pub fn for_shared_cache(headers: &HeaderList, target_list: &[&str]) -> Self {
        for (index, name) in target_list.iter().enumerate() {
            if let Some(value) = headers.get(name)
                && let Some(members) = targeted::parse(&value)
            {
                let mut out = Self::empty(DirectiveSource::Targeted(index));
                for parsed in members {
                    out.apply(parsed, Repeats::LastWins);
                }
                return out;
            }
        }
        Self::parse(&headers.get("cache-control").unwrap_or_default())
    }

    /// True when a stale response may never be served without validation: `must-revalidate`,
    /// `proxy-revalidate`, and `s-maxage` (which carries proxy-revalidate for a shared cache,
    /// §5.2.2.10) (RFC 9111 §4.2.4).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }

    /// True when every reuse needs a successful validation (unqualified `no-cache`, §5.2.2.4).
    pub fn requires_validation(&self) -> bool {
        self.no_cache == Some(FieldScope::All)
    }

    pub(crate) fn apply(&mut self, parsed: Parsed, repeats: Repeats) {
        fn delta(slot: &mut Option<Delta>, new: Delta, repeats: Repeats) {
            *slot = match (*slot, repeats) {
                (Some(first), Repeats::FirstOccurrence) => Some(first),
                _ => Some(new),
            };
        }
        fn scope(slot: &mut Option<FieldScope>, new: FieldScope, repeats: Repeats) {
            *slot = match (slot.take(), new, repeats) {
                (
                    Some(FieldScope::Fields(mut a)),
                    FieldScope::Fields(b),
                    Repeats::FirstOccurrence,
                ) => {
                    a.extend(b);
                    a.sort();
                    a.dedup();
                    Some(FieldScope::Fields(a))
                }
                // The unqualified form is the most restrictive and absorbs field lists.
                (Some(FieldScope::All), _, Repeats::FirstOccurrence) => Some(FieldScope::All),
                (_, new, _) => Some(new),
            };
        }
        match parsed {
            Parsed::MaxAge(d) => delta(&mut self.max_age, d, repeats),
            Parsed::SMaxage(d) => delta(&mut self.s_maxage, d, repeats),
            Parsed::StaleWhileRevalidate(d) => delta(&mut self.stale_while_revalidate, d, repeats),
            Parsed::StaleIfError(d) => delta(&mut self.stale_if_error, d, repeats),
            Parsed::NoCache(s) => scope(&mut self.no_cache, s, repeats),
            Parsed::Private(s) => scope(&mut self.private, s, repeats),
            Parsed::NoStore => self.no_store = true,
            Parsed::NoTransform => self.no_transform = true,
            Parsed::MustRevalidate => self.must_revalidate = true,
            Parsed::ProxyRevalidate => self.proxy_revalidate = true,
            Parsed::MustUnderstand => self.must_understand = true,
            Parsed::Public => self.public = true,
            Parsed::Immutable => self.immutable = true,
            Parsed::Unknown => {}
        }
    }
}

/// A field-name list (`no-cache="Set-Cookie, X-Id"`), lower-cased; an empty list is read as the
/// unqualified form, the restrictive reading of a directive that names nothing.
pub(crate) fn field_scope(list: &str) -> FieldScope {
    let mut names: Vec<String> = list
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        FieldScope::All
    } else {
        FieldScope::Fields(names)
    }
}

fn from_cache_control(raw: &RawDirective) -> Parsed {
    let delta = || match &raw.arg {
        Arg::Value(v) => cache_control::delta_seconds(v).map_or(Delta::Invalid, Delta::Seconds),
        Arg::None | Arg::Malformed => Delta::Invalid,
    };
    let scope = || match &raw.arg {
        Arg::Value(list) => field_scope(list),
        Arg::None | Arg::Malformed => FieldScope::All,
    };
    let bare = matches!(raw.arg, Arg::None);
    match raw.name.as_str() {
        "max-age" => Parsed::MaxAge(delta()),
        "s-maxage" => Parsed::SMaxage(delta()),
        "stale-while-revalidate" => Parsed::StaleWhileRevalidate(delta()),
        "stale-if-error" => Parsed::StaleIfError(delta()),
        "no-cache" => Parsed::NoCache(scope()),
        "private" => Parsed::Private(scope()),
        "no-store" => Parsed::NoStore,
        "no-transform" => Parsed::NoTransform,
        "must-revalidate" => Parsed::MustRevalidate,
        "proxy-revalidate" => Parsed::ProxyRevalidate,
        "must-understand" => Parsed::MustUnderstand,
        "public" if bare => Parsed::Public,
        "immutable" if bare => Parsed::Immutable,
        _ => Parsed::Unknown,
    }
}

impl RequestDirectives {
    /// Parses a `Cache-Control` request field value.
    pub fn parse(cache_control: &str) -> Self {
        let mut out = Self::default();
        let mut max_stale_seen = false;
        let mut sie_seen = false;
        for raw in cache_control::parse(cache_control) {
            let value = match &raw.arg {
                Arg::Value(v) => cache_control::delta_seconds(v),
                Arg::None | Arg::Malformed => None,
            };
            let delta = value.map_or(Delta::Invalid, Delta::Seconds);
            let merge = |slot: Option<Delta>| match slot {
                Some(old) if old != delta => Some(Delta::Invalid),
                _ => Some(delta),
            };
            match raw.name.as_str() {
                "max-age" => out.max_age = merge(out.max_age),
                "min-fresh" => out.min_fresh = merge(out.min_fresh),
                "max-stale" => {
                    // Malformed or conflicting: ignored, the reading that allows no staleness.
                    let new = match (&raw.arg, value) {
                        (Arg::None, _) => Some(MaxStale::Any),
                        (_, Some(s)) => Some(MaxStale::Seconds(s)),
                        _ => None,
                    };
                    out.max_stale = match (max_stale_seen, out.max_stale) {
                        (false, _) => new,
                        (true, old) if old == new => old,
                        (true, _) => None,
                    };
                    max_stale_seen = true;
                }
                "stale-if-error" => {
                    out.stale_if_error = match (sie_seen, out.stale_if_error) {
                        (false, _) => value,
                        (true, old) if old == value => old,
                        (true, _) => None,
                    };
                    sie_seen = true;
                }
                "no-cache" => out.no_cache = true,
                "no-store" => out.no_store = true,
                "no-transform" => out.no_transform = true,
                "only-if-cached" => out.only_if_cached = true,
                _ => {}
            }
        }
        out
    }

    /// The request's directives, from its `Cache-Control` field lines.
    pub fn from_headers(headers: &HeaderList) -> Self {
        Self::parse(&headers.get("cache-control").unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
