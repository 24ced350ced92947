//! A JSON request body together with its exact bytes, for a handler that must hash what was sent
//! (the idempotency fingerprint) as well as read it.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The body as `T` and as the bytes received. Refused exactly as axum's `Json` refuses it for
/// every other handler (it does the checking): `415` without a JSON `Content-Type`, `400` for a
/// syntax error, `422` for JSON of the wrong shape.
#[derive(Debug)]
pub struct JsonWithBytes<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<T, S> FromRequest<S> for JsonWithBytes<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let headers = parts.headers.clone();
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| ApiError::from_status(rejection.status()))?;
        // Buffered once; `Bytes` clones share the buffer.
        let mut again = Request::new(Body::from(bytes.clone()));
        *again.headers_mut() = headers;
        let Json(value) = Json::<T>::from_request(again, state)
            .await
            .map_err(ApiError::from_json_rejection)?;
        Ok(Self { value, bytes })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};

    use super::*;

    async fn extract(
        content_type: Option<&str>,
        body: &str,
    ) -> Result<JsonWithBytes<u8>, ApiError> {
        let mut request = Request::new(Body::from(body.to_owned()));
        if let Some(content_type) = content_type {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        }
        JsonWithBytes::<u8>::from_request(request, &()).await
    }

    #[tokio::test]
    async fn keeps_the_exact_bytes_and_refuses_like_json() {
        let ok = extract(Some("application/json"), " 7 ").await.unwrap();
        assert_eq!((ok.value, &ok.bytes[..]), (7, &b" 7 "[..]));
        assert!(extract(Some("application/problem+json"), "7").await.is_ok());
        for (content_type, body, status) in [
            (None, "7", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Some("text/plain"), "7", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Some("application/json"), "nope", StatusCode::BAD_REQUEST),
            (
                Some("application/json"),
                "\"7\"",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let error = extract(content_type, body).await.unwrap_err();
            assert_eq!(error.status(), status, "{content_type:?} {body}");
        }
    }
}
