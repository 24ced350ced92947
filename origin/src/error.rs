//! The origin's one error type and the one place it becomes an HTTP response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use breakwater_core::problem::{self, Problem};

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
    #[error("product {0} does not exist")]
    ProductNotFound(i64),
    #[error("no resource at this path")]
    RouteNotFound,
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    #[error("the request body is larger than the origin accepts")]
    BodyTooLarge,
    #[error("the origin did not answer in time")]
    Timeout,
    /// The detail sent to the client is generic on purpose: SQL and driver messages stay in logs.
    #[error("database unavailable")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal,
    /// An error response some layer produced without a body of ours (for example an axum
    /// extractor's rejection), kept at its status.
    #[error("{}", .0.canonical_reason().unwrap_or("error"))]
    Other(StatusCode),
}

impl ApiError {
    /// The error a bare error status stands for, for responses that layers wrote themselves.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::BodyTooLarge,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Self::Timeout,
            StatusCode::INTERNAL_SERVER_ERROR => Self::Internal,
            other => Self::Other(other),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidQuery { .. } | Self::InvalidPath { .. } => StatusCode::BAD_REQUEST,
            Self::ProductNotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Other(status) => *status,
        }
    }

    /// True when the same request may succeed later (the edge may retry or serve stale).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Timeout | Self::Database(_))
            || matches!(self, Self::Other(s) if s.is_server_error())
    }

    /// The problem `type` slug clients branch on.
    fn kind(&self) -> &'static str {
        match self {
            Self::InvalidQuery { .. } | Self::InvalidPath { .. } => "invalid-parameter",
            Self::ProductNotFound(_) | Self::RouteNotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::BodyTooLarge => "payload-too-large",
            Self::Timeout => "origin-timeout",
            Self::Database(_) => "database-unavailable",
            Self::Internal => "internal",
            Self::Other(s) if s.is_client_error() => "bad-request",
            Self::Other(_) => "internal",
        }
    }

    /// The problem details body for this error.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
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
