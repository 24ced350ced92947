//! `PUT /api/products/{id}`: authentication, body parsing and validation, `If-Match`, and what
//! a successful write tells the edge.

use breakwater_origin::product::{self, Product, ProductId};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Backend, TestApp, assert_problem, on_each_backend, spawn_app,
    spawn_app_with_admin_token,
};
use crate::products::etag_of;

/// The product at `path` and its ETag, read through the API.
async fn current(app: &TestApp, path: &str) -> (Value, String) {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), etag)
}

on_each_backend!(an_update_changes_the_product_and_every_etag_that_shows_it);
async fn an_update_changes_the_product_and_every_etag_that_shows_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = "/api/products/5";
    let (before, item_etag) = current(&app, path).await;
    let (_, list_etag) = current(&app, "/api/products?per_page=10").await;

    let response = app
        .admin_put(
            path,
            &json!({ "name": "  Renamed Kettle ", "price_cents": 4321 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["cache-tag"], "product:5, products");
    assert_eq!(response.headers()["content-type"], "application/json");
    let put_etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(put_etag, etag_of(&bytes));
    let updated: Value = serde_json::from_slice(&bytes).unwrap();
    let mut expected = before.clone();
    expected["name"] = json!("Renamed Kettle");
    expected["price_cents"] = json!(4321);
    assert_eq!(updated, expected, "only the given fields change");

    let (after, new_item_etag) = current(&app, path).await;
    assert_eq!(after, updated);
    assert_eq!(new_item_etag, put_etag, "the PUT's ETag is the next GET's");
    assert_ne!(new_item_etag, item_etag);
    let stale = app.get_with(path, &[("if-none-match", &item_etag)]).await;
    assert_eq!(stale.status(), 200, "the old ETag no longer validates");

    let (page, new_list_etag) = current(&app, "/api/products?per_page=10").await;
    assert_ne!(new_list_etag, list_etag);
    assert_eq!(page["items"][4], updated);
}

on_each_backend!(without_the_token_a_put_is_401_with_a_bearer_challenge);
async fn without_the_token_a_put_is_401_with_a_bearer_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/api/products/5", app.address);
    let (before, _) = current(&app, "/api/products/5").await;
    let body = json!({ "stock": 1 });
    let wrong = format!("{ADMIN_TOKEN}x");
    let attempts = [
        app.client.put(&url).json(&body),
        app.client.put(&url).bearer_auth(&wrong).json(&body),
        app.client
            .put(&url)
            .bearer_auth(&ADMIN_TOKEN[1..])
            .json(&body),
        app.client
            .put(&url)
            .basic_auth("admin", Some(ADMIN_TOKEN))
            .json(&body),
        app.client
            .put(&url)
            .header("authorization", ADMIN_TOKEN)
            .json(&body),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"breakwater-admin\""
        );
        let problem = assert_problem(response, 401).await;
        assert_eq!(
            problem["type"],
            "https://breakwater.dev/problems/unauthorized"
        );
    }
    assert_eq!(current(&app, "/api/products/5").await.0, before);

    // The scheme is case-insensitive (RFC 9110 §11.1).
    let response = app
        .client
        .put(&url)
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

on_each_backend!(authentication_comes_before_anything_about_the_request);
async fn authentication_comes_before_anything_about_the_request(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, body, content_type) in [
        ("/api/products/5", "{", "application/json"),
        ("/api/products/5", "{}", "text/plain"),
        (
            "/api/products/999999",
            r#"{"stock": 1}"#,
            "application/json",
        ),
        ("/api/products/abc", r#"{"stock": 1}"#, "application/json"),
    ] {
        let response = app
            .client
            .put(format!("{}{path}", app.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, 401).await;
    }
}

on_each_backend!(with_no_token_configured_admin_writes_are_403);
async fn with_no_token_configured_admin_writes_are_403(backend: Backend) {
    let app = spawn_app_with_admin_token(backend, None).await;
    let response = app
        .admin_put("/api/products/5", &json!({ "stock": 1 }))
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("www-authenticate"));
    let problem = assert_problem(response, 403).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("disabled"), "{detail}");
    assert!(detail.contains("BREAKWATER_ADMIN_TOKEN"), "{detail}");
}

on_each_backend!(a_body_that_is_not_json_is_400);
async fn a_body_that_is_not_json_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        "{",
        "",
        "not json",
        r#"{"stock": 1} trailing"#,
        r#"{"stock": 1,}"#,
    ] {
        let response = app
            .admin_put("/api/products/5", &Value::Null)
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 400).await;
        assert_eq!(
            problem["type"], "https://breakwater.dev/problems/malformed-body",
            "{body:?}"
        );
    }
}

on_each_backend!(a_body_not_sent_as_json_is_415);
async fn a_body_not_sent_as_json_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/api/products/5", app.address);
    let body = r#"{"stock": 1}"#;
    let requests = [
        app.client.put(&url).header("content-type", "text/plain"),
        app.client
            .put(&url)
            .header("content-type", "application/x-www-form-urlencoded"),
        app.client.put(&url),
    ];
    for request in requests {
        let response = request
            .bearer_auth(ADMIN_TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 415).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{problem}"
        );
    }
}

