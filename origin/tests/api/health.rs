//! `/health` and `/ready`.

use crate::helpers::{Backend, assert_problem, on_each_backend, spawn_app};

on_each_backend!(health_answers_even_when_the_database_is_gone);
async fn health_answers_even_when_the_database_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    app.db.close().await;

    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    // The same outage is visible on /ready, which proves the pool really is unusable.
    let problem = assert_problem(app.get("/ready").await, 503).await;
    assert!(
        !problem.to_string().to_lowercase().contains("select"),
        "{problem}"
    );
}

on_each_backend!(ready_answers_when_the_database_does);
async fn ready_answers_when_the_database_does(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}
