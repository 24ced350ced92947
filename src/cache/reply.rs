//! Answers from the cache stage, each with its `Cache-Status` (RFC 9211 §2).

use super::memory::Stored;
use crate::error::EdgeError;
use crate::respond;
use breakwater_core::cache::Timestamp;
use breakwater_core::problem::Problem;
use worker::{Headers, Response};

/// The cache's name in `Cache-Status`.
const CACHE_NAME: &str = "breakwater";

/// What the cache did with a request.
pub enum Status {
    /// Served from the memory tier; the detail says why when it is not a plain fresh hit.
    Hit(Option<&'static str>),
    /// Served from what a concurrent request for the same key just stored.
    Collapsed,
    /// Fetched from the origin and stored.
    Stored,
    /// Fetched from the origin, not stored; the detail names the reason.
    Miss(Option<&'static str>),
    /// The cache was not consulted; the detail names the reason.
    Bypass(&'static str),
}

impl Status {
    /// The `Cache-Status` member, e.g. `breakwater; fwd=miss; detail=no-store`.
    pub fn header_value(&self) -> String {
        let (params, detail) = match self {
            // A plain fresh hit names the tier that answered.
            Self::Hit(detail) => ("hit", detail.or(Some("memory"))),
            Self::Collapsed => ("fwd=miss; collapsed", Some("memory")),
            Self::Stored => ("fwd=miss; stored", None),
            Self::Miss(detail) => ("fwd=miss", *detail),
            Self::Bypass(detail) => ("fwd=bypass", Some(*detail)),
        };
        match detail {
            Some(d) => format!("{CACHE_NAME}; {params}; detail={d}"),
            None => format!("{CACHE_NAME}; {params}"),
        }
    }
}

/// Answers from a stored response, with its current `Age` (RFC 9111 §5.1).
pub fn from_stored(
    stored: &Stored,
    now: Timestamp,
    head: bool,
    status: &Status,
) -> Result<Response, EdgeError> {
    let headers = Headers::new();
    for (name, value) in stored.entry.headers_at(now).iter() {
        headers.append(name, value)?;
    }
    headers.set("cache-status", &status.header_value())?;
    let builder = Response::builder()
        .with_status(stored.entry.status())
        .with_headers(headers);
    Ok(if head {
        builder.empty()
    } else {
        builder.fixed(stored.body.to_vec())
    })
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
    use breakwater_core::cache::{CacheOptions, Entry, HeaderList, RequestHead};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn cache_status_uses_rfc_9211_syntax() {
        let cases = [
            (Status::Hit(None), "breakwater; hit; detail=memory"),
            (
                Status::Hit(Some("stale-if-error")),
                "breakwater; hit; detail=stale-if-error",
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
            entry,
            body: b"hello".as_slice().into(),
        };
        let mut r = from_stored(&stored, t(110), false, &Status::Hit(None)).unwrap();
        assert_eq!(r.status_code(), 200);
        assert_eq!(r.headers().get("age").unwrap().as_deref(), Some("10"));
        assert_eq!(
            r.headers().get("cache-status").unwrap().as_deref(),
            Some("breakwater; hit; detail=memory")
        );
        assert_eq!(r.text().await.unwrap(), "hello");
        let mut head = from_stored(&stored, t(110), true, &Status::Hit(None)).unwrap();
        assert_eq!(head.text().await.unwrap(), "");
    }
}
