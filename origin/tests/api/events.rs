//! Write-behind events at the origin: batches from the edge's queue consumer apply exactly once
//! per event id, however often they are delivered; unknown products are rejected for the edge to
//! dead-letter; the synchronous twins count one event at once.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, assert_problem, on_each_backend, spawn_app};

async fn deliver(app: &TestApp, batch: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/internal/events/batch", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(batch)
        .send()
        .await
        .unwrap()
}

async fn delivered(app: &TestApp, batch: &Value) -> Value {
    let response = deliver(app, batch).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

fn event(id: &str, kind: &str, product_id: i64, value: i64) -> Value {
    json!({ "id": id, "kind": kind, "product_id": product_id, "value": value, "at": 1_700_000_000_000_i64 })
}

/// `(views, upvotes, downvotes, score)` of `product`, or zeros when it has none.
async fn stats(app: &TestApp, product: i64) -> (i64, i64, i64, i64) {
    crate::helpers::on_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT views, upvotes, downvotes, score FROM product_stats WHERE product_id = $1",
        )
        .bind(product)
        .fetch_optional(pool)
        .await
        .unwrap()
    })
    .unwrap_or((0, 0, 0, 0))
}

async fn transactions(app: &TestApp) -> i64 {
    breakwater_origin::events::store::transactions(&app.db)
        .await
        .unwrap()
}

async fn a_batch_applies_once_however_often_it_is_delivered(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch = json!({
        "batch_id": "batch-1",
        "events": [
            event("e1", "view", 5, 1),
            event("e2", "view", 5, 1),
            event("e3", "vote", 5, 1),
            event("e4", "vote", 6, -1),
            event("e5", "vote", 6, 1),
            event("e6", "vote", 6, -1),
        ],
    });
    let first = delivered(&app, &batch).await;
    assert_eq!(
        first,
        json!({ "batch_id": "batch-1", "applied": 6, "duplicates": 0, "rejected": [] })
    );
    assert_eq!(stats(&app, 5).await, (2, 1, 0, 1));
    assert_eq!(stats(&app, 6).await, (0, 1, 2, -1));

    // The queue redelivers the batch, and another batch carries one old event and one new.
    let again = delivered(&app, &batch).await;
    assert_eq!(
        (again["applied"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(6))
    );
    let mixed = json!({
        "batch_id": "batch-2",
        "events": [event("e1", "view", 5, 1), event("e7", "view", 5, 1), event("e7", "view", 5, 1)],
    });
    let mixed = delivered(&app, &mixed).await;
    assert_eq!(
        (mixed["applied"].as_u64(), mixed["duplicates"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(stats(&app, 5).await, (3, 1, 0, 1));
    assert_eq!(stats(&app, 6).await, (0, 1, 2, -1));
    // Every delivery was one transaction.
    assert_eq!(transactions(&app).await, 3);
}

async fn events_for_unknown_products_are_rejected_and_the_rest_apply(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch = json!({
        "batch_id": "batch-poison",
        "events": [event("ok", "view", 9, 1), event("poison", "view", 99_999_999, 1)],
    });
    for _ in 0..2 {
        let outcome = delivered(&app, &batch).await;
        assert_eq!(
            outcome["rejected"],
            json!([{ "id": "poison", "reason": "product 99999999 does not exist" }]),
            "a rejected event stays rejected: it is never recorded as applied"
        );
    }
    assert_eq!(stats(&app, 9).await, (1, 0, 0, 0));
}

async fn malformed_batches_and_missing_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (json!({ "batch_id": "b", "events": [] }), "events"),
        (
            json!({ "batch_id": "b", "events": [event("x", "vote", 1, 2)] }),
            "events[0]: value 2",
        ),
        (
            json!({ "batch_id": "b", "events": [event("x", "view", 0, 1)] }),
            "events[0].product_id",
        ),
        (
            json!({ "batch_id": "b", "events": [event("x y", "view", 1, 1)] }),
            "events[0].id",
        ),
        (
            json!({ "batch_id": "", "events": [event("x", "view", 1, 1)] }),
            "batch_id",
        ),
    ];
    for (batch, field) in cases {
        let problem = assert_problem(deliver(&app, &batch).await, 422).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{field}: {problem}"
        );
    }
    let unknown_kind = json!({ "batch_id": "b", "events": [event("x", "like", 1, 1)] });
    assert_problem(deliver(&app, &unknown_kind).await, 422).await;
    let anonymous = app
        .client
        .post(format!("{}/internal/events/batch", app.address))
        .json(&json!({ "batch_id": "b", "events": [event("x", "view", 1, 1)] }))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401).await;
    assert_eq!(
        stats(&app, 1).await,
        (0, 0, 0, 0),
        "nothing refused was applied"
    );
    assert_eq!(transactions(&app).await, 0);
}

async fn the_synchronous_twins_count_at_once_and_rankings_show_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let post = |path: String, body: Option<Value>| {
        let mut request = app.client.post(format!("{}{path}", app.address));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    for _ in 0..3 {
        assert_eq!(
            post("/api/products/11/views".into(), None)
                .await
                .unwrap()
                .status(),
            204
        );
    }
    assert_eq!(
        post("/api/products/12/views".into(), None)
            .await
            .unwrap()
            .status(),
        204
    );
    let vote = post("/api/products/12/votes".into(), Some(json!({ "value": 1 })))
        .await
        .unwrap();
    assert_eq!(vote.status(), 204);
    assert_eq!(stats(&app, 11).await, (3, 0, 0, 0));
    assert_eq!(stats(&app, 12).await, (1, 1, 0, 1));
    assert_eq!(
        transactions(&app).await,
        5,
        "one transaction per synchronous event"
    );

    let bad = post("/api/products/12/votes".into(), Some(json!({ "value": 2 })))
        .await
        .unwrap();
    assert_problem(bad, 422).await;
    let missing = post("/api/products/99999999/views".into(), None)
        .await
        .unwrap();
    assert_problem(missing, 404).await;

    let by_views = app.get_json("/api/rankings?by=views").await;
    assert_eq!(by_views["by"], "views");
    let ids: Vec<i64> = by_views["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [11, 12]);
    assert_eq!(by_views["items"][0]["views"], 3);
    let by_votes = app.get_json("/api/rankings?by=votes").await;
    assert_eq!(by_votes["items"][0]["id"], 12);
    assert_eq!(by_votes["items"][0]["votes"], 1);
    assert_eq!(
        by_votes["items"].as_array().unwrap().len(),
        1,
        "only voted products"
    );
    assert_problem(app.get("/api/rankings?by=price").await, 400).await;
}

on_each_backend!(
    a_batch_applies_once_however_often_it_is_delivered,
    events_for_unknown_products_are_rejected_and_the_rest_apply,
    malformed_batches_and_missing_tokens_are_refused,
    the_synchronous_twins_count_at_once_and_rankings_show_them,
);
