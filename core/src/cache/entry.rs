//! A stored response: the one entry format every tier (memory, Cache API, KV) holds.
//!
//! An [`Entry`] can only be made from a response the origin just sent ([`Entry::store`]) or
//! confirmed ([`super::validation::update_from_304`], [`super::head::freshen_with_head`]); its
//! fields are private, so no code path can refresh a stale entry's times without the origin
//! (T-CA-07). The body is kept beside it by the tier; the core never sees bytes.

use serde::{Deserialize, Serialize};

use super::age::current_age;
use super::date::{Timestamp, format_http_date};
use super::directives::ResponseDirectives;
use super::freshness::{Lifetime, freshness_lifetime};
use super::message::{HeaderList, RequestHead};
use super::options::CacheOptions;
use super::storable::{NotStorable, check, headers_to_store};
use super::vary::{SecondaryKey, vary_fields};

/// A stored response's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    status: u16,
    headers: HeaderList,
    /// When the request that produced (or last validated) this response was sent.
    request_time: Timestamp,
    /// When that response arrived.
    response_time: Timestamp,
    /// The request's values for the `Vary`-listed headers (RFC 9111 §4.1).
    secondary_key: SecondaryKey,
}

impl Entry {
    /// Stores `status` + `headers`, the origin's response to `request`, sent at `request_time`
    /// and received at `response_time`; or says why it may not be stored (RFC 9111 §3).
    ///
    /// The stored headers drop the fields §3.1 excludes, and gain a `Date` if the origin sent
    /// none (RFC 9110 §6.6.1: a recipient that caches such a response MUST add one).
    pub fn store(
        request: &RequestHead<'_>,
        status: u16,
        headers: &HeaderList,
        request_time: Timestamp,
        response_time: Timestamp,
        opts: &CacheOptions<'_>,
    ) -> Result<Self, NotStorable> {
        let directives = ResponseDirectives::for_shared_cache(headers, opts.target_list);
        let mut kept = headers_to_store(headers, &directives);
        let varied = check(request, status, &kept, &directives, opts)?;
        if !kept.contains("date") {
            kept.push("Date", format_http_date(response_time));
        }
        Ok(Self {
            status,
            headers: kept,
            request_time,
            response_time,
            secondary_key: SecondaryKey::from_request(&varied, request.headers),
        })
    }

    /// Builds an entry from headers that already passed [`check`] (validation and HEAD updates).
    pub(crate) fn confirmed(
        status: u16,
        headers: HeaderList,
        request_time: Timestamp,
        response_time: Timestamp,
        secondary_key: SecondaryKey,
    ) -> Self {
        Self {
            status,
            headers,
            request_time,
            response_time,
            secondary_key,
        }
    }

    /// The stored status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The stored header fields, as stored (with the origin's `Age`, if any).
    pub fn headers(&self) -> &HeaderList {
        &self.headers
    }

    /// When the request behind this entry was sent.
    pub fn request_time(&self) -> Timestamp {
        self.request_time
    }

    /// When the response behind this entry arrived.
    pub fn response_time(&self) -> Timestamp {
        self.response_time
    }

    /// The secondary key this entry was stored under.
    pub fn secondary_key(&self) -> &SecondaryKey {
        &self.secondary_key
    }

    /// The directives this cache obeys for this entry (targeted field or `Cache-Control`).
    pub fn directives(&self, opts: &CacheOptions<'_>) -> ResponseDirectives {
        ResponseDirectives::for_shared_cache(&self.headers, opts.target_list)
    }

    /// The freshness lifetime (RFC 9111 §4.2.1), then clamped into the route policy's
    /// `[min_lifetime, max_lifetime]`, then, for a 4xx/5xx, capped at `error_max_lifetime`.
    pub fn lifetime(&self, opts: &CacheOptions<'_>) -> Lifetime {
        let mut lifetime = freshness_lifetime(
            self.status,
            &self.headers,
            &self.directives(opts),
            self.response_time,
            opts.heuristic_max,
        );
        lifetime.seconds = lifetime.seconds.max(opts.min_lifetime);
        if let Some(ceiling) = opts.max_lifetime {
            lifetime.seconds = lifetime.seconds.min(ceiling);
        }
        if self.status >= 400 {
            lifetime.seconds = lifetime.seconds.min(opts.error_max_lifetime);
        }
        lifetime
    }

    /// The age at `now` (RFC 9111 §4.2.3).
    pub fn current_age(&self, now: Timestamp) -> u64 {
        current_age(&self.headers, self.request_time, self.response_time, now)
    }

