//! The origin's one error type and the one place it becomes an HTTP response.

use std::borrow::Cow;

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use breakwater_core::problem::{self, Problem};
use breakwater_core::token::TokenError;

use crate::{admin, auth, edge, principal};

/// Everything a request can fail with. Each variant says whose fault it is through its status
/// (4xx: the client's, 5xx: ours or the database's) and [`ApiError::is_retryable`] says whether
/// sending the same request again can help.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("query parameter `{parameter}` {reason}")]
    InvalidQuery {
        parameter: &'static str,
        reason: String,
    },
    #[error("path parameter `{parameter}` {reason}")]
    InvalidPath {
        parameter: &'static str,
        reason: String,
    },
    #[error("header `{header}` {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: String,
    },
    #[error("product {0} does not exist")]
    ProductNotFound(i64),
    #[error(
        "admin writes are disabled: start the origin with --admin-token or \
         BREAKWATER_ADMIN_TOKEN to enable them"
    )]
    AdminWritesDisabled,
    /// Missing, malformed and wrong credentials look the same to the client.
    #[error("this request needs the admin bearer token")]
    Unauthorized,
    /// No principal from the edge: the request did not come through it, or the edge could not
    /// identify the caller.
    #[error(
        "this route needs to know who you are: sign in (an access token), present an API key, \
         or keep the guest session cookie your first order set; the Breakwater edge sends it \
         as `Breakwater-Principal`"
    )]
    MissingPrincipal,
    /// A `Breakwater-Signature` that does not hold (see [`crate::edge`]).
    #[error("{0}")]
    EdgeSignature(breakwater_core::signing::Refused),
    /// An admin route called directly while edge keys are configured.
    #[error(
        "this route is served only through the Breakwater edge, which signs its requests \
         (Breakwater-Signature)"
    )]
    EdgeSignatureMissing,
    #[error(
        "this route needs an `Idempotency-Key` header, e.g. Idempotency-Key: \"<a fresh UUID>\""
    )]
    IdempotencyKeyMissing,
    #[error("the `Idempotency-Key` header is invalid: {0}")]
    IdempotencyKeyInvalid(String),
    /// The key already completed a request with a different method, path or body.
    #[error(
        "this `Idempotency-Key` was already used for a different request; send a new key for a \
         new request, or the original request unchanged to get its answer again"
    )]
    IdempotencyKeyReused,
    #[error("order {0} does not exist")]
    OrderNotFound(i64),
    #[error(
        "this route needs an access token: `Authorization: Bearer <access_token>` from \
         POST /api/auth/login"
    )]
    MissingAccessToken,
    /// Every reason means the same to the client: refresh the token or sign in again.
    #[error("the access token is not valid ({}); refresh it or sign in again", .0.as_str())]
    InvalidAccessToken(TokenError),
    /// Unknown email and wrong password look the same, so accounts cannot be enumerated.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Unknown, expired, revoked and reused refresh tokens look the same.
    #[error("the refresh token is not valid; sign in again")]
    InvalidRefreshToken,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the request body must be JSON, sent with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the request body is not valid JSON: {0}")]
    MalformedBody(String),
    /// Well-formed JSON that does not describe a valid request (wrong type, unknown field, ...).
    #[error("{0}")]
    InvalidBody(String),
    /// `field` names the field as a path into the body (`items[2].quantity`).
    #[error("field `{field}` {reason}")]
    InvalidField {
        field: Cow<'static, str>,
        reason: String,
    },
    #[error("the resource's current ETag does not satisfy If-Match / If-None-Match")]
    PreconditionFailed,
    /// A write lost every compare-and-swap attempt to concurrent writes.
    #[error("the resource kept changing while this write was applied; try again")]
    WriteConflict,
    #[error("no resource at this path")]
    RouteNotFound,
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    #[error("the request body is larger than the origin accepts")]
    BodyTooLarge,
    #[error("the origin did not answer in time")]
    Timeout,
    /// Every connection of this kind of work (a bulkhead: reads, writes) stayed busy for the
    /// pool's whole wait budget. Answered at once rather than queued, so the edge can serve
    /// stale or the client back off.
    #[error("the origin is at capacity for this kind of request; retry after {RETRY_AFTER_SECS} s")]
    Overloaded,
    /// A request its bulkhead's overload limiter had no room for: it would have queued longer
    /// than the limiter allows (see [`crate::overload`]). Answered at once, with the kind the
    /// edge's own shedding uses, so the edge and clients treat both alike.
    #[error(
        "the origin is shedding load: this kind of request queues too long; retry after {RETRY_AFTER_SECS} s"
    )]
    Shed,
    /// The detail sent to the client is generic on purpose: SQL and driver messages stay in logs.
    #[error("database unavailable")]
    Database(sqlx::Error),
    #[error("internal error")]
    Internal,
    /// An error response some layer produced without a body of ours (for example an axum
    /// extractor's rejection), kept at its status.
    #[error("{}", .0.canonical_reason().unwrap_or("error"))]
    Other(StatusCode),
}

