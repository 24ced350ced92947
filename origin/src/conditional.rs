//! Validators and preconditions (RFC 9110 §8.8.3, §13): the strong `ETag` of a JSON body, what a
//! request's `If-Match` / `If-None-Match` decide about it, and the `200`-or-`304` answer to a
//! cacheable read. The list and item handlers, and the admin write, all go through here.
//!
//! The origin keeps no `Last-Modified`, so the date preconditions (§13.1.3, §13.1.4) are ignored,
//! as the RFC requires when the resource has no modification date.

use std::fmt::Write as _;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use breakwater_core::conditional;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Bytes of the SHA-256 kept in an ETag: 128 bits make two versions of one resource colliding
/// practically impossible, and 32 hex digits are the scheme the asset manifest already uses.
const ETAG_DIGEST_BYTES: usize = 16;

/// A strong entity tag: the first 128 bits of the SHA-256 of the exact body bytes, in lowercase
/// hex, quoted (`"3f9ac2…"`, 34 characters).
///
/// A function of the bytes alone, so every instance, every restart and both database backends
/// agree on it without a version column, and it changes exactly when the body does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(String);

impl ETag {
    /// The tag of `body`, which must be the bytes sent, byte for byte.
    pub fn of(body: &[u8]) -> Self {
        let digest = Sha256::digest(body);
        let mut tag = String::with_capacity(2 + 2 * ETAG_DIGEST_BYTES);
        tag.push('"');
        for byte in &digest[..ETAG_DIGEST_BYTES] {
            // Writing to a String cannot fail.
            let _ = write!(tag, "{byte:02x}");
        }
        tag.push('"');
        Self(tag)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.0).expect("a quoted hex digest is a valid header value")
    }
}

/// What a request's preconditions decide before its method is applied (RFC 9110 §13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Apply the method.
    Proceed,
    /// A `GET`/`HEAD` whose `If-None-Match` holds the current tag: answer `304`.
    NotModified,
    /// Answer `412` without applying the method.
    Failed,
}

/// The `If-Match` and `If-None-Match` fields of a request, each field's lines joined into one
/// list (§5.3). A value that is not text is kept lossily, so it matches nothing rather than being
/// mistaken for an absent field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
}