    /// True when this entry may answer a request with `headers`: the `Vary`-listed fields match
    /// those of the request that stored it (RFC 9111 §4.1). `Vary: *` never matches.
    pub fn matches(&self, request_headers: &HeaderList) -> bool {
        match vary_fields(&self.headers) {
            Ok(fields) => {
                SecondaryKey::from_request(&fields, request_headers) == self.secondary_key
            }
            Err(_) => false,
        }
    }

    /// The header fields to send when serving this entry at `now` without validation: `Age`
    /// replaced by the current age (RFC 9111 §4: "a cache MUST generate an Age header field").
    pub fn headers_at(&self, now: Timestamp) -> HeaderList {
        let mut out = self.headers.clone();
        out.set("Age", self.current_age(now).to_string());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn route_policy_clamps_the_lifetime() {
        let req_headers = HeaderList::default();
        let req = RequestHead::new("GET", &req_headers);
        // (status, origin Cache-Control, floor, ceiling, error ceiling) -> lifetime
        #[rustfmt::skip]
        let cases = [
            (200, "max-age=60", 0, None, 60, 60, "the origin's lifetime"),
            (200, "max-age=60", 300, None, 60, 300, "the route's floor"),
            (200, "max-age=6000", 0, Some(600), 60, 600, "the route's ceiling"),
            (200, "max-age=6000", 10, Some(600), 60, 600, "ceiling within bounds"),
            (200, "max-age=5", 10, Some(600), 60, 10, "floor within bounds"),
            (404, "max-age=600", 0, None, 60, 60, "T-CA-05: an error is capped by error_max_lifetime"),
            (503, "max-age=600", 300, None, 30, 30, "after the route's floor"),
            (404, "max-age=20", 0, None, 60, 20, "a shorter lifetime stands"),
            (399, "max-age=600", 0, None, 60, 600, "not an error status"),
        ];
        for (status, cc, floor, ceiling, error_max_lifetime, want, rule) in cases {
            let resp: HeaderList = [("Cache-Control", cc)].into_iter().collect();
            let opts = CacheOptions {
                min_lifetime: floor,
                max_lifetime: ceiling,
                error_max_lifetime,
                ..CacheOptions::default()
            };
            let entry = Entry::store(&req, status, &resp, t(1000), t(1000), &opts).unwrap();
            assert_eq!(entry.lifetime(&opts).seconds, want, "{rule}: {status} {cc}");
        }
    }

    #[test]
    fn store_adds_date_and_keys_on_vary() {
        let opts = CacheOptions::default();
        let req_headers: HeaderList = [("Accept-Language", "en")].into_iter().collect();
        let resp: HeaderList = [("Cache-Control", "max-age=60"), ("Vary", "accept-language")]
            .into_iter()
            .collect();
        let req = RequestHead::new("GET", &req_headers);
        let entry = Entry::store(&req, 200, &resp, t(1000), t(1001), &opts).unwrap();
        assert_eq!(
            entry.headers().get("date").as_deref(),
            Some(format_http_date(t(1001)).as_str()),
            "RFC 9110 §6.6.1: Date added"
        );
        assert!(entry.matches(&req_headers));
        let fr: HeaderList = [("Accept-Language", "fr")].into_iter().collect();
        assert!(!entry.matches(&fr), "§4.1: another variant");
        assert_eq!(
            entry.current_age(t(1011)),
            11,
            "response_delay 1 + resident 10"
        );
        assert_eq!(entry.headers_at(t(1011)).get("age").as_deref(), Some("11"));
        assert_eq!(entry.lifetime(&opts).seconds, 60);
    }

    #[test]
    fn one_format_for_every_tier_round_trips_through_json() {
        let none = HeaderList::new();
        let resp: HeaderList = [("Cache-Control", "max-age=60"), ("ETag", "\"v1\"")]
            .into_iter()
            .collect();
        let opts = CacheOptions::default();
        let entry = Entry::store(
            &RequestHead::new("GET", &none),
            200,
            &resp,
            t(5),
            t(6),
            &opts,
        )
        .unwrap();
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), entry);
    }

    #[test]
    fn a_refused_response_yields_no_entry() {
        let none = HeaderList::new();
        let resp: HeaderList = [("Cache-Control", "no-store")].into_iter().collect();
        let got = Entry::store(
            &RequestHead::new("GET", &none),
            200,
            &resp,
            t(0),
            t(0),
            &CacheOptions::default(),
        );
        assert_eq!(got, Err(NotStorable::NoStore));
    }
}
