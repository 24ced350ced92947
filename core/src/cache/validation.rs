//! Validation (RFC 9111 §4.3): the conditional request that revalidates a stored response, what
//! the origin's answer means, freshening the entry from a `304`, and answering a client's own
//! conditional request from the cache.

use super::date::{Timestamp, format_http_date, parse_http_date};
use super::directives::ResponseDirectives;
use super::entry::Entry;
use super::etag::EntityTag;
use super::lookup::is_origin_error;
use super::message::{HeaderList, RequestHead};
use super::options::CacheOptions;
use super::storable::{NotStorable, check, headers_to_store};
use super::vary::SecondaryKey;
use crate::headers::is_hop_by_hop;

/// The conditional header fields for revalidating `entry` (§4.3.1): `If-None-Match` with its
/// entity tag (MUST, when it has one) and `If-Modified-Since` with its `Last-Modified` (SHOULD:
/// one stored response, never a subrange here). The tag is sent in its canonical form
/// ([`EntityTag`]'s `Display`).
pub fn conditional_headers(entry: &Entry) -> HeaderList {
    let mut out = HeaderList::new();
    if let Some(etag) = entry.headers().get("etag") {
        // The canonical form of a tag the origin sent unquoted (`W/"x"`, `"x"`); a tag that does
        // not parse is sent as stored, for the origin to judge.
        let tag = EntityTag::parse(&etag).map_or_else(|| etag.into_owned(), |t| t.to_string());
        out.push("If-None-Match", tag);
    }
    if let Some(last_modified) = entry.headers().get("last-modified") {
        out.push("If-Modified-Since", last_modified.into_owned());
    }
    out
}

/// What the origin's answer to a revalidation means (§4.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationResponse {
    /// `304`: freshen the entry with [`update_from_304`] and serve it.
    NotModified,
    /// A full response: serve it, and store it in place of the entry if
    /// [`Entry::store`] allows.
    Full,
    /// `500`, `502`, `503`, `504`: act as if the origin had not answered
    /// ([`super::lookup::on_origin_error`]); never store it over the entry.
    OriginError,
}

impl ValidationResponse {
    /// Classifies the origin's status.
    pub fn classify(status: u16) -> Self {
        match status {
            304 => Self::NotModified,
            s if is_origin_error(s) => Self::OriginError,
            _ => Self::Full,
        }
    }

    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotModified => "not-modified",
            Self::Full => "full",
            Self::OriginError => "origin-error",
        }
    }
}

/// The outcome of applying a `304` to a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidated {
    /// The origin confirmed the entry: store this one in its place and serve it.
    Updated(Entry),
    /// The origin confirmed it, but the updated response may no longer be stored (it now says
    /// `no-store` or `private`, carries `Set-Cookie`, …). Serve the stored body with `headers`
    /// to this client only, and drop the entry.
    Uncacheable {
        /// The stored fields updated by the `304`, for this response only.
        headers: HeaderList,
        /// Why the updated response may not be stored.
        reason: NotStorable,
    },
    /// The `304` does not select this response (§4.3.4): leave the entry alone and fetch again
    /// without conditions.
    Mismatch,
}

impl Revalidated {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Updated(_) => "updated",
            Self::Uncacheable { .. } => "uncacheable",
            Self::Mismatch => "mismatch",
        }
    }
}

/// Fields a newer response never overwrites in a stored one (§3.2): `Content-Length` by name,
/// and the ones the stored body depends on (its encoding and range), which a header update cannot
/// change without the bytes.
const NOT_UPDATED: [&str; 4] = [
    "content-length",
    "content-encoding",
    "content-range",
    "transfer-encoding",
];

/// Freshens `entry` with a `304` received at `response_time` for a request sent at
/// `request_time` (§4.3.4).
///
/// The `304` must select the entry: a strong `ETag` must equal the stored strong `ETag`; a weak
/// one must match it weakly; without an `ETag`, `Last-Modified` must equal; with no validator at
/// all, only an entry without validators is selected. Otherwise [`Revalidated::Mismatch`].
pub fn update_from_304(
    entry: &Entry,
    request: &RequestHead<'_>,
    not_modified: &HeaderList,
    request_time: Timestamp,
    response_time: Timestamp,
    opts: &CacheOptions<'_>,
) -> Revalidated {
    if !selects(entry.headers(), not_modified) {
        return Revalidated::Mismatch;
    }
    let merged = merge_headers(entry.headers(), not_modified, response_time);
    confirm(entry, request, merged, request_time, response_time, opts).map_or_else(
        |(headers, reason)| Revalidated::Uncacheable { headers, reason },
        Revalidated::Updated,
    )
}

/// Re-checks merged headers for storage and builds the confirmed entry (§3.2 update + §3).
pub(crate) fn confirm(
    entry: &Entry,
    request: &RequestHead<'_>,
    merged: HeaderList,
    request_time: Timestamp,
    response_time: Timestamp,
    opts: &CacheOptions<'_>,
) -> Result<Entry, (HeaderList, NotStorable)> {
    // The entry is a GET response whichever of GET or HEAD asked for its validation.
    let as_get = RequestHead::new("GET", request.headers);
    let directives = ResponseDirectives::for_shared_cache(&merged, opts.target_list);
    let kept = headers_to_store(&merged, &directives);
    match check(&as_get, entry.status(), &kept, &directives, opts) {
        Ok(varied) => Ok(Entry::confirmed(
            entry.status(),
            kept,
            request_time,
            response_time,
            SecondaryKey::from_request(&varied, request.headers),
        )),
        Err(reason) => Err((merged, reason)),
    }
}

