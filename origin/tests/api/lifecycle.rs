//! Start-up, restart and shutdown: seeding is deterministic and happens once; shutdown drains.

use crate::helpers::{spawn_app, spawn_app_in};

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

#[tokio::test]
async fn two_fresh_databases_hold_identical_catalogues() {
    let (a, b) = tokio::join!(spawn_app(), spawn_app());
    assert_ne!(a.database_file, b.database_file);
    let (first, second) = tokio::join!(whole_catalogue(&a), whole_catalogue(&b));
    assert!(first.len() >= 10_000);
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_restart_on_an_existing_database_does_not_reseed() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path()).await;
    let before = app.get_json("/api/products").await["total"]
        .as_i64()
        .unwrap();
    // A change the seeder would undo if it ran again on a non-empty catalogue.
    match &app.db {
        breakwater_origin::Db::Sqlite(pool) => {
            sqlx::query("DELETE FROM products WHERE id = 5")
                .execute(pool)
                .await
                .unwrap();
        }
        other => panic!("tests run on SQLite, got {other:?}"),
    }
    app.stop().await.unwrap();

    let restarted = spawn_app_in(dir.path()).await;
    let after = restarted.get_json("/api/products").await["total"]
        .as_i64()
        .unwrap();
    assert_eq!(after, before - 1);
    assert_eq!(restarted.get("/api/products/5").await.status(), 404);
    assert_eq!(restarted.get("/api/products/6").await.status(), 200);
}

#[tokio::test]
async fn run_until_returns_ok_once_shutdown_is_triggered_and_stops_accepting() {
    let app = spawn_app().await;
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
