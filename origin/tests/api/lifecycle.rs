//! Start-up, restart and shutdown: seeding is deterministic and happens once; shutdown drains.

use crate::helpers::{Backend, TestDatabase, on_each_backend, spawn_app, spawn_app_on};

async fn whole_catalogue(app: &crate::helpers::TestApp) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let body = app
            .get_json(&format!("/api/products?page={page}&per_page=100"))
            .await;
        let items = body["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        all.extend(items.iter().cloned());
    }
    all
}

on_each_backend!(two_fresh_databases_hold_identical_catalogues);
async fn two_fresh_databases_hold_identical_catalogues(backend: Backend) {
    let (a, b) = tokio::join!(spawn_app(backend), spawn_app(backend));
    assert_ne!(a.database_url, b.database_url);
    let (first, second) = tokio::join!(whole_catalogue(&a), whole_catalogue(&b));
    assert!(first.len() >= 10_000);
    assert_eq!(first, second);
}

on_each_backend!(a_restart_on_an_existing_database_does_not_reseed);
async fn a_restart_on_an_existing_database_does_not_reseed(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let app = spawn_app_on(&database).await;
    let before = app.get_json("/api/products").await["total"]
        .as_i64()
        .unwrap();
    // A change the seeder would undo if it ran again on a non-empty catalogue.
    app.execute("DELETE FROM products WHERE id = 5").await;
    app.stop().await.unwrap();

    let restarted = spawn_app_on(&database).await;
    let after = restarted.get_json("/api/products").await["total"]
        .as_i64()
        .unwrap();
    assert_eq!(after, before - 1);
    assert_eq!(restarted.get("/api/products/5").await.status(), 404);
    assert_eq!(restarted.get("/api/products/6").await.status(), 200);
}

on_each_backend!(run_until_returns_ok_once_shutdown_is_triggered_and_stops_accepting);
async fn run_until_returns_ok_once_shutdown_is_triggered_and_stops_accepting(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/health").await.status(), 200);
    let address = app.address.clone();

    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await;
    stopped
        .expect("shutdown completes")
        .expect("run_until returns Ok");

    let after = reqwest::Client::new()
        .get(format!("{address}/health"))
        .send()
        .await;
    assert!(after.is_err(), "still serving after shutdown: {after:?}");
}
