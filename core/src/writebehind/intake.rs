//! What a write-behind request may carry, checked before anything is queued: the path's `{id}`
//! must be a product id; a view takes no body or `{}`; a vote takes `{"value": 1}` or
//! `{"value": -1}` as `application/json`, nothing else in it. Each refusal says which status it
//! is: the client learns at once, since nothing checks the event again until the origin does.

use super::event::{EventKind, ProductId};
use serde::Deserialize;
use serde_json::error::Category;

/// A checked request: everything an event needs but its id and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInput {
    pub kind: EventKind,
    pub product_id: ProductId,
    pub value: i64,
}

/// Why a write-behind request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The path's `{id}` is not a positive integer.
    #[error("the product id {0}")]
    BadProductId(String),
    #[error("the body has {len} bytes; at most {max} are accepted")]
    TooLarge { len: usize, max: usize },
    /// A body that is not declared `application/json`.
    #[error("the body must be application/json (got {})", .0.as_deref().unwrap_or("no Content-Type"))]
    UnsupportedMediaType(Option<String>),
    /// Not JSON at all (or cut short).
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not what the route takes.
    #[error("{0}")]
    Invalid(String),
}

impl EventError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadProductId(_) | Self::MalformedJson(_) => 400,
            Self::TooLarge { .. } => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid(_) => 422,
        }
    }

    /// The problem `type` slug.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BadProductId(_) => "invalid-product-id",
            Self::TooLarge { .. } => "body-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::MalformedJson(_) => "malformed-json",
            Self::Invalid(_) => "invalid-event",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::BadProductId(_) => "Invalid product id",
            Self::TooLarge { .. } => "Request body too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::MalformedJson(_) => "Malformed JSON",
            Self::Invalid(_) => "Invalid event",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewBody {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    value: i64,
}

const VOTE_SHAPE: &str = r#"a vote takes {"value": 1} or {"value": -1}"#;

/// Checks a request on a route of `kind`: `id_segment` from the path, the `Content-Type` header
/// and the body (at most `max_bytes`).
pub fn parse_event(
    kind: EventKind,
    id_segment: &str,
    content_type: Option<&str>,
    body: &[u8],
    max_bytes: usize,
) -> Result<EventInput, EventError> {
    let product_id = ProductId::parse(id_segment).map_err(EventError::BadProductId)?;
    if body.len() > max_bytes {
        return Err(EventError::TooLarge {
            len: body.len(),
            max: max_bytes,
        });
    }
    let value = match kind {
        EventKind::View if body.is_empty() => 1,
        EventKind::View => {
            json_body::<ViewBody>(content_type, body, || {
                "a view takes no body, or {}".to_owned()
            })?;
            1
        }
        EventKind::Vote if body.is_empty() => {
            return Err(EventError::MalformedJson(format!("no body: {VOTE_SHAPE}")));
        }
        EventKind::Vote => {
            let vote = json_body::<VoteBody>(content_type, body, || VOTE_SHAPE.to_owned())?;
            if !kind.allows(vote.value) {
                return Err(EventError::Invalid(format!(
                    "value {} is not 1 or -1: {VOTE_SHAPE}",
                    vote.value
                )));
            }
            vote.value
        }
    };
    Ok(EventInput {
        kind,
        product_id,
        value,
    })
}

/// A JSON object body as `T`: `415` unless declared JSON, `400` for broken JSON, `422` (with
/// `shape` saying what is expected) for JSON of another shape, unknown or repeated fields
/// included.
fn json_body<T: serde::de::DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
    shape: impl Fn() -> String,
) -> Result<T, EventError> {
    if !is_json(content_type) {
        return Err(EventError::UnsupportedMediaType(
            content_type.map(str::to_owned),
        ));
    }
    // Only an object: serde would also read a struct from an array (`[1]` as `{"value": 1}`).
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => Err(EventError::Invalid(format!(
                "the body must be a JSON object: {}",
                shape()
            ))),
            Err(e) => Err(EventError::MalformedJson(e.to_string())),
        };
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => EventError::Invalid(format!("{e}: {}", shape())),
        Category::Syntax | Category::Eof | Category::Io => EventError::MalformedJson(e.to_string()),
    })
}

/// `application/json`, any case, parameters (`; charset=utf-8`) allowed.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const MAX: usize = 1024;

    fn status(kind: EventKind, id: &str, ct: Option<&str>, body: &str) -> u16 {
        match parse_event(kind, id, ct, body.as_bytes(), MAX) {
            Ok(_) => 202,
            Err(e) => e.status(),
        }
    }

    #[test]
    fn views_take_no_body_or_an_empty_object() {
        let ok = parse_event(EventKind::View, "7", None, b"", MAX).unwrap();
        assert_eq!((ok.product_id.get(), ok.value), (7, 1));
        assert_eq!(status(EventKind::View, "7", JSON, "{}"), 202);
        assert_eq!(status(EventKind::View, "7", JSON, " { } "), 202);
        assert_eq!(
            status(
                EventKind::View,
                "7",
                Some("Application/JSON; charset=utf-8"),
                "{}"
            ),
            202
        );
        assert_eq!(status(EventKind::View, "7", None, "{}"), 415);
        assert_eq!(status(EventKind::View, "7", Some("text/plain"), "{}"), 415);
        assert_eq!(status(EventKind::View, "7", JSON, r#"{"value": 1}"#), 422);
        assert_eq!(status(EventKind::View, "7", JSON, "[]"), 422);
        assert_eq!(status(EventKind::View, "7", JSON, "{"), 400);
        assert_eq!(status(EventKind::View, "7", JSON, "nope"), 400);
    }

    #[test]
    fn votes_take_exactly_plus_or_minus_one() {
        for (body, value) in [(r#"{"value": 1}"#, 1), (r#"{"value":-1}"#, -1)] {
            let ok = parse_event(EventKind::Vote, "3", JSON, body.as_bytes(), MAX).unwrap();
            assert_eq!(ok.value, value);
        }
        for (body, expected) in [
            (r#"{"value": 2}"#, 422),
            (r#"{"value": 0}"#, 422),
            (r#"{"value": "1"}"#, 422),
            (r#"{"value": 1.0}"#, 422),
            (r#"{"value": 1, "weight": 5}"#, 422),
            (r#"{"value": 1, "value": -1}"#, 422),
            (r#"{}"#, 422),
            ("[1]", 422),
            ("1", 422),
            (r#"{"value": "#, 400),
            ("", 400),
        ] {
            assert_eq!(status(EventKind::Vote, "3", JSON, body), expected, "{body}");
        }
        assert_eq!(status(EventKind::Vote, "3", None, r#"{"value": 1}"#), 415);
        assert_eq!(
            status(
                EventKind::Vote,
                "3",
                Some("application/jsonx"),
                r#"{"value": 1}"#
            ),
            415
        );
    }

    #[test]
    fn the_path_id_and_the_size_are_checked_first() {
        for id in ["0", "-4", "abc", "1e3", "99999999999999999999"] {
            assert_eq!(status(EventKind::View, id, None, ""), 400, "{id}");
        }
        let big = format!(r#"{{"value": 1{}}}"#, " ".repeat(MAX));
        assert_eq!(status(EventKind::Vote, "1", JSON, &big), 413);
        let err = parse_event(EventKind::Vote, "x", JSON, big.as_bytes(), MAX).unwrap_err();
        assert_eq!(err.as_str(), "invalid-product-id");
    }
}