/// The stored fields updated with a newer response's (§3.2): each field the newer response has
/// replaces every stored line of that name, except [`NOT_UPDATED`] and hop-by-hop fields.
///
/// `Age` is dropped from the stored fields even when the newer response has none: it measured
/// the time since the origin generated the old response (§5.1), and the origin just validated
/// it. A newer response without `Date` gets `response_time` (RFC 9110 §6.6.1), or the stored
/// `Date` would make the freshened entry look as old as before.
pub(crate) fn merge_headers(
    stored: &HeaderList,
    newer: &HeaderList,
    response_time: Timestamp,
) -> HeaderList {
    let connection = newer.get("connection");
    let updatable = |name: &str| {
        let name = name.trim();
        !NOT_UPDATED.iter().any(|n| n.eq_ignore_ascii_case(name))
            && !is_hop_by_hop(name, connection.as_deref())
    };
    let replaced: Vec<String> = newer
        .iter()
        .filter(|(n, _)| updatable(n))
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .collect();
    let mut out: HeaderList = stored
        .iter()
        .filter(|(n, _)| {
            let n = n.trim();
            !n.eq_ignore_ascii_case("age") && !replaced.iter().any(|r| r.eq_ignore_ascii_case(n))
        })
        .collect();
    for (name, value) in newer.iter().filter(|(n, _)| updatable(n)) {
        out.push(name, value);
    }
    if !newer.contains("date") {
        out.set("Date", format_http_date(response_time));
    }
    out
}

/// §4.3.4: does the newer response select the stored one for update?
fn selects(stored: &HeaderList, newer: &HeaderList) -> bool {
    if let Some(tag) = newer.get("etag") {
        return stored
            .get("etag")
            .is_some_and(|old| etag_selects(&tag, &old));
    }
    let date = |h: &HeaderList| {
        h.get("last-modified")
            .and_then(|v| parse_http_date(&v, Timestamp::EPOCH))
    };
    match newer.get("last-modified") {
        Some(_) => date(newer).is_some() && date(newer) == date(stored),
        None => !stored.contains("etag") && !stored.contains("last-modified"),
    }
}

/// Does a newer response's `ETag` field value select a stored one (§4.3.4, §4.3.5)? A strong tag
/// selects only the same strong tag; a weak one any tag it matches weakly (RFC 9110 §8.8.3.2).
/// A tag that does not parse selects nothing.
pub(crate) fn etag_selects(newer: &str, stored: &str) -> bool {
    match (EntityTag::parse(newer), EntityTag::parse(stored)) {
        (Some(new), Some(old)) if new.weak => new.weak_eq(&old),
        (Some(new), Some(old)) => new.strong_eq(&old),
        _ => false,
    }
}

/// The fields a `304` generated from a stored response carries (RFC 9110 §15.4.5): those of
/// `Content-Location`, `Date`, `ETag`, `Vary`, `Cache-Control` and `Expires` the stored response
/// has, every line in stored order. Nothing about the content (`Content-Length`,
/// `Content-Type`, …): a `304` has none. Other fields (`Age`, `Last-Modified`, the edge's own)
/// are the caller's to add.
pub fn not_modified_headers(stored: &HeaderList) -> HeaderList {
    const CARRIED: [&str; 6] = [
        "content-location",
        "date",
        "etag",
        "vary",
        "cache-control",
        "expires",
    ];
    stored
        .iter()
        .filter(|(name, _)| CARRIED.iter().any(|c| c.eq_ignore_ascii_case(name.trim())))
        .collect()
}

/// True when the cache may answer a client's conditional `GET`/`HEAD` with `304` from `entry`,
/// which it would otherwise serve (§4.3.2), in the order of RFC 9110 §13.2.2: `If-None-Match`
/// (weak comparison, §13.1.2) decides when present, and then `If-Modified-Since` is not
/// evaluated at all; without it, `If-Modified-Since` is compared with `Last-Modified`, or `Date`
/// when there is none (RFC 9111 §4.3.2). Only `GET` and `HEAD` (§13.1.3). An invalid
/// `If-Modified-Since` is ignored (§13.1.3).
pub fn answers_not_modified(request: &RequestHead<'_>, entry: &Entry) -> bool {
    if !matches!(request.method, "GET" | "HEAD") {
        return false;
    }
    let stored = entry.headers();
    if let Some(inm) = request.headers.get("if-none-match") {
        // `*` matches without a stored tag; any other member needs one.
        let etag = stored.get("etag").unwrap_or_default();
        return crate::conditional::if_none_match(&inm, &etag);
    }
    let reference = entry.response_time();
    let since = request
        .headers
        .get("if-modified-since")
        .and_then(|v| parse_http_date(&v, reference));
    let modified = stored
        .get("last-modified")
        .or_else(|| stored.get("date"))
        .and_then(|v| parse_http_date(&v, reference));
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

#[cfg(test)]
mod tests;
