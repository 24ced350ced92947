//! `POST /api/orders` and `GET /api/orders/{id}`: the principal, the idempotency key, replays,
//! concurrent duplicates, and transactions that leave nothing behind when they fail.

use std::sync::Arc;

use reqwest::header::HeaderValue;
use serde_json::Value;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::helpers::{Backend, TestApp, assert_problem, on_each_backend, on_pool, spawn_app};

const ORDERS: &str = "/api/orders";
const ALICE: &str = "ip:203.0.113.7";
const BOB: &str = "key:0123456789abcdef0123456789abcdef";
const KEY: &str = "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"";
const BODY: &str = r#"{"items":[{"product_id":3,"quantity":2},{"product_id":8,"quantity":1}]}"#;
const REPLAYED: &str = "idempotent-replayed";

/// A `POST /api/orders` of `body` as JSON, with the principal and key when given.
fn order(
    app: &TestApp,
    principal: Option<&str>,
    key: Option<&str>,
    body: &str,
) -> reqwest::RequestBuilder {
    order_at(app, ORDERS, principal, key, body)
}

fn order_at(
    app: &TestApp,
    path: &str,
    principal: Option<&str>,
    key: Option<&str>,
    body: &str,
) -> reqwest::RequestBuilder {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(principal) = principal {
        request = request.header("breakwater-principal", principal);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request
}

async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("request reaches the origin")
}

/// Rows in (orders, order_items, outbox, idempotency_responses).
async fn counts(app: &TestApp) -> [i64; 4] {
    let mut counts = [0; 4];
    for (count, table) in
        counts
            .iter_mut()
            .zip(["orders", "order_items", "outbox", "idempotency_responses"])
    {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        *count = on_pool!(&app.db, pool => sqlx::query_scalar(&sql).fetch_one(pool).await).unwrap();
    }
    counts
}

/// The status, `Location`, replay flag and body bytes of a response.
async fn parts(response: reqwest::Response) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (location, replayed) = (header("location"), header(REPLAYED));
    let status = response.status().as_u16();
    (
        status,
        location,
        replayed,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn price_of(app: &TestApp, product: i64) -> i64 {
    app.get_json(&format!("/api/products/{product}")).await["price_cents"]
        .as_i64()
        .unwrap()
}

fn problem_type(kind: &str) -> String {
    format!("https://breakwater.dev/problems/{kind}")
}

on_each_backend!(an_order_is_created_with_its_items_outbox_rows_and_stored_answer);
async fn an_order_is_created_with_its_items_outbox_rows_and_stored_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let (p3, p8) = (price_of(&app, 3).await, price_of(&app, 8).await);

    let response = send(order(&app, Some(ALICE), Some(KEY), BODY)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(!response.headers().contains_key(REPLAYED));
    let (_, location, _, bytes) = parts(response).await;
    let order: Value = serde_json::from_slice(&bytes).unwrap();
    let id = order["id"].as_i64().unwrap();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/orders/{id}").as_str())
    );
    assert_eq!(order["total_cents"], 2 * p3 + p8);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["items"][0]["product_id"], 3);
    assert_eq!(order["items"][0]["unit_price_cents"], p3);
    assert_eq!(order["items"][0]["line_total_cents"], 2 * p3);
    assert_eq!(order["items"][1]["product_id"], 8);

    assert_eq!(counts(&app).await, [1, 2, 3, 1]);
    let created_at: i64 = on_pool!(&app.db, pool => {
        sqlx::query_scalar("SELECT created_at FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
    })
    .unwrap();
    type OutboxRow = (String, i64, i64, i64, i64, Option<i64>, Option<i64>, String);
    // The payload is JSONB on Postgres and TEXT on SQLite; as text on both.
    let outbox: Vec<OutboxRow> = on_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT topic, order_id, attempts, created_at, available_at, claimed_at, \
             delivered_at, CAST(payload AS TEXT) FROM outbox ORDER BY topic",
        )
        .fetch_all(pool)
        .await
    })
    .unwrap();
    let topics: Vec<_> = outbox.iter().map(|row| row.0.as_str()).collect();
    assert_eq!(topics, ["analytics", "confirmation", "inventory"]);
    for (topic, order_id, attempts, created, available, claimed, delivered, payload) in &outbox {
        assert_eq!(*order_id, id, "{topic}");
        assert_eq!(
            (*attempts, *created, *available),
            (0, created_at, created_at)
        );
        assert_eq!((*claimed, *delivered), (None, None), "{topic}");
        let payload: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(payload["order_id"], id, "{topic}");
    }

    let (status, stored): (i64, Vec<u8>) = on_pool!(&app.db, pool => {
        sqlx::query_as("SELECT status, body FROM idempotency_responses")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert_eq!((status, stored), (201, bytes));
}

on_each_backend!(an_order_is_shown_to_its_principal_only);
async fn an_order_is_shown_to_its_principal_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, location, _, posted) =
        parts(send(order(&app, Some(ALICE), Some(KEY), BODY)).await).await;
    let location = location.unwrap();

    let mine = app
        .get_with(&location, &[("breakwater-principal", ALICE)])
        .await;
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.headers()["cache-control"], "private, no-store");
    assert_eq!(mine.headers()["content-type"], "application/json");
    assert_eq!(
        mine.bytes().await.unwrap(),
        posted,
        "GET serves what POST answered"
    );

    let theirs = app
        .get_with(&location, &[("breakwater-principal", BOB)])
        .await;
    let problem = assert_problem(theirs, 404).await;
    assert_eq!(problem["type"], problem_type("not-found"));
    let nobody = app.get(&location).await;
    assert_eq!(
        nobody.headers()["www-authenticate"],
        "Bearer realm=\"breakwater\""
    );
    assert_problem(nobody, 401).await;
    let missing = app
        .get_with("/api/orders/999999", &[("breakwater-principal", ALICE)])
        .await;
    assert_problem(missing, 404).await;
    let malformed = app
        .get_with("/api/orders/abc", &[("breakwater-principal", ALICE)])
        .await;
    assert_problem(malformed, 400).await;
}

