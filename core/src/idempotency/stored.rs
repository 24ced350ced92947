//! The response a completed key replays: which answers are kept, and which of their headers.
//!
//! Only 2xx and 3xx answers are kept ([`is_replayable`]). A 4xx means the request was refused
//! before it took effect (validation, auth, the origin's own 409 or a 429); storing it would turn
//! the client's corrected retry into a 422 for 24 hours. A 5xx is not kept either: the origin
//! commits its own (principal, key) record in the same transaction as the effect, so a retry that
//! reaches it gets the stored answer if the effect happened and a fresh execution if it rolled
//! back, which is exactly right, whereas an edge copy would pin a transient failure.
//!
//! Headers pass an allow-list ([`REPLAYED_HEADERS`]) of those that describe the result rather
//! than the exchange. Everything else is dropped, notably `set-cookie` and `authorization`
//! (credentials must never be re-issued by a replay), hop-by-hop and framing headers
//! (`content-length`, `content-encoding`, `transfer-encoding`: the runtime recomputes framing, and
//! the body is stored decoded), and per-exchange ones (`date`, `age`, `server`, `x-request-id`,
//! `traceparent`, `server-timing`, `ratelimit*`).

use serde::{Deserialize, Serialize};

/// The response header the edge adds to a replay, with the value `true`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Response headers a replay carries (lowercase); see the module documentation.
pub const REPLAYED_HEADERS: [&str; 11] = [
    "cache-control",
    "content-disposition",
    "content-language",
    "content-location",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "link",
    "location",
    "retry-after",
];

/// True for a status whose answer is stored and replayed; see the module documentation.
pub fn is_replayable(status: u16) -> bool {
    (200..400).contains(&status)
}

/// True for a response header a replay carries.
pub fn is_replayed_header(name: &str) -> bool {
    REPLAYED_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name.trim()))
}

/// The origin's answer, as the edge read it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    /// The decoded body bytes.
    pub body: &'a [u8],
}

/// A kept answer: what a replay sends back, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    /// Allowed headers only, names lowercased, values and order as the origin sent them.
    pub headers: Vec<(String, String)>,
    /// `None`: the body was larger than `Policy::max_body_bytes` and was not kept. Serialised as
    /// bytes, which Durable Object storage keeps as a `Uint8Array` rather than an array of numbers
    /// (so 64 KiB stays within a 128 KiB storage value).
    #[serde(with = "body_bytes")]
    pub body: Option<Vec<u8>>,
    /// The body's length, kept either way.
    pub body_len: u64,
}

impl StoredResponse {
    /// Keeps `answer`'s allowed headers, and its body if it is at most `max_body_bytes`.
    pub fn from_answer(answer: &Answer<'_>, max_body_bytes: usize) -> Self {
        Self {
            status: answer.status,
            headers: answer
                .headers
                .iter()
                .filter(|(name, _)| is_replayed_header(name))
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.clone()))
                .collect(),
            body: (answer.body.len() <= max_body_bytes).then(|| answer.body.to_vec()),
            body_len: answer.body.len() as u64,
        }
    }
}

/// `Option<Vec<u8>>` through `serialize_bytes`; reads back bytes or a sequence (JSON).
mod body_bytes {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::{Serialize, Serializer};
    use std::fmt;

    struct Bytes<'a>(&'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    pub fn serialize<S: Serializer>(body: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match body {
            Some(bytes) => s.serialize_some(&Bytes(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        d.deserialize_option(Body)
    }

    struct Body;

    impl<'de> Visitor<'de> for Body {
        type Value = Option<Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes or null")
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_byte_buf(self)
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            Ok(Some(bytes.to_vec()))
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
            Ok(Some(bytes))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(Some(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_allowed_headers_are_kept_in_order_with_values_untouched() {
        let sent = headers(&[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Set-Cookie", "session=abc"),
            ("Location", "/api/orders/7"),
            ("Authorization", "Bearer x"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "12"),
            ("Content-Encoding", "gzip"),
            ("Date", "Tue, 01 Jul 2025 00:00:00 GMT"),
            ("X-Request-Id", "r1"),
            ("RateLimit", "limit=10"),
            ("Link", "</a>; rel=next"),
            ("link", "</b>; rel=prev"),
            ("ETag", "\"v1\""),
            ("Idempotent-Replayed", "true"),
        ]);
        let answer = Answer {
            status: 201,
            headers: &sent,
            body: b"{\"id\":7}",
        };
        let stored = StoredResponse::from_answer(&answer, 1024);
        assert_eq!(
            stored.headers,
            headers(&[
                ("content-type", "application/json; charset=utf-8"),
                ("location", "/api/orders/7"),
                ("link", "</a>; rel=next"),
                ("link", "</b>; rel=prev"),
                ("etag", "\"v1\""),
            ])
        );
    }

    #[test]
    fn a_body_over_the_limit_is_dropped_but_its_length_kept() {
        for (len, kept) in [(0, true), (64, true), (65, false)] {
            let body = vec![7u8; len];
            let answer = Answer {
                status: 200,
                headers: &[],
                body: &body,
            };
            let stored = StoredResponse::from_answer(&answer, 64);
            assert_eq!(stored.body, kept.then_some(body), "{len}");
            assert_eq!(stored.body_len, len as u64);
        }
    }

    #[test]
    fn only_2xx_and_3xx_are_replayable() {
        let cases = [
            (100, false),
            (199, false),
            (200, true),
            (201, true),
            (303, true),
            (399, true),
            (400, false),
            (409, false),
            (422, false),
            (429, false),
            (500, false),
            (503, false),
        ];
        for (status, want) in cases {
            assert_eq!(is_replayable(status), want, "{status}");
        }
    }
}
