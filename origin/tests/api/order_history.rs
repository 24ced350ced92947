//! `GET /api/orders`: the caller's orders, newest first, a page at a time, and nobody else's.

use serde_json::Value;

use crate::helpers::{Backend, TestApp, assert_problem, on_each_backend, spawn_app};

const ALICE: &str = "ip:203.0.113.7";
const BOB: &str = "key:0123456789abcdef0123456789abcdef";

/// Places an order of `quantity` × product `product` for `principal`; returns its id.
async fn place(app: &TestApp, principal: &str, key: &str, product: i64, quantity: i64) -> i64 {
    let response = app
        .client
        .post(format!("{}/api/orders", app.address))
        .header("breakwater-principal", principal)
        .header("idempotency-key", format!("\"{key}\""))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"items":[{{"product_id":{product},"quantity":{quantity}}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    order["id"].as_i64().unwrap()
}

async fn list(app: &TestApp, principal: Option<&str>, query: &str) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/api/orders{query}", app.address));
    if let Some(principal) = principal {
        request = request.header("breakwater-principal", principal);
    }
    request.send().await.unwrap()
}

async fn page(app: &TestApp, principal: &str, query: &str) -> Value {
    let response = list(app, Some(principal), query).await;
    assert_eq!(response.status(), 200, "{query}");
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["id"].as_i64().unwrap())
        .collect()
}

on_each_backend!(the_callers_orders_come_newest_first_a_page_at_a_time);
async fn the_callers_orders_come_newest_first_a_page_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = place(&app, ALICE, "history-1", 3, 2).await;
    let second = place(&app, ALICE, "history-2", 8, 1).await;
    let third = place(&app, ALICE, "history-3", 5, 4).await;
    place(&app, BOB, "history-1", 3, 1).await;
    // Newest by time, not by id: make the first order the most recent, and give the other two
    // the same instant so that the id decides between them.
    app.execute(&format!(
        "UPDATE orders SET created_at = 2000000000000 WHERE id = {first}; \
         UPDATE orders SET created_at = 1000000000000 WHERE id IN ({second}, {third});"
    ))
    .await;

    let all = page(&app, ALICE, "").await;
    assert_eq!(ids(&all), [first, third, second]);
    assert_eq!(
        (
            &all["page"],
            &all["per_page"],
            &all["total"],
            &all["total_pages"]
        ),
        (
            &Value::from(1),
            &Value::from(24),
            &Value::from(3),
            &Value::from(1)
        )
    );
    // Each order as `GET /api/orders/{id}` shows it, items included.
    let single: Value = app
        .client
        .get(format!("{}/api/orders/{first}", app.address))
        .header("breakwater-principal", ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"][0], single);
    assert_eq!(all["items"][1]["items"][0]["quantity"], 4);
    assert_eq!(all["items"][0]["created_at"], "2033-05-18T03:33:20.000Z");

    let one = page(&app, ALICE, "?per_page=2").await;
    let two = page(&app, ALICE, "?per_page=2&page=2").await;
    let past = page(&app, ALICE, "?per_page=2&page=3").await;
    assert_eq!(ids(&one), [first, third]);
    assert_eq!(ids(&two), [second]);
    assert!(ids(&past).is_empty());
    assert_eq!(
        (&one["total"], &one["total_pages"]),
        (&Value::from(3), &Value::from(2))
    );
    assert_eq!(past["total"], 3);
}

on_each_backend!(nobody_sees_anyone_elses_orders);
async fn nobody_sees_anyone_elses_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    place(&app, ALICE, "mine", 3, 1).await;
    let bobs = page(&app, BOB, "").await;
    assert!(ids(&bobs).is_empty());
    assert_eq!(bobs["total"], 0);
    assert_eq!(bobs["total_pages"], 0);

    let response = list(&app, None, "").await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_problem(response, 401).await;
}

on_each_backend!(a_bad_page_is_a_400_naming_the_parameter);
async fn a_bad_page_is_a_400_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, parameter) in [("?page=0", "page"), ("?per_page=101", "per_page")] {
        let problem = assert_problem(list(&app, Some(ALICE), query).await, 400).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("`{parameter}`")), "{detail}");
    }
}
