//! The outermost word on errors: every error response leaves as problem+json carrying the
//! request id, whether a handler wrote it or a layer (timeout, body limit, panic catcher, an
//! extractor's rejection) produced a bare status.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use breakwater_core::{headers, problem};

use crate::error::{ApiError, write_problem};

/// Middleware: completes problems written by [`ApiError`] and converts bare error responses.
pub async fn render(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let instance = request.uri().path().to_owned();

    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let problem = match response.extensions_mut().remove::<problem::Problem>() {
        Some(problem) => problem,
        // A problem body from somewhere we do not know is left as it is.
        None if is_problem_json(&response) => return response,
        None => ApiError::from_status(status).to_problem(),
    };
    let problem = problem.with_instance(instance);
    let problem = match request_id {
        Some(id) => problem.with_request_id(id),
        None => problem,
    };
    write_problem(&mut response, problem);
    response
}

fn is_problem_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(problem::CONTENT_TYPE.as_bytes()))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use breakwater_core::problem::Problem;

    use super::*;

    async fn through_layer(status: StatusCode, body: &'static str) -> (Response, Problem) {
        let app = Router::new()
            .route("/x", get(move || async move { (status, body) }))
            .layer(axum::middleware::from_fn(render));
        let request = Request::get("/x")
            .header(headers::REQUEST_ID, "rid-1")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 16).await.unwrap();
        let problem = serde_json::from_slice(&bytes).unwrap();
        (Response::from_parts(parts, Body::empty()), problem)
    }

    #[tokio::test]
    async fn a_bare_gateway_timeout_becomes_a_problem_with_the_request_id() {
        let (response, problem) = through_layer(StatusCode::GATEWAY_TIMEOUT, "").await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(is_problem_json(&response));
        assert_eq!(problem.status, 504);
        assert_eq!(problem.request_id.as_deref(), Some("rid-1"));
        assert_eq!(problem.instance.as_deref(), Some("/x"));
    }

    #[tokio::test]
    async fn a_plain_text_error_body_is_replaced() {
        let (response, problem) = through_layer(StatusCode::BAD_REQUEST, "raw rejection").await;
        assert!(is_problem_json(&response));
        assert_eq!(problem.status, 400);
        assert!(!problem.to_json().contains("raw rejection"));
    }
}