impl Preconditions {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let list = |name| {
            let lines: Vec<_> = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (!lines.is_empty()).then(|| lines.join(", "))
        };
        Self {
            if_match: list(header::IF_MATCH),
            if_none_match: list(header::IF_NONE_MATCH),
        }
    }

    /// §13.2.2 for a resource whose current representation has tag `current`. Called only once
    /// the resource is known to exist: an unknown one is a `404` whatever the preconditions say
    /// (§13.2.1).
    pub fn evaluate(&self, method: &Method, current: &ETag) -> Precondition {
        if let Some(if_match) = &self.if_match
            && !strong_match(if_match, current)
        {
            return Precondition::Failed;
        }
        if let Some(if_none_match) = &self.if_none_match
            && conditional::if_none_match(if_none_match, current.as_str())
        {
            return if *method == Method::GET || *method == Method::HEAD {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
        Precondition::Proceed
    }

    /// The answer to a `GET`/`HEAD` of a cacheable JSON body: `200` with the body, or `304` with
    /// none when the client's copy is current. `fields` (`Cache-Control`, `Cache-Tag`) and the
    /// `ETag` go on both, because a `304` must carry what the `200` would have among the cache
    /// fields (§15.4.5) so that caches can refresh the entry they hold.
    pub fn read_response(
        &self,
        method: &Method,
        mut fields: HeaderMap,
        json: Vec<u8>,
    ) -> Result<Response, ApiError> {
        let etag = ETag::of(&json);
        fields.insert(header::ETAG, etag.to_header_value());
        match self.evaluate(method, &etag) {
            Precondition::Failed => Err(ApiError::PreconditionFailed),
            Precondition::NotModified => Ok((StatusCode::NOT_MODIFIED, fields).into_response()),
            Precondition::Proceed => {
                fields.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Ok((fields, json).into_response())
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// `If-Match` uses the strong comparison (§13.1.1, §8.8.3.2): a member matches only when neither
/// tag is weak and their opaque tags are equal. Ours is always strong and canonical, so that is
/// equality with the trimmed member; `W/"…"` never matches.
fn strong_match(if_match: &str, current: &ETag) -> bool {
    if_match
        .split(',')
        .map(str::trim)
        .any(|member| member == "*" || member == current.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preconditions(fields: &[(&str, &str)]) -> Preconditions {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Preconditions::from_headers(&headers)
    }

    #[test]
    fn the_etag_is_the_quoted_first_half_of_the_sha256_in_hex() {
        // SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 27ae41e4 649b934c a495991b 7852b855
        assert_eq!(
            ETag::of(b"").as_str(),
            "\"e3b0c44298fc1c149afbf4c8996fb924\""
        );
        assert_ne!(ETag::of(b"{\"a\":1}"), ETag::of(b"{\"a\": 1}"));
    }

    #[test]
    fn rfc_9110_evaluation_order() {
        use Precondition::*;
        let etag = ETag::of(b"v1");
        let ours = etag.as_str();
        let weak = format!("W/{ours}");
        let list = format!("\"zzz\", {ours}");
        let other = "\"zzz\"";
        type Case<'a> = (Method, &'a [(&'a str, &'a str)], Precondition, &'a str);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Method::GET, &[], Proceed, "no preconditions"),
            (Method::GET, &[("if-none-match", ours)], NotModified, "§13.1.2: same tag"),
            (Method::HEAD, &[("if-none-match", ours)], NotModified, "HEAD too"),
            (Method::GET, &[("if-none-match", &weak)], NotModified, "§13.1.2: weak comparison"),
            (Method::GET, &[("if-none-match", &list)], NotModified, "a list"),
            (Method::GET, &[("if-none-match", other), ("if-none-match", ours)], NotModified, "a list over two lines"),
            (Method::GET, &[("if-none-match", "*")], NotModified, "* matches an existing resource"),
            (Method::GET, &[("if-none-match", other)], Proceed, "another tag"),
            (Method::GET, &[("if-none-match", "garbage")], Proceed, "a malformed member never matches"),
            (Method::PUT, &[("if-none-match", ours)], Failed, "§13.1.2: not GET/HEAD → 412"),
            (Method::PUT, &[("if-none-match", "*")], Failed, "create-only on an existing resource"),
            (Method::PUT, &[("if-match", ours)], Proceed, "§13.1.1: same tag"),
            (Method::PUT, &[("if-match", &list)], Proceed, "a list"),
            (Method::PUT, &[("if-match", "*")], Proceed, "* matches an existing resource"),
            (Method::PUT, &[("if-match", other)], Failed, "another tag"),
            (Method::PUT, &[("if-match", &weak)], Failed, "§13.1.1: strong comparison, weak never matches"),
            (Method::PUT, &[("if-match", "")], Failed, "an empty If-Match matches nothing"),
            (Method::GET, &[("if-match", other), ("if-none-match", ours)], Failed, "§13.2.2: If-Match first"),
            (Method::PUT, &[("if-match", ours), ("if-none-match", other)], Proceed, "both pass"),
        ];
        for (method, fields, want, why) in cases {
            assert_eq!(
                preconditions(fields).evaluate(method, &etag),
                *want,
                "{why}"
            );
        }
    }

    #[test]
    fn a_non_text_if_match_fails_rather_than_vanishing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_MATCH,
            HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
        );
        let preconditions = Preconditions::from_headers(&headers);
        let etag = ETag::of(b"v1");
        assert_eq!(
            preconditions.evaluate(&Method::PUT, &etag),
            Precondition::Failed
        );
    }

    #[test]
    fn a_304_carries_the_cache_fields_and_no_body() {
        let json = b"{\"id\":1}".to_vec();
        let etag = ETag::of(&json);
        let mut fields = HeaderMap::new();
        fields.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));

        let fresh = preconditions(&[])
            .read_response(&Method::GET, fields.clone(), json.clone())
            .unwrap();
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(fresh.headers()[header::ETAG], etag.as_str());
        assert_eq!(fresh.headers()[header::CONTENT_TYPE], "application/json");

        let not_modified = preconditions(&[("if-none-match", etag.as_str())])
            .read_response(&Method::GET, fields, json)
            .unwrap();
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()[header::ETAG], etag.as_str());
        assert_eq!(not_modified.headers()[header::CACHE_CONTROL], "public");
        assert!(!not_modified.headers().contains_key(header::CONTENT_TYPE));
    }
}
