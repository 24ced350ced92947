//! Idempotent writes at the origin: the source of truth behind the edge's `IDEMPOTENCY` records.
//!
//! A write route takes the caller's `Idempotency-Key`, fingerprints the request (method, path and
//! query, body bytes: [`breakwater_core::idempotency::fingerprint`]), and commits its effect
//! together with the answer it sends (table `idempotency_responses`) in one transaction, under a
//! UNIQUE (principal, key). A retry finds that answer whether or not the edge still has its own
//! record: the same fingerprint replays it byte for byte with `Idempotent-Replayed: true`
//! ([`Decision::Replay`]), a different one is a 422 ([`Decision::Mismatch`]). Only successes are
//! stored: a refused or failed request rolls back together with its effect, so a corrected retry
//! executes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use breakwater_core::idempotency::{self as core_idempotency, Fingerprint, IdempotencyKey};

use crate::db::{Db, on_pool};
use crate::error::ApiError;
use crate::principal::Principal;

/// A stored write answer is never cacheable: it describes one moment, for one caller.
const CACHE_CONTROL: &str = "no-store";

/// The request's `Idempotency-Key`, required: `400` when it is missing, repeated or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(core_idempotency::HEADER).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(if parts.headers.contains_key(core_idempotency::HEADER) {
                ApiError::IdempotencyKeyInvalid("the header was sent more than once".to_owned())
            } else {
                ApiError::IdempotencyKeyMissing
            });
        };
        let value = value.to_str().map_err(|_| {
            ApiError::IdempotencyKeyInvalid("the value is not printable ASCII".to_owned())
        })?;
        core_idempotency::parse_key(value)
            .map(Key)
            .map_err(|error| ApiError::IdempotencyKeyInvalid(error.to_string()))
    }
}

/// What a key's stored answer means for a request that arrives with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The same request again: send the stored answer.
    Replay,
    /// Another request under a used key: refuse it (422), and never show the stored answer.
    Mismatch,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Mismatch => "mismatch",
        }
    }
}

/// The answer a completed key replays, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The fingerprint of the request that produced it, as 64 hex digits.
    pub fingerprint: String,
    pub status: StatusCode,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// What this stored answer allows a request with `fingerprint`.
    pub fn decide(&self, fingerprint: &Fingerprint) -> Decision {
        if self.fingerprint == fingerprint.to_string() {
            Decision::Replay
        } else {
            Decision::Mismatch
        }
    }

    /// The answer for a request with `fingerprint`: this one again (marked as a replay) or a 422.
    pub fn replay_for(self, fingerprint: &Fingerprint) -> Result<Response, ApiError> {
        let decision = self.decide(fingerprint);
        tracing::info!(
            idempotency = decision.as_str(),
            "idempotency key already used"
        );
        match decision {
            Decision::Replay => Ok(self.into_response(true)),
            Decision::Mismatch => Err(ApiError::IdempotencyKeyReused),
        }
    }

    /// The HTTP response: the stored status, `Content-Type`, `Location` and body, uncacheable,
    /// and `Idempotent-Replayed: true` when it is `replayed`.
    pub fn into_response(self, replayed: bool) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        let text = |value: &str| {
            HeaderValue::from_str(value).expect("stored header values were valid when stored")
        };
        headers.insert(header::CONTENT_TYPE, text(&self.content_type));
        if let Some(location) = &self.location {
            headers.insert(header::LOCATION, text(location));
        }
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        if replayed {
            headers.insert(
                core_idempotency::REPLAYED_HEADER,
                HeaderValue::from_static("true"),
            );
        }
        response
    }
}

/// Stores the answer for (principal, key); bind principal, key, fingerprint, status,
/// content type, location, body, created at (Unix ms). Run in the transaction of the effect.
pub(crate) const INSERT: &str = "INSERT INTO idempotency_responses \
     (principal, idempotency_key, request_fingerprint, status, content_type, location, body, \
      created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The answer stored for (principal, key); bind principal, key.
pub const FIND: &str = "SELECT request_fingerprint, status, content_type, location, body \
     FROM idempotency_responses WHERE principal = $1 AND idempotency_key = $2";

#[derive(sqlx::FromRow)]
struct Row {
    request_fingerprint: String,
    status: i64,
    content_type: String,
    location: Option<String>,
    body: Vec<u8>,
}

/// The answer stored for `principal`'s `key`, if that key completed a request. Reads the primary:
/// a replica could still miss an answer just committed.
pub async fn find(
    db: &Db,
    principal: &Principal,
    key: &IdempotencyKey,
) -> Result<Option<StoredResponse>, ApiError> {
    let row = on_pool!(db, pool => {
        sqlx::query_as::<_, Row>(FIND)
            .bind(principal.as_str())
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?
    });
    row.map(|row| {
        let status = u16::try_from(row.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or(ApiError::Internal)?;
        Ok(StoredResponse {
            fingerprint: row.request_fingerprint,
            status,
            content_type: row.content_type,
            location: row.location,
            body: row.body,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use breakwater_core::idempotency::fingerprint;

    use super::*;

    fn stored(body: &[u8]) -> StoredResponse {
        StoredResponse {
            fingerprint: fingerprint("POST", "/api/orders", body).to_string(),
            status: StatusCode::CREATED,
            content_type: "application/json".to_owned(),
            location: Some("/api/orders/7".to_owned()),
            body: body.to_vec(),
        }
    }

    #[test]
    fn only_the_same_method_path_and_body_replay() {
        let record = stored(b"{\"items\":[]}");
        let same = fingerprint("POST", "/api/orders", b"{\"items\":[]}");
        assert_eq!(record.decide(&same), Decision::Replay);
        for other in [
            fingerprint("POST", "/api/orders", b"{\"items\": []}"),
            fingerprint("PUT", "/api/orders", b"{\"items\":[]}"),
            fingerprint("POST", "/api/orders?x", b"{\"items\":[]}"),
        ] {
            assert_eq!(record.decide(&other), Decision::Mismatch);
        }
    }

    #[tokio::test]
    async fn a_replay_is_the_stored_answer_marked_as_replayed() {
        let body = b"{\"id\":7}";
        let response = stored(body).into_response(true);
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers();
        assert_eq!(headers[header::LOCATION], "/api/orders/7");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[core_idempotency::REPLAYED_HEADER], "true");
        let bytes = to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&bytes[..], body);

        let first = stored(body).into_response(false);
        assert!(
            !first
                .headers()
                .contains_key(core_idempotency::REPLAYED_HEADER)
        );
    }

    #[test]
    fn a_mismatch_is_a_422_that_shows_nothing_stored() {
        let error = stored(b"secret order")
            .replay_for(&fingerprint("POST", "/api/orders", b"other"))
            .unwrap_err();
        assert!(matches!(error, ApiError::IdempotencyKeyReused));
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!error.to_problem().to_json().contains("secret"));
    }
}
