//! HTTP-level behaviour shared by every route: request ids, unknown routes, methods, body limit.

use crate::helpers::{Backend, assert_problem, on_each_backend, spawn_app};

on_each_backend!(an_incoming_request_id_is_echoed);
async fn an_incoming_request_id_is_echoed(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .get(format!("{}/health", app.address))
        .header("x-request-id", "test-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "test-req-42");
}

on_each_backend!(a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one);
async fn a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.get("/health").await.headers()["x-request-id"].clone();
    let second = app.get("/health").await.headers()["x-request-id"].clone();
    assert!(!first.is_empty());
    assert_ne!(first, second, "request ids must be unique");

    let unsafe_id = "has spaces {and} braces";
    let response = app
        .client
        .get(format!("{}/health", app.address))
        .header("x-request-id", unsafe_id)
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"].to_str().unwrap();
    assert!(!echoed.is_empty() && echoed != unsafe_id, "{echoed}");
}

on_each_backend!(problems_carry_the_request_id);
async fn problems_carry_the_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .get(format!("{}/api/products/nope", app.address))
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me");
    let problem = assert_problem(response, 400).await;
    assert_eq!(problem["request_id"], "trace-me");
}

on_each_backend!(an_unknown_route_is_a_404_problem);
async fn an_unknown_route_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/nope", "/api/products/1/reviews", "/api"] {
        let problem = assert_problem(app.get(path).await, 404).await;
        assert_eq!(problem["instance"], path);
        assert!(problem["request_id"].is_string(), "{problem}");
    }
}

on_each_backend!(a_wrong_method_is_a_405_problem);
async fn a_wrong_method_is_a_405_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .delete(format!("{}/api/products/1", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(response, 405).await;
}

on_each_backend!(an_oversized_body_is_a_413_problem);
async fn an_oversized_body_is_a_413_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(format!("{}/api/products", app.address))
        .body(vec![b'x'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(response, 413).await;
}
