//! The cart: only with an access token, private and never stored by a cache, quantities checked,
//! and each user's own.

use serde_json::{Value, json};

use crate::auth::signed_in;
use crate::helpers::{Backend, TestApp, assert_problem, on_each_backend, spawn_app};

const PRIVATE: &str = "private, no-store";

/// A cart request with `token` as the bearer token, if any.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the origin");
    assert_eq!(response.headers()["cache-control"], PRIVATE, "{path}");
    response
}

async fn put_item(app: &TestApp, token: &str, product: i64, quantity: Value) -> reqwest::Response {
    let path = format!("/api/cart/items/{product}");
    let body = json!({ "quantity": quantity });
    send(app, reqwest::Method::PUT, &path, Some(token), Some(body)).await
}

async fn cart(app: &TestApp, token: &str) -> Value {
    let response = send(app, reqwest::Method::GET, "/api/cart", Some(token), None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

on_each_backend!(the_cart_needs_an_access_token_and_is_never_stored);
async fn the_cart_needs_an_access_token_and_is_never_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path, body) in [
        (reqwest::Method::GET, "/api/cart", None),
        (
            reqwest::Method::PUT,
            "/api/cart/items/3",
            Some(json!({"quantity": 1})),
        ),
        (reqwest::Method::DELETE, "/api/cart/items/3", None),
    ] {
        let response = send(&app, method, path, None, body).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="breakwater""#
        );
        assert_problem(response, 401).await;
    }
    let response = send(&app, reqwest::Method::GET, "/api/cart", Some("x.y.z"), None).await;
    assert_problem(response, 401).await;
}

on_each_backend!(items_are_added_changed_priced_and_removed);
async fn items_are_added_changed_priced_and_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = signed_in(&app, "ann@example.com").await;
    let empty = cart(&app, &token).await;
    assert_eq!(
        empty,
        json!({"items": [], "total_cents": 0, "currency": null})
    );

    let (p3, p8) = (
        app.get_json("/api/products/3").await,
        app.get_json("/api/products/8").await,
    );
    let price = |p: &Value| p["price_cents"].as_i64().unwrap();
    let response = put_item(&app, &token, 8, json!(1)).await;
    assert_eq!(response.status(), 200);
    let after_put: Value = response.json().await.unwrap();
    assert_eq!(after_put["items"][0]["product_id"], 8);
    put_item(&app, &token, 3, json!(2)).await;
    // Setting again replaces the quantity.
    put_item(&app, &token, 3, json!(5)).await;

    let full = cart(&app, &token).await;
    assert_eq!(
        full["items"],
        json!([
            {"product_id": 3, "name": p3["name"], "unit_price_cents": price(&p3),
             "quantity": 5, "line_total_cents": 5 * price(&p3)},
            {"product_id": 8, "name": p8["name"], "unit_price_cents": price(&p8),
             "quantity": 1, "line_total_cents": price(&p8)},
        ])
    );
    assert_eq!(full["total_cents"], 5 * price(&p3) + price(&p8));
    assert_eq!(full["currency"], "EUR");

    for _ in 0..2 {
        let path = "/api/cart/items/3";
        let response = send(&app, reqwest::Method::DELETE, path, Some(&token), None).await;
        assert_eq!(response.status(), 204);
    }
    let left = cart(&app, &token).await;
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    assert_eq!(left["total_cents"], price(&p8));
}

on_each_backend!(quantities_and_products_are_checked);
async fn quantities_and_products_are_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = signed_in(&app, "ann@example.com").await;
    for quantity in [json!(0), json!(101), json!(-1)] {
        let problem = assert_problem(put_item(&app, &token, 3, quantity).await, 422).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("`quantity`"),
            "{problem}"
        );
    }
    for quantity in [json!("two"), json!(1.5), json!(null)] {
        assert_problem(put_item(&app, &token, 3, quantity).await, 422).await;
    }
    let problem = assert_problem(put_item(&app, &token, 999_999_999, json!(1)).await, 404).await;
    assert_eq!(problem["type"], "https://breakwater.dev/problems/not-found");
    for path in ["/api/cart/items/abc", "/api/cart/items/0"] {
        let body = Some(json!({"quantity": 1}));
        let response = send(&app, reqwest::Method::PUT, path, Some(&token), body).await;
        assert_problem(response, 400).await;
    }
    assert_eq!(cart(&app, &token).await["items"], json!([]));
}

on_each_backend!(each_user_sees_only_their_own_cart);
async fn each_user_sees_only_their_own_cart(backend: Backend) {
    let app = spawn_app(backend).await;
    let ann = signed_in(&app, "ann@example.com").await;
    let bob = signed_in(&app, "bob@example.com").await;
    put_item(&app, &ann, 3, json!(2)).await;
    assert_eq!(cart(&app, &bob).await["items"], json!([]));
    let path = "/api/cart/items/3";
    send(&app, reqwest::Method::DELETE, path, Some(&bob), None).await;
    assert_eq!(cart(&app, &ann).await["items"][0]["quantity"], 2);
}