on_each_backend!(a_missing_principal_is_401_before_anything_else_is_looked_at);
async fn a_missing_principal_is_401_before_anything_else_is_looked_at(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        order(&app, None, Some(KEY), BODY),
        order(&app, None, None, "{"),
        order(&app, Some(""), Some(KEY), BODY),
        order(&app, Some("anonymous"), Some(KEY), BODY),
        order(&app, Some("two words"), Some(KEY), BODY),
        order(&app, Some(ALICE), Some(KEY), BODY).header("breakwater-principal", BOB),
    ];
    for request in cases {
        let response = send(request).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"breakwater\""
        );
        let problem = assert_problem(response, 401).await;
        assert_eq!(problem["type"], problem_type("principal-missing"));
    }
    assert_eq!(counts(&app).await, [0; 4]);
}

on_each_backend!(a_missing_or_invalid_key_is_400_and_writes_nothing);
async fn a_missing_or_invalid_key_is_400_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let problem = assert_problem(send(order(&app, Some(ALICE), None, BODY)).await, 400).await;
    assert_eq!(problem["type"], problem_type("idempotency-key-missing"));

    let too_long = format!("\"{}\"", "k".repeat(256));
    for key in [
        "\"\"",
        "   ",
        "\"unterminated",
        "\"a\";p=1",
        "\"a\", \"b\"",
        "\"bad \\escape\"",
        "\"tab\there\"",
        "{braces}",
        too_long.as_str(),
    ] {
        let response = send(order(&app, Some(ALICE), Some(key), BODY)).await;
        let problem = assert_problem(response, 400).await;
        assert_eq!(
            problem["type"],
            problem_type("idempotency-key-invalid"),
            "{key}"
        );
    }
    let non_ascii = order(&app, Some(ALICE), None, BODY).header(
        "idempotency-key",
        HeaderValue::from_bytes(b"\"caf\xc3\xa9\"").unwrap(),
    );
    let twice = order(&app, Some(ALICE), Some(KEY), BODY).header("idempotency-key", "\"other\"");
    for request in [non_ascii, twice] {
        let problem = assert_problem(send(request).await, 400).await;
        assert_eq!(problem["type"], problem_type("idempotency-key-invalid"));
    }
    assert_eq!(counts(&app).await, [0; 4]);

    // The limits themselves are valid: 255 characters, and the two escapes.
    let longest = format!("\"{}\"", "k".repeat(255));
    for key in [longest.as_str(), "\"quote \\\" backslash \\\\\""] {
        let response = send(order(&app, Some(ALICE), Some(key), BODY)).await;
        assert_eq!(response.status(), 201, "{key}");
    }
}

