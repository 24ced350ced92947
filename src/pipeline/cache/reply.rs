//! Answers from the cache stage, each with its `Cache-Status` (RFC 9211 §2).

use crate::bindings::tiers::memory::Stored;
use crate::error::EdgeError;
use crate::respond;
use breakwater_core::cache::{
    HeaderList, RangeReply, RequestHead, Timestamp, answers_not_modified, not_modified_headers,
    range_reply,
};
use breakwater_core::policy::Tier;
use breakwater_core::problem::Problem;
use worker::Response;

/// The cache's name in `Cache-Status`.
const CACHE_NAME: &str = "breakwater";

/// What the cache did with a request.
pub enum Status {
    /// Served from `tier`; the detail says why when it is not a plain fresh hit.
    Hit {
        tier: Tier,
        detail: Option<&'static str>,
    },
    /// Served from what a concurrent request for the same key just stored in `tier`.
    Collapsed(Tier),
    /// A stored response the origin confirmed with `304`, stored again and served.
    Revalidated,
    /// Fetched from the origin and stored.
    Stored,
    /// Fetched from the origin, not stored; the detail names the reason.
    Miss(Option<&'static str>),
    /// The cache was not consulted; the detail names the reason.
    Bypass(&'static str),
}

impl Status {
    /// The outcome the metrics count the answer under ([`breakwater_core::metrics`]): the tier
    /// of a hit, else what happened.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Hit { tier, .. } => tier.as_str(),
            Self::Collapsed(_) => "collapsed",
            Self::Revalidated => "revalidated",
            Self::Stored => "stored",
            Self::Miss(_) => "miss",
            Self::Bypass(_) => "bypass",
        }
    }

    /// The `Cache-Status` member, e.g. `breakwater; hit; detail=kv` or
    /// `breakwater; fwd=miss; detail=no-store`. A hit's detail is the tier, then the reason a
    /// stale entry could be served, if any (`memory.stale-while-revalidate`).
    pub fn header_value(&self) -> String {
        let (params, detail) = match self {
            Self::Hit { tier, detail } => (
                "hit",
                Some(match detail {
                    Some(d) => format!("{}.{d}", tier.as_str()),
                    None => tier.as_str().to_owned(),
                }),
            ),
            Self::Collapsed(tier) => ("fwd=miss; collapsed", Some(tier.as_str().to_owned())),
            Self::Revalidated => ("fwd=stale; fwd-status=304; stored", None),
            Self::Stored => ("fwd=miss; stored", None),
            Self::Miss(detail) => ("fwd=miss", detail.map(str::to_owned)),
            Self::Bypass(detail) => ("fwd=bypass", Some((*detail).to_owned())),
        };
        match detail {
            Some(d) => format!("{CACHE_NAME}; {params}; detail={d}"),
            None => format!("{CACHE_NAME}; {params}"),
        }
    }
}

/// Answers `request` from a stored response, with its current `Age` (RFC 9111 §5.1): `304` with
/// the fields RFC 9110 §15.4.5 lists when the client's own conditional matches it (RFC 9111
/// §4.3.2); `206` or `416` for a range of a stored `200` (RFC 9110 §14); no body for `HEAD`.
pub fn from_stored(
    stored: &Stored,
    request: &RequestHead<'_>,
    now: Timestamp,
    status: &Status,
) -> Result<Response, EdgeError> {
    let entry = stored.entry();
    let age = entry.current_age(now).to_string();
    if answers_not_modified(request, entry) {
        let fields = not_modified_headers(entry.headers());
        return build(304, &fields, vec![("Age", age)], status, None);
    }
    // The stored fields as they are, and what this answer sets over them (no copy of the rest).
    let fields = entry.headers();
    let body = &stored.body[..];
    let total = body.len() as u64;
    let range = range_reply(
        request.method,
        request.headers,
        entry.status(),
        fields,
        total,
    );
    let (code, part) = match range {
        RangeReply::Full => (entry.status(), body),
        RangeReply::Partial { start, end, .. } => {
            let part = usize::try_from(start)
                .ok()
                .zip(usize::try_from(end).ok())
                .and_then(|(start, end)| body.get(start..=end))
                .unwrap_or_default();
            (206, part)
        }
        RangeReply::Unsatisfiable { .. } => (416, &[][..]),
    };
    let mut set = vec![("Age", age), ("Content-Length", part.len().to_string())];
    if entry.status() == 200 && !fields.contains("accept-ranges") {
        set.push(("Accept-Ranges", "bytes".to_owned()));
    }
    if let Some(content_range) = range.content_range() {
        set.push(("Content-Range", content_range));
    }
    let sends_body = request.method != "HEAD" && code != 416;
    build(code, fields, set, status, sends_body.then_some(part))
}

