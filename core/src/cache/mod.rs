//! RFC 9111 shared-cache semantics, pure: every decision is a function of the request, the stored
//! or received response, the times the edge passes in, and [`CacheOptions`].
//!
//! | Concern | Items | Specification |
//! |---|---|---|
//! | Header fields, time | [`HeaderList`], [`RequestHead`], [`Timestamp`], [`parse_http_date`] | RFC 9110 §5.3, §5.6.7 |
//! | Directives, malformed values | [`ResponseDirectives`], [`RequestDirectives`], [`Delta`] | RFC 9111 §5.2, §4.2.1, §1.2.2; RFC 5861 |
//! | `CDN-Cache-Control` precedence | [`ResponseDirectives::for_shared_cache`] | RFC 9213 §2; RFC 8941 §3.2 |
//! | Storing | [`storability`], [`Entry::store`], [`headers_to_store`] | RFC 9111 §3, §3.1, §3.5 |
//! | Freshness lifetime, heuristics | [`freshness_lifetime`] | RFC 9111 §4.2.1, §4.2.2 |
//! | Age | [`current_age`] | RFC 9111 §4.2.3, §5.1 |
//! | Reuse, stale serving | [`lookup()`], [`on_origin_error`] | RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861 |
//! | Entity tags, lenient | [`EntityTag`] | RFC 9110 §8.8.3 |
//! | Validation, `304` | [`conditional_headers`], [`update_from_304`], [`answers_not_modified`], [`not_modified_headers`] | RFC 9111 §4.3; RFC 9110 §13.2.2, §15.4.5 |
//! | `Vary`, variants under one key | [`vary_fields`], [`SecondaryKey`], [`select_variant`], [`insert_variant`] | RFC 9111 §4.1 |
//! | `HEAD` | [`CacheMethod`], [`freshen_with_head`] | RFC 9111 §4.3.5 |
//! | Range requests from a stored `200` | [`range_reply`], [`RangeReply`] | RFC 9110 §14, §13.1.5 |
//! | Invalidation | [`invalidations`] | RFC 9111 §4.4 |
//! | One format for every tier | [`Record`], [`encode`], [`decode`], [`storage_key`], [`retention`] | — |
//! | The edge stage's ladder: bypass, serve or fill, single-flight, origin failure, warming | [`options()`], [`gate`], [`plan()`], [`after_wait`], [`after_origin`], [`warm()`] | RFC 9111 §3.5, §4; RFC 5861 |
//!
//! The flow at the edge: look the key up; no entry → [`lookup_miss`]; an entry → [`lookup()`]
//! says serve, serve-and-revalidate, or revalidate with [`conditional_headers`]. The origin's
//! answer is classified by [`ValidationResponse::classify`]: a `304` goes through
//! [`update_from_304`], a full response through [`Entry::store`], an error (or no answer) through
//! [`on_origin_error`]. Unsafe requests that succeed purge [`invalidations`]. The edge's cache stage
//! walks that flow as a ladder of pure steps, [`gate`] → [`plan()`] → [`after_wait`] /
//! [`after_origin`], which add the route policy's bypass rules and single-flight; [`warm()`] is
//! the cron trigger's.

mod age;
mod cache_control;
mod date;
mod directives;
mod entry;
mod etag;
mod freshness;
mod head;
mod invalidation;
mod lookup;
mod message;
mod options;
mod plan;
mod range;
mod record;
mod storable;
mod targeted;
mod uri;
mod validation;
mod variants;
mod vary;

#[cfg(test)]
mod properties;

pub use age::{age_value, current_age, date_value};
pub use date::{Timestamp, format_http_date, parse_http_date};
pub use directives::{
    Delta, DirectiveSource, FieldScope, MaxStale, RequestDirectives, ResponseDirectives,
};
pub use entry::Entry;
pub use etag::EntityTag;
pub use freshness::{
    HEURISTICALLY_CACHEABLE, Lifetime, LifetimeSource, freshness_lifetime, has_explicit_expiration,
    is_heuristically_cacheable,
};
pub use head::{CacheMethod, HeadFreshen, freshen_with_head};
pub use invalidation::{invalidations, is_safe_method};
pub use lookup::{
    Lookup, Miss, OnOriginError, Revalidate, StaleRefusal, is_origin_error, lookup, lookup_miss,
    on_origin_error, stale_if_error_window,
};
pub use message::{HeaderList, RequestHead};
pub use options::{
    CacheOptions, DEFAULT_ERROR_MAX_LIFETIME, DEFAULT_HEURISTIC_MAX, DEFAULT_TARGETS,
};
pub use plan::{
    AfterOrigin, AfterWait, BypassReason, FromOrigin, Gate, LEADER_MARGIN_MS, MAX_BODY, Plan,
    RequestFacts, TOO_LARGE, WARM_AHEAD_SECS, Warm, after_origin, after_wait, body_fits,
    fill_drops, flight_timeouts, gate, options, plan, shared_request_headers, warm, warms,
};
pub use range::{RangeReply, range_reply};
pub use record::{DecodeError, Record, decode, encode, retention, storage_key};
pub use storable::{NotStorable, Storable, UNDERSTOOD, headers_to_store, storability};
pub use validation::{
    Revalidated, ValidationResponse, answers_not_modified, conditional_headers,
    not_modified_headers, update_from_304,
};
pub use variants::{MAX_VARIANTS, Variant, insert as insert_variant, select as select_variant};
pub use vary::{SecondaryKey, VaryRefusal, vary_fields};