on_each_backend!(body_errors_are_refused_before_anything_is_written_and_are_not_stored);
async fn body_errors_are_refused_before_anything_is_written_and_are_not_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let wrong_type = app
        .client
        .post(format!("{}{ORDERS}", app.address))
        .header("content-type", "text/plain")
        .header("breakwater-principal", ALICE)
        .header("idempotency-key", KEY)
        .body(BODY);
    assert_problem(send(wrong_type).await, 415).await;
    let malformed = assert_problem(
        send(order(&app, Some(ALICE), Some(KEY), "{\"items\": [")).await,
        400,
    )
    .await;
    assert_eq!(malformed["type"], problem_type("malformed-body"));

    #[rustfmt::skip]
    let invalid = [
        (r#"{"items":[]}"#, "`items`"),
        (r#"{"items":[{"product_id":3,"quantity":0}]}"#, "`items[0].quantity`"),
        (r#"{"items":[{"product_id":3,"quantity":101}]}"#, "`items[0].quantity`"),
        (r#"{"items":[{"product_id":3,"quantity":1},{"product_id":3,"quantity":1}]}"#, "`items[1].product_id`"),
        (r#"{"items":[{"product_id":3,"quantity":1,"gift":true}]}"#, "gift"),
        (r#"{"items":[{"product_id":3}]}"#, "quantity"),
    ];
    for (body, named) in invalid {
        let problem =
            assert_problem(send(order(&app, Some(ALICE), Some(KEY), body)).await, 422).await;
        assert_eq!(problem["type"], problem_type("invalid-body"), "{body}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{body}: {detail}");
    }
    assert_eq!(counts(&app).await, [0; 4]);

    // None of those refusals was kept against the key: the corrected request executes.
    let fixed = send(order(&app, Some(ALICE), Some(KEY), BODY)).await;
    assert_eq!(fixed.status(), 201);
    assert!(!fixed.headers().contains_key(REPLAYED));
}

on_each_backend!(a_retry_replays_the_stored_answer_byte_for_byte);
async fn a_retry_replays_the_stored_answer_byte_for_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = parts(send(order(&app, Some(ALICE), Some(KEY), BODY)).await).await;
    assert_eq!((first.0, first.2.as_deref()), (201, None));

    // A new price would change a recomputed answer; a replay must not change.
    let repriced = app
        .admin_put("/api/products/3", &serde_json::json!({ "price_cents": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(repriced.status(), 200);

    for _ in 0..3 {
        let response = send(order(&app, Some(ALICE), Some(KEY), BODY)).await;
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let again = parts(response).await;
        assert_eq!(again.0, 201);
        assert_eq!(again.1, first.1, "same Location");
        assert_eq!(again.2.as_deref(), Some("true"));
        assert_eq!(again.3, first.3, "byte-identical body");
    }
    assert_eq!(counts(&app).await, [1, 2, 3, 1]);
}

on_each_backend!(the_same_key_for_a_different_request_is_422_and_shows_nothing_stored);
async fn the_same_key_for_a_different_request_is_422_and_shows_nothing_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = parts(send(order(&app, Some(ALICE), Some(KEY), BODY)).await).await;
    assert_eq!(first.0, 201);

    let other_quantity = BODY.replace("\"quantity\":2", "\"quantity\":3");
    // Raw bytes are the rule: the same JSON written differently is a different request.
    let reformatted = BODY.replace(',', ", ");
    let requests = [
        order(&app, Some(ALICE), Some(KEY), &other_quantity),
        order(&app, Some(ALICE), Some(KEY), &reformatted),
        order_at(&app, "/api/orders?coupon=x", Some(ALICE), Some(KEY), BODY),
    ];
    for request in requests {
        let response = send(request).await;
        assert!(!response.headers().contains_key("location"));
        let problem = assert_problem(response, 422).await;
        assert_eq!(problem["type"], problem_type("idempotency-key-reused"));
    }
    assert_eq!(counts(&app).await, [1, 2, 3, 1]);

    let original = parts(send(order(&app, Some(ALICE), Some(KEY), BODY)).await).await;
    assert_eq!(
        (original.2.as_deref(), &original.3),
        (Some("true"), &first.3)
    );
}

on_each_backend!(another_principal_with_the_same_key_gets_its_own_order);
async fn another_principal_with_the_same_key_gets_its_own_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = parts(send(order(&app, Some(ALICE), Some(KEY), BODY)).await).await;
    let bob = parts(send(order(&app, Some(BOB), Some(KEY), BODY)).await).await;
    assert_eq!((alice.0, bob.0), (201, 201));
    assert_eq!((alice.2, bob.2), (None, None), "neither is a replay");
    assert_ne!(alice.1, bob.1, "two orders");
    assert_eq!(counts(&app).await, [2, 4, 6, 2]);

    let peek = app
        .get_with(&alice.1.unwrap(), &[("breakwater-principal", BOB)])
        .await;
    assert_problem(peek, 404).await;
}

on_each_backend!(twenty_concurrent_identical_requests_make_one_order_and_twenty_equal_answers);
async fn twenty_concurrent_identical_requests_make_one_order_and_twenty_equal_answers(
    backend: Backend,
) {
    const N: usize = 20;
    let app = spawn_app(backend).await;
    let barrier = Arc::new(Barrier::new(N));
    let mut requests = JoinSet::new();
    for _ in 0..N {
        let request = order(&app, Some(ALICE), Some(KEY), BODY);
        let barrier = barrier.clone();
        requests.spawn(async move {
            // Released together, so the duplicates overlap instead of queueing behind each other.
            barrier.wait().await;
            parts(send(request).await).await
        });
    }
    let answers = requests.join_all().await;

    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.0, 201, "{}", String::from_utf8_lossy(&answer.3));
        assert_eq!(
            (&answer.1, &answer.3),
            (&first.1, &first.3),
            "one Location, one body"
        );
    }
    let replays = answers
        .iter()
        .filter(|answer| answer.2.as_deref() == Some("true"))
        .count();
    assert_eq!(replays, N - 1, "all but the one that executed are replays");
    assert_eq!(counts(&app).await, [1, 2, 3, 1]);
}

on_each_backend!(an_unknown_product_mid_list_leaves_nothing_behind);
async fn an_unknown_product_mid_list_leaves_nothing_behind(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = r#"{"items":[{"product_id":3,"quantity":1},{"product_id":999999,"quantity":1},{"product_id":8,"quantity":1}]}"#;
    let problem = assert_problem(send(order(&app, Some(ALICE), Some(KEY), body)).await, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("`items[1].product_id`") && detail.contains("999999"),
        "{detail}"
    );
    assert_eq!(counts(&app).await, [0; 4]);

    let fixed = body.replace("999999", "5");
    let response = send(order(&app, Some(ALICE), Some(KEY), &fixed)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(counts(&app).await, [1, 3, 3, 1]);
}

on_each_backend!(a_transaction_failing_at_its_last_write_leaves_nothing_behind);
async fn a_transaction_failing_at_its_last_write_leaves_nothing_behind(backend: Backend) {
    let app = spawn_app(backend).await;
    // The stored answer is written last, after the order, its items and its outbox rows.
    app.execute(match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER fail_last_write BEFORE INSERT ON idempotency_responses \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        }
        Backend::Postgres => {
            "CREATE FUNCTION fail_last_write() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; \
             CREATE TRIGGER fail_last_write BEFORE INSERT ON idempotency_responses \
             FOR EACH ROW EXECUTE FUNCTION fail_last_write()"
        }
    })
    .await;
    let response = send(order(&app, Some(ALICE), Some(KEY), BODY)).await;
    let problem = assert_problem(response, 503).await;
    assert_eq!(problem["type"], problem_type("database-unavailable"));
    assert_eq!(counts(&app).await, [0; 4]);

    app.execute(match backend {
        Backend::Sqlite => "DROP TRIGGER fail_last_write",
        Backend::Postgres => "DROP TRIGGER fail_last_write ON idempotency_responses",
    })
    .await;
    let retry = send(order(&app, Some(ALICE), Some(KEY), BODY)).await;
    assert_eq!(retry.status(), 201);
    assert!(
        !retry.headers().contains_key(REPLAYED),
        "the failure was not stored"
    );
    assert_eq!(counts(&app).await, [1, 2, 3, 1]);
}
