//! `GET /api/rankings`: products by units sold as the analytics consumer counts them, cacheable
//! with an ETag, a bounded `limit`.

use breakwater_origin::outbox::system_clock;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_problem, on_each_backend, spawn_app};

const BUYER: &str = "ip:198.51.100.4";

/// Places each order and delivers them all.
async fn sell(app: &TestApp, orders: &[&str]) {
    for (n, body) in orders.iter().enumerate() {
        app.place_order(BUYER, &format!("rank-{n}"), body).await;
    }
    let outcomes = app.outbox.deliver_due(system_clock()).await.unwrap();
    assert_eq!(outcomes.len(), 3 * orders.len(), "{outcomes:?}");
}

async fn name_of(app: &TestApp, product: i64) -> Value {
    app.get_json(&format!("/api/products/{product}")).await["name"].clone()
}

on_each_backend!(rankings_order_products_by_units_then_id);
async fn rankings_order_products_by_units_then_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let empty = app.get_json("/api/rankings").await;
    assert_eq!(empty, json!({"by": "sales", "limit": 10, "items": []}));

    sell(
        &app,
        &[
            r#"{"items":[{"product_id":5,"quantity":3}]}"#,
            r#"{"items":[{"product_id":2,"quantity":3},{"product_id":9,"quantity":1}]}"#,
            r#"{"items":[{"product_id":9,"quantity":1},{"product_id":4,"quantity":2}]}"#,
        ],
    )
    .await;
    // Units: 2 → 3, 5 → 3, 4 → 2, 9 → 2 (in two orders).
    let ranked = app.get_json("/api/rankings").await;
    let mut expected = Vec::new();
    for (rank, (id, units, orders)) in [(2, 3, 1), (5, 3, 1), (4, 2, 1), (9, 2, 2)]
        .into_iter()
        .enumerate()
    {
        expected.push(json!({
            "rank": rank + 1,
            "id": id,
            "name": name_of(&app, id).await,
            "units": units,
            "orders": orders,
            "views": 0,
            "votes": 0,
        }));
    }
    assert_eq!(
        ranked,
        json!({"by": "sales", "limit": 10, "items": expected})
    );

    let top = app.get_json("/api/rankings?limit=3").await;
    assert_eq!(top["limit"], 3);
    assert_eq!(top["items"], json!(expected[..3]));
}

on_each_backend!(rankings_are_cacheable_and_revalidate_with_304);
async fn rankings_are_cacheable_and_revalidate_with_304(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/api/rankings?limit=5").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers["cache-control"],
        "public, max-age=30, s-maxage=60, stale-while-revalidate=30, stale-if-error=600"
    );
    assert_eq!(
        headers["cdn-cache-control"],
        "max-age=60, stale-while-revalidate=30, stale-if-error=600"
    );
    assert_eq!(headers["cache-tag"], "rankings");
    assert_eq!(headers["content-type"], "application/json");
    let etag = headers["etag"].to_str().unwrap().to_owned();

    let revalidated = app
        .get_with("/api/rankings?limit=5", &[("if-none-match", &etag)])
        .await;
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert_eq!(revalidated.headers()["cache-tag"], "rankings");

    // A sale changes the ranking, and so its tag.
    sell(&app, &[r#"{"items":[{"product_id":7,"quantity":1}]}"#]).await;
    let changed = app
        .get_with("/api/rankings?limit=5", &[("if-none-match", &etag)])
        .await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());
}

on_each_backend!(a_bad_limit_is_a_problem_naming_it);
async fn a_bad_limit_is_a_problem_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "limit=",
        "limit=1&limit=2",
    ] {
        let response = app.get(&format!("/api/rankings?{query}")).await;
        let problem = assert_problem(response, 400).await;
        assert_eq!(
            problem["type"], "https://breakwater.dev/problems/invalid-parameter",
            "{query}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("`limit`"),
            "{problem}"
        );
    }
    assert_eq!(app.get("/api/rankings?limit=100").await.status(), 200);
}