/// A response of `code` with `fields`, each of `set` replacing the fields of its name, the
/// `Cache-Status` of `status`, and `body` if any.
fn build(
    code: u16,
    fields: &HeaderList,
    set: Vec<(&'static str, String)>,
    status: &Status,
    body: Option<&[u8]>,
) -> Result<Response, EdgeError> {
    let cache_status = status.header_value();
    let replaced = |name: &str| {
        let name = name.trim();
        name.eq_ignore_ascii_case("cache-status")
            || set.iter().any(|(n, _)| name.eq_ignore_ascii_case(n))
    };
    let lines = fields
        .iter()
        .filter(|(name, _)| !replaced(name))
        .chain(set.iter().map(|(name, value)| (*name, value.as_str())))
        .chain([("cache-status", cache_status.as_str())]);
    let headers = respond::headers(lines)?;
    let builder = Response::builder().with_status(code).with_headers(headers);
    Ok(match body {
        Some(body) => builder.fixed(body.to_vec()),
        None => builder.empty(),
    })
}

/// The stored body under `headers` the origin just sent for this response alone (a `304` made it
/// unstorable): sent once, never stored.
pub fn relay(status: u16, headers: &HeaderList, body: &[u8]) -> Result<Response, EdgeError> {
    let out = respond::headers(headers.iter())?;
    Ok(Response::builder()
        .with_status(status)
        .with_headers(out)
        .fixed(body.to_vec()))
}

/// Relays the origin's response (already rebuilt with mutable headers) with a `Cache-Status`.
pub fn from_origin(mut response: Response, status: &Status) -> Result<Response, EdgeError> {
    response
        .headers_mut()
        .set("cache-status", &status.header_value())?;
    Ok(response)
}

/// `only-if-cached` with nothing servable: `504` (RFC 9111 §5.2.1.7).
pub fn only_if_cached() -> Result<Response, EdgeError> {
    let problem = Problem::new("not-cached", 504, "Not cached")
        .with_detail("only-if-cached was requested and no stored response can answer");
    from_origin(
        respond::problem(&problem, &[])?,
        &Status::Miss(Some("only-if-cached")),
    )
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    //! These build JS `Response`s, so they run under wasm-bindgen-test in Node.
    use super::*;
    use breakwater_core::cache::{CacheOptions, Entry, HeaderList, Record};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn cache_status_uses_rfc_9211_syntax() {
        let cases = [
            (
                Status::Hit {
                    tier: Tier::Memory,
                    detail: None,
                },
                "breakwater; hit; detail=memory",
            ),
            (
                Status::Hit {
                    tier: Tier::Kv,
                    detail: Some("stale-if-error"),
                },
                "breakwater; hit; detail=kv.stale-if-error",
            ),
            (
                Status::Collapsed(Tier::CacheApi),
                "breakwater; fwd=miss; collapsed; detail=cache-api",
            ),
            (
                Status::Revalidated,
                "breakwater; fwd=stale; fwd-status=304; stored",
            ),
            (Status::Stored, "breakwater; fwd=miss; stored"),
            (
                Status::Miss(Some("no-store")),
                "breakwater; fwd=miss; detail=no-store",
            ),
            (
                Status::Bypass("credentials"),
                "breakwater; fwd=bypass; detail=credentials",
            ),
        ];
        for (status, want) in cases {
            assert_eq!(status.header_value(), want);
        }
    }

    #[wasm_bindgen_test]
    async fn stored_answer_has_age_status_and_body() {
        let none = HeaderList::new();
        let resp: HeaderList = [
            ("Cache-Control", "max-age=60"),
            ("Content-Type", "text/plain"),
        ]
        .into_iter()
        .collect();
        let t = Timestamp::from_secs;
        let entry = Entry::store(
            &RequestHead::new("GET", &none),
            200,
            &resp,
            t(100),
            t(100),
            &CacheOptions::default(),
        )
        .unwrap();
        let stored = Stored {
            record: Record {
                key: "/k".into(),
                epoch: 0,
                entry,
            },
            body: b"hello".as_slice().into(),
        };
        let hit = Status::Hit {
            tier: Tier::Memory,
            detail: None,
        };
        let get = RequestHead::new("GET", &none);
        let mut r = from_stored(&stored, &get, t(110), &hit).unwrap();
        assert_eq!(r.status_code(), 200);
        assert_eq!(r.headers().get("age").unwrap().as_deref(), Some("10"));
        assert_eq!(
            r.headers().get("cache-status").unwrap().as_deref(),
            Some("breakwater; hit; detail=memory")
        );
        assert_eq!(r.text().await.unwrap(), "hello");
        let mut head =
            from_stored(&stored, &RequestHead::new("HEAD", &none), t(110), &hit).unwrap();
        assert_eq!(head.text().await.unwrap(), "");
        let etag_less: HeaderList = [("If-Modified-Since", "Thu, 01 Jan 1970 00:01:40 GMT")]
            .into_iter()
            .collect();
        let mut not_modified =
            from_stored(&stored, &RequestHead::new("GET", &etag_less), t(110), &hit).unwrap();
        assert_eq!(not_modified.status_code(), 304);
        assert_eq!(not_modified.text().await.unwrap(), "");
    }
}
