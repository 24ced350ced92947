//! `HEAD` and the cache (RFC 9111 §4, §4.3.5): a stored `GET` response answers a `HEAD` request
//! (without its body), and a `HEAD` response can freshen or invalidate a stored `GET` response,
//! but is never stored itself.

use super::date::{Timestamp, parse_http_date};
use super::entry::Entry;
use super::message::{HeaderList, RequestHead};
use super::options::CacheOptions;
use super::validation::{confirm, etag_selects, merge_headers};

/// A method a stored `GET` response can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMethod {
    /// `GET`: the stored response with its body.
    Get,
    /// `HEAD`: the stored `GET` response's header fields, no body (RFC 9110 §9.3.2: a HEAD
    /// response is what GET would have sent, without content).
    Head,
}

impl CacheMethod {
    /// `GET` or `HEAD`; method names are case-sensitive (RFC 9110 §9.1).
    pub fn parse(method: &str) -> Option<Self> {
        match method {
            "GET" => Some(Self::Get),
            "HEAD" => Some(Self::Head),
            _ => None,
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
        }
    }

    /// True when the stored body is sent.
    pub fn sends_body(&self) -> bool {
        *self == Self::Get
    }
}

/// What a `HEAD` response does to the stored `GET` response it could have selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadFreshen {
    /// Validators agree: store this freshened entry in place of the old one.
    Updated(Entry),
    /// The representation changed, or its headers can no longer be stored: drop the entry.
    /// (§4.3.5 says "consider the stored response to be stale"; without a stale flag in the
    /// entry, dropping it is the behaviour that can never serve the old body as current.)
    Invalidate,
    /// Not a `200`: §4.3.5 only acts on one.
    Ignore,
}

impl HeadFreshen {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Updated(_) => "head-updated",
            Self::Invalidate => "head-invalidate",
            Self::Ignore => "head-ignore",
        }
    }
}

/// Applies a `HEAD` response (`status`, `headers`) to `entry` (§4.3.5).
///
/// The entry is updated only if every validator the `HEAD` response carries matches the stored
/// one (an `ETag` as for a `304`, [`EntityTag`](super::EntityTag) strong or weak as it says; a
/// `Last-Modified` as the same date) and, when both have one, `Content-Length` agrees. A
/// `HEAD` response with no validator cannot show that the body is unchanged, so it invalidates.
pub fn freshen_with_head(
    entry: &Entry,
    request: &RequestHead<'_>,
    status: u16,
    headers: &HeaderList,
    request_time: Timestamp,
    response_time: Timestamp,
    opts: &CacheOptions<'_>,
) -> HeadFreshen {
    if status != 200 {
        return HeadFreshen::Ignore;
    }
    let stored = entry.headers();
    // Per validator: None when the HEAD response lacks it, else whether it matches the stored one.
    let etag = headers.get("etag").map(|new| {
        stored
            .get("etag")
            .is_some_and(|old| etag_selects(&new, &old))
    });
    let last_modified = headers.get("last-modified").map(|new| {
        let date = |v: &str| parse_http_date(v, Timestamp::EPOCH);
        let old = stored.get("last-modified");
        date(&new).is_some() && old.is_some_and(|old| date(&old) == date(&new))
    });
    let validators = [etag, last_modified];
    let validated = validators.contains(&Some(true)) && !validators.contains(&Some(false));
    let length_agrees = match (headers.get("content-length"), stored.get("content-length")) {
        (Some(new), Some(old)) => new.trim() == old.trim(),
        _ => true,
    };
    if !validated || !length_agrees {
        return HeadFreshen::Invalidate;
    }
    let merged = merge_headers(stored, headers, response_time);
    match confirm(entry, request, merged, request_time, response_time, opts) {
        Ok(updated) => HeadFreshen::Updated(updated),
        Err(_) => HeadFreshen::Invalidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::lookup::{Lookup, lookup};

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    fn stored() -> Entry {
        let none = HeaderList::new();
        let resp = h(&[
            ("Cache-Control", "max-age=60"),
            ("ETag", "\"v1\""),
            ("Content-Length", "5"),
            ("X-Version", "1"),
        ]);
        let opts = CacheOptions::default();
        Entry::store(
            &RequestHead::new("GET", &none),
            200,
            &resp,
            t(0),
            t(0),
            &opts,
        )
        .unwrap()
    }

    #[test]
    fn methods_a_stored_get_answers() {
        assert_eq!(CacheMethod::parse("GET"), Some(CacheMethod::Get));
        assert_eq!(CacheMethod::parse("HEAD"), Some(CacheMethod::Head));
        assert_eq!(
            CacheMethod::parse("head"),
            None,
            "RFC 9110 §9.1: case-sensitive"
        );
        assert_eq!(CacheMethod::parse("POST"), None);
        assert!(!CacheMethod::Head.sends_body());
        let none = HeaderList::new();
        let opts = CacheOptions::default();
        assert_eq!(
            lookup(&stored(), &RequestHead::new("HEAD", &none), t(10), &opts),
            Lookup::Fresh,
            "§4: HEAD served from a stored GET"
        );
    }

    #[test]
    fn freshen_with_head_table() {
        let none = HeaderList::new();
        let req = RequestHead::new("HEAD", &none);
        let opts = CacheOptions::default();
        // (status, HEAD response fields, outcome, rule)
        #[rustfmt::skip]
        let cases = [
            (200, h(&[("ETag", "\"v1\""), ("X-Version", "2")]), "head-updated", "§4.3.5: a matching ETag updates"),
            (200, h(&[("ETag", "\"v2\"")]), "head-invalidate", "§4.3.5: another ETag → stale"),
            (200, h(&[("ETag", "v1"), ("X-Version", "2")]), "head-updated", "the same tag, unquoted (lenient EntityTag)"),
            (200, h(&[("ETag", "W/\"v1\""), ("X-Version", "2")]), "head-updated", "RFC 9110 §8.8.3.2: a weak tag matches weakly"),
            (200, h(&[("ETag", "\"v1\""), ("Last-Modified", "Thu, 01 Jan 2015 00:00:00 GMT")]), "head-invalidate", "a validator the entry lacks cannot match"),
            (200, h(&[("ETag", "\"v1\""), ("Content-Length", "6")]), "head-invalidate", "§4.3.5: Content-Length differs"),
            (200, h(&[("X-Version", "2")]), "head-invalidate", "no validator: nothing confirms the body"),
            (200, h(&[("ETag", "\"v1\""), ("Cache-Control", "no-store")]), "head-invalidate", "§3: no longer storable"),
            (404, h(&[("ETag", "\"v1\"")]), "head-ignore", "§4.3.5: only a 200 acts"),
        ];
        for (status, headers, want, rule) in cases {
            let got = freshen_with_head(&stored(), &req, status, &headers, t(100), t(100), &opts);
            assert_eq!(got.as_str(), want, "{rule}");
            if let HeadFreshen::Updated(e) = got {
                assert_eq!(
                    e.headers().get("x-version").as_deref(),
                    Some("2"),
                    "§3.2: fields replaced"
                );
                assert_eq!(e.headers().get("content-length").as_deref(), Some("5"));
                assert_eq!(e.response_time(), t(100), "the origin confirmed it at 100");
            }
        }
    }
}