on_each_backend!(invalid_fields_are_422_naming_the_field_and_change_nothing);
async fn invalid_fields_are_422_naming_the_field_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (before, etag) = current(&app, "/api/products/5").await;
    let cases = [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "   " }), "name"),
        (json!({ "name": "x".repeat(121) }), "name"),
        (json!({ "description": "" }), "description"),
        (json!({ "price_cents": -1 }), "price_cents"),
        (json!({ "price_cents": "12" }), "price_cents"),
        (json!({ "price_cents": 1.5 }), "price_cents"),
        (json!({ "stock": -3 }), "stock"),
        (json!({ "name": null }), "name"),
        (json!({ "name": "Fine", "stock": -1 }), "stock"),
        (json!({ "sku": "BW-1" }), "sku"),
        (json!({}), "at least one"),
        (json!("a string"), "expected"),
    ];
    for (body, names) in cases {
        let response = app
            .admin_put("/api/products/5", &body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 422).await;
        assert_eq!(
            problem["type"],
            "https://breakwater.dev/problems/invalid-body"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{body}: {detail}");
    }
    let (after, etag_after) = current(&app, "/api/products/5").await;
    assert_eq!((after, etag_after), (before, etag));
}

on_each_backend!(an_unknown_product_is_404_and_a_malformed_id_400);
async fn an_unknown_product_is_404_and_a_malformed_id_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let total = app.get_json("/api/products").await["total"]
        .as_i64()
        .unwrap();
    let beyond = total + 1;
    let response = app
        .admin_put(&format!("/api/products/{beyond}"), &json!({ "stock": 1 }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 404).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&beyond.to_string())
    );
    // An unknown product is 404 even under If-Match (RFC 9110 §13.2.1).
    let response = app
        .admin_put(&format!("/api/products/{beyond}"), &json!({ "stock": 1 }))
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    assert_problem(response, 404).await;

    for bad in ["abc", "0", "-1"] {
        let response = app
            .admin_put(&format!("/api/products/{bad}"), &json!({ "stock": 1 }))
            .send()
            .await
            .unwrap();
        assert_problem(response, 400).await;
    }
}

on_each_backend!(if_match_refuses_an_update_based_on_a_stale_version);
async fn if_match_refuses_an_update_based_on_a_stale_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = "/api/products/8";
    let (_, v0) = current(&app, path).await;
    let put = |if_match: &str, stock: i64| {
        app.admin_put(path, &json!({ "stock": stock }))
            .header("if-match", if_match)
            .send()
    };

    let first = put(&v0, 11).await.unwrap();
    assert_eq!(first.status(), 200);
    let v1 = first.headers()["etag"].to_str().unwrap().to_owned();

    // A second writer still holding v0 would overwrite the first write: refused.
    let problem = assert_problem(put(&v0, 22).await.unwrap(), 412).await;
    assert_eq!(
        problem["type"],
        "https://breakwater.dev/problems/precondition-failed"
    );
    let (product, etag) = current(&app, path).await;
    assert_eq!(
        (product["stock"].as_i64(), etag.as_str()),
        (Some(11), v1.as_str())
    );

    // If-Match uses the strong comparison: a weak tag never matches.
    assert_problem(put(&format!("W/{v1}"), 33).await.unwrap(), 412).await;
    // If-None-Match on a write: * means "only if it does not exist yet".
    let response = app
        .admin_put(path, &json!({ "stock": 44 }))
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_problem(response, 412).await;
    assert_eq!(current(&app, path).await.0["stock"], 11);

    assert_eq!(
        put(&format!("\"nope\", {v1}"), 55).await.unwrap().status(),
        200
    );
    assert_eq!(put("*", 66).await.unwrap().status(), 200);
    assert_eq!(current(&app, path).await.0["stock"], 66);
}

on_each_backend!(replace_never_overwrites_a_write_that_landed_after_the_read);
async fn replace_never_overwrites_a_write_that_landed_after_the_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = ProductId::parse("9").unwrap();
    let read = product::by_id(&app.db, id).await.unwrap().unwrap();

    // Another writer changes the row between our read and our write.
    let response = app
        .admin_put("/api/products/9", &json!({ "stock": read.stock + 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let ours = Product {
        name: "Lost Update".into(),
        ..read.clone()
    };
    assert!(!product::replace(&app.db, &read, &ours).await.unwrap());
    let now = product::by_id(&app.db, id).await.unwrap().unwrap();
    assert_eq!(now.name, read.name);
    assert_eq!(now.stock, read.stock + 5);

    // Against the row as it is now, the swap goes through.
    let ours = Product {
        name: "Won Update".into(),
        ..now.clone()
    };
    assert!(product::replace(&app.db, &now, &ours).await.unwrap());
    assert_eq!(product::by_id(&app.db, id).await.unwrap().unwrap(), ours);
}
