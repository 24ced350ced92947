//! Bulkheads: reads and writes have pools of their own, and a request that cannot get a
//! connection within its pool's wait budget is answered `503` with `Retry-After` at once.
//!
//! The budgets here (500 ms) are longer than production's: sqlx counts opening a new connection
//! against the same budget, and on a loaded test machine that alone can take a few hundred ms.

use std::time::Duration;

use breakwater_origin::Db;
use serde_json::json;

use crate::helpers::{Backend, assert_problem, on_each_backend, spawn_app_with};

/// Holds every connection of `db`'s pool until dropped.
pub async fn exhaust(db: &Db) -> Vec<Box<dyn std::any::Any>> {
    let size = match db {
        Db::Sqlite(pool) => pool.options().get_max_connections(),
        Db::Postgres(pool) => pool.options().get_max_connections(),
    };
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    for _ in 0..size {
        match db {
            Db::Sqlite(pool) => held.push(Box::new(pool.acquire().await.unwrap())),
            Db::Postgres(pool) => held.push(Box::new(pool.acquire().await.unwrap())),
        }
    }
    held
}

async fn an_exhausted_read_pool_answers_503_while_writes_go_on(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.bulkheads.reads.size = 2;
        settings.bulkheads.reads.wait = Duration::from_millis(500);
    })
    .await;
    assert_eq!(app.get("/api/products/1").await.status(), 200);

    let held = exhaust(app.reads.primary()).await;
    let refused = app.get("/api/products/1").await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem = assert_problem(refused, 503).await;
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/origin-overloaded"),
        "{problem}"
    );

    // The write bulkhead is untouched by the reads' exhaustion.
    app.place_order(
        "ip:198.51.100.4",
        "bulkhead-write",
        r#"{"items": [{"product_id": 1, "quantity": 1}]}"#,
    )
    .await;

    drop(held);
    assert_eq!(app.get("/api/products/1").await.status(), 200);
}

async fn an_exhausted_write_pool_answers_503_while_reads_go_on(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.bulkheads.writes.size = 1;
        settings.bulkheads.writes.wait = Duration::from_millis(500);
    })
    .await;
    let held = exhaust(&app.db).await;
    let refused = app
        .client
        .post(format!("{}/api/orders", app.address))
        .header("breakwater-principal", "ip:198.51.100.5")
        .header("idempotency-key", "\"bulkhead-refused\"")
        .json(&json!({ "items": [{ "product_id": 1, "quantity": 1 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_problem(refused, 503).await;
    assert_eq!(app.get("/api/products/2").await.status(), 200);
    drop(held);
}

on_each_backend!(
    an_exhausted_read_pool_answers_503_while_writes_go_on,
    an_exhausted_write_pool_answers_503_while_reads_go_on,
);