/// What a `503` for an exhausted or shedding bulkhead asks the client to wait, in seconds:
/// connections come back within milliseconds and a shedding limiter reconsiders with every
/// request, so a short pause is enough (the edge spreads its own retries).
pub const RETRY_AFTER_SECS: u32 = 1;

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => Self::Overloaded,
            other => Self::Database(other),
        }
    }
}

impl ApiError {
    /// The error a bare error status stands for, for responses that layers wrote themselves.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::BodyTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Self::Timeout,
            StatusCode::INTERNAL_SERVER_ERROR => Self::Internal,
            other => Self::Other(other),
        }
    }

    /// The error a rejected JSON body stands for, with serde's message as the detail: it names
    /// the offending field and what was expected there.
    pub fn from_json_rejection(rejection: JsonRejection) -> Self {
        let reason = |error: &dyn std::error::Error| {
            error
                .source()
                .map_or_else(|| error.to_string(), ToString::to_string)
        };
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            JsonRejection::JsonSyntaxError(error) => Self::MalformedBody(reason(&error)),
            JsonRejection::JsonDataError(error) => Self::InvalidBody(reason(&error)),
            other => Self::from_status(other.status()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidQuery { .. } | Self::InvalidPath { .. } | Self::InvalidHeader { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::ProductNotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::AdminWritesDisabled => StatusCode::FORBIDDEN,
            Self::Unauthorized | Self::MissingPrincipal => StatusCode::UNAUTHORIZED,
            Self::EdgeSignature(_) | Self::EdgeSignatureMissing => StatusCode::UNAUTHORIZED,
            Self::IdempotencyKeyMissing | Self::IdempotencyKeyInvalid(_) => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::OrderNotFound(_) => StatusCode::NOT_FOUND,
            Self::MissingAccessToken
            | Self::InvalidAccessToken(_)
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            Self::EmailTaken => StatusCode::CONFLICT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::InvalidBody(_) | Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::WriteConflict => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Database(_) | Self::Overloaded | Self::Shed => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Other(status) => *status,
        }
    }

    /// True when the same request may succeed later (the edge may retry or serve stale).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Database(_) | Self::Overloaded | Self::Shed | Self::WriteConflict
        ) || matches!(self, Self::Other(s) if s.is_server_error())
    }

    /// The problem `type` slug clients branch on.
    fn kind(&self) -> &'static str {
        match self {
            Self::InvalidQuery { .. } | Self::InvalidPath { .. } => "invalid-parameter",
            Self::InvalidHeader { .. } => "invalid-header",
            Self::ProductNotFound(_) | Self::RouteNotFound => "not-found",
            Self::AdminWritesDisabled => "admin-writes-disabled",
            Self::Unauthorized => "unauthorized",
            Self::MissingPrincipal => "principal-missing",
            Self::EdgeSignature(_) => "edge-signature-invalid",
            Self::EdgeSignatureMissing => "edge-signature-missing",
            Self::IdempotencyKeyMissing => "idempotency-key-missing",
            Self::IdempotencyKeyInvalid(_) => "idempotency-key-invalid",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::OrderNotFound(_) => "not-found",
            Self::MissingAccessToken => "access-token-missing",
            Self::InvalidAccessToken(_) => "access-token-invalid",
            Self::InvalidCredentials => "invalid-credentials",
            Self::InvalidRefreshToken => "refresh-token-invalid",
            Self::EmailTaken => "email-taken",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::MalformedBody(_) => "malformed-body",
            Self::InvalidBody(_) | Self::InvalidField { .. } => "invalid-body",
            Self::PreconditionFailed => "precondition-failed",
            Self::WriteConflict => "write-conflict",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::BodyTooLarge => "payload-too-large",
            Self::Timeout => "origin-timeout",
            Self::Database(_) => "database-unavailable",
            Self::Overloaded => "origin-overloaded",
            Self::Shed => "overloaded",
            Self::Internal => "internal",
            Self::Other(s) if s.is_client_error() => "bad-request",
            Self::Other(_) => "internal",
        }
    }

    /// The problem details body for this error.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let title = match self {
            Self::Shed => "Overloaded",
            _ => status.canonical_reason().unwrap_or("Error"),
        };
        let detail = match self {
            Self::Database(_) => "the database is unavailable; try again shortly".to_owned(),
            other => other.to_string(),
        };
        Problem::new(self.kind(), status.as_u16(), title).with_detail(detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Database(error) = &self {
            tracing::error!(error = %error, "database error");
        }
        let problem = self.to_problem();
        let mut response = self.status().into_response();
        // A 401 must name a challenge (RFC 9110 §15.5.2).
        let challenge = match self {
            Self::Unauthorized => Some(admin::CHALLENGE),
            Self::MissingPrincipal => Some(principal::CHALLENGE),
            Self::EdgeSignature(_) | Self::EdgeSignatureMissing => Some(edge::CHALLENGE),
            Self::MissingAccessToken | Self::InvalidCredentials | Self::InvalidRefreshToken => {
                Some(auth::CHALLENGE)
            }
            Self::InvalidAccessToken(_) => Some(auth::INVALID_TOKEN_CHALLENGE),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if matches!(self, Self::Overloaded | Self::Shed) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        write_problem(&mut response, problem);
        response
    }
}

/// Writes `problem` as the body of `response`: the only place problem+json is serialised. The
/// problem is also kept in the response extensions, so the outer problem layer can add the
/// request id and the instance without parsing the body again.
pub fn write_problem(response: &mut Response, problem: Problem) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(problem::CONTENT_TYPE),
    );
    headers.remove(header::CONTENT_LENGTH);
    *response.body_mut() = problem.to_json().into();
    response.extensions_mut().insert(problem);
}

/// An `{id}` path segment: a positive integer, so a query only ever runs for a value that could
/// exist.
pub fn positive_id(raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::InvalidPath {
            parameter: "id",
            reason: "must be a positive integer".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_are_503_and_never_leak_the_driver_message() {
        let error = ApiError::from(sqlx::Error::Protocol("SELECT secret FROM users".into()));
        let problem = error.to_problem();
        assert_eq!(problem.status, 503);
        assert!(error.is_retryable());
        assert!(
            !problem.to_json().contains("secret"),
            "{}",
            problem.to_json()
        );
    }

    #[test]
    fn an_exhausted_pool_is_a_503_with_retry_after_and_other_database_errors_are_not() {
        let response = ApiError::from(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let problem = response.extensions().get::<Problem>().unwrap();
        assert!(
            problem.type_uri.ends_with("origin-overloaded"),
            "{}",
            problem.type_uri
        );

        let other = ApiError::from(sqlx::Error::PoolClosed).into_response();
        assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!other.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn a_shed_request_is_an_overloaded_503_with_retry_after() {
        assert!(ApiError::Shed.is_retryable());
        let response = ApiError::Shed.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            problem::CONTENT_TYPE
        );
        let problem = response.extensions().get::<Problem>().unwrap();
        assert_eq!(problem.kind(), "overloaded");
        assert_eq!(problem.title, "Overloaded");
        assert_eq!(problem.status, 503);
        assert_eq!(
            problem.detail.as_deref(),
            Some(
                "the origin is shedding load: this kind of request queues too long; retry after 1 s"
            )
        );
    }

    #[test]
    fn bare_statuses_map_back_to_the_same_status() {
        for code in [400, 404, 405, 408, 413, 415, 422, 500, 502, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            let mapped = ApiError::from_status(status).status();
            // 408 (tower-http's timeout default) is reported as our 504: the client did nothing wrong.
            let expected = if code == 408 { 504 } else { code };
            assert_eq!(mapped.as_u16(), expected);
        }
    }

    #[test]
    fn a_401_carries_the_bearer_challenge_and_other_errors_none() {
        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"breakwater-admin\""
        );
        let forbidden = ApiError::AdminWritesDisabled.into_response();
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert!(!forbidden.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn only_a_lost_write_race_among_write_errors_is_retryable() {
        assert!(ApiError::WriteConflict.is_retryable());
        for error in [
            ApiError::PreconditionFailed,
            ApiError::Unauthorized,
            ApiError::InvalidField {
                field: "name".into(),
                reason: "must not be empty".into(),
            },
        ] {
            assert!(!error.is_retryable(), "{error:?}");
        }
    }

    #[test]
    fn client_errors_are_not_retryable() {
        let error = ApiError::InvalidQuery {
            parameter: "page",
            reason: "must be an integer".into(),
        };
        assert!(!error.is_retryable());
        let problem = error.to_problem();
        assert_eq!(problem.status, 400);
        assert!(problem.detail.unwrap().contains("`page`"));
    }
}
