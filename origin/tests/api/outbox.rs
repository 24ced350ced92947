//! The outbox workers end to end: each order reaches its three consumers exactly once, a
//! redelivery changes nothing, leases expire, concurrent claimers never share a row, and the
//! spawned workers deliver on their own. Failures and dead letters are in `dead_letters.rs`.
//!
//! Time is driven by hand through `Relay::deliver_due(now)`; only the last test runs workers.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use breakwater_origin::outbox::claim;
use breakwater_origin::outbox::{Settled, system_clock};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::{Backend, TestApp, on_each_backend, on_pool, spawn_app, spawn_app_with};

pub(crate) const ALICE: &str = "ip:203.0.113.7";
/// Two units of product 3, one of product 8.
pub(crate) const BODY: &str =
    r#"{"items":[{"product_id":3,"quantity":2},{"product_id":8,"quantity":1}]}"#;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// An outbox row: (attempts, available_at, delivered_at, dead_at, last_error).
pub(crate) type Row = (i64, i64, Option<i64>, Option<i64>, Option<String>);

pub(crate) async fn row(app: &TestApp, order: i64, topic: &str) -> Row {
    on_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT attempts, available_at, delivered_at, dead_at, last_error FROM outbox \
             WHERE order_id = $1 AND topic = $2",
        )
        .bind(order)
        .bind(topic)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    on_pool!(&app.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub(crate) async fn stock(app: &TestApp, product: i64) -> i64 {
    scalar(
        app,
        &format!("SELECT stock FROM products WHERE id = {product}"),
    )
    .await
}

/// (units, orders, revenue_cents) sold of `product`, if any.
pub(crate) async fn sales(app: &TestApp, product: i64) -> Option<(i64, i64, i64)> {
    on_pool!(&app.db, pool => {
        sqlx::query_as(
            "SELECT units, orders, revenue_cents FROM product_sales WHERE product_id = $1",
        )
        .bind(product)
        .fetch_optional(pool)
        .await
    })
    .unwrap()
}

/// Outcomes of one tick as (topic, outcome) pairs, sorted by topic.
pub(crate) fn by_topic(outcomes: &[breakwater_origin::outbox::Outcome]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<_> = outcomes
        .iter()
        .map(|o| (o.topic.as_str(), o.settled.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// What the confirmation of `order` must hold.
pub(crate) fn expected_confirmation(order: &Value) -> Value {
    let id = order["id"].as_i64().unwrap();
    json!({
        "message_id": format!("order-{id}/confirmation"),
        "order_id": id,
        "principal": ALICE,
        "total_cents": order["total_cents"],
        "currency": order["currency"],
    })
}

pub(crate) fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

on_each_backend!(an_order_reaches_each_consumer_exactly_once_even_when_redelivered);
async fn an_order_reaches_each_consumer_exactly_once_even_when_redelivered(backend: Backend) {
    let app = spawn_app(backend).await;
    let (stock3, stock8) = (stock(&app, 3).await, stock(&app, 8).await);
    let order = app.place_order(ALICE, "once", BODY).await;
    let id = order["id"].as_i64().unwrap();
    let line3 = order["items"][0]["line_total_cents"].as_i64().unwrap();
    let now = system_clock();

    let outcomes = app.outbox.deliver_due(now).await.unwrap();
    assert_eq!(
        by_topic(&outcomes),
        [
            ("analytics", "delivered"),
            ("confirmation", "delivered"),
            ("inventory", "delivered")
        ]
    );
    assert!(outcomes.iter().all(|o| o.order_id == id && o.attempt == 1));
    for topic in ["analytics", "confirmation", "inventory"] {
        let (attempts, _, delivered_at, dead_at, last_error) = row(&app, id, topic).await;
        assert_eq!(
            (attempts, delivered_at, dead_at, last_error),
            (1, Some(now), None, None)
        );
    }
    let file = app.confirmation_dir.join(format!("order-{id}.json"));
    assert_eq!(read_json(&file), expected_confirmation(&order));
    let first_bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        (stock(&app, 3).await, stock(&app, 8).await),
        (stock3 - 2, stock8 - 1)
    );
    assert_eq!(sales(&app, 3).await, Some((2, 1, line3)));
    assert_eq!(sales(&app, 8).await.map(|s| s.0), Some(1));
    assert!(
        app.outbox
            .deliver_due(now + DAY_MS)
            .await
            .unwrap()
            .is_empty()
    );

    // A redelivery of all three, as after a worker died between the effects and the marks.
    let undeliver = format!(
        "UPDATE outbox SET delivered_at = NULL, available_at = {now} WHERE order_id = {id}"
    );
    app.execute(&undeliver).await;
    let again = app.outbox.deliver_due(now + 1).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(
        again
            .iter()
            .all(|o| o.settled == Settled::Delivered && o.attempt == 2)
    );
    assert_eq!(
        (stock(&app, 3).await, stock(&app, 8).await),
        (stock3 - 2, stock8 - 1)
    );
    assert_eq!(sales(&app, 3).await, Some((2, 1, line3)));
    assert_eq!(std::fs::read(&file).unwrap(), first_bytes);
    assert_eq!(
        files_in(&app.confirmation_dir),
        [format!("order-{id}.json")]
    );
    let processed = scalar(
        &app,
        &format!(
            "SELECT COUNT(*) FROM processed_messages WHERE message_id IN \
             ('order-{id}/inventory', 'order-{id}/analytics')"
        ),
    )
    .await;
    assert_eq!(processed, 2, "inventory and analytics, once each");
}

on_each_backend!(a_lease_that_runs_out_makes_rows_claimable_and_counts_the_attempt);
async fn a_lease_that_runs_out_makes_rows_claimable_and_counts_the_attempt(backend: Backend) {
    let lease = Duration::from_secs(30);
    let app = spawn_app_with(backend, |s| {
        s.outbox.lease = lease;
        s.outbox.max_attempts = NonZeroU32::new(2).unwrap();
    })
    .await;
    let order = app.place_order(ALICE, "lease", BODY).await;
    let id = order["id"].as_i64().unwrap();
    let now = system_clock();
    let lease_ms = i64::try_from(lease.as_millis()).unwrap();
    let batch = NonZeroU32::new(16).unwrap();

    // A worker claims the rows and dies (twice), without settling them.
    for crash in 1..=2 {
        let at = now + (crash - 1) * lease_ms;
        let claimed = claim::claim(&app.db, at, lease, batch).await.unwrap();
        assert_eq!(claimed.len(), 3, "crash {crash}");
        assert!(
            claimed
                .iter()
                .all(|m| m.attempt == u32::try_from(crash).unwrap())
        );
        let during = app.outbox.deliver_due(at + lease_ms - 1).await.unwrap();
        assert!(during.is_empty(), "claimed while leased: {during:?}");
    }
    // Both allowed attempts are spent: the rows are dead letters, never delivered.
    let after = app.outbox.deliver_due(now + 2 * lease_ms).await.unwrap();
    assert_eq!(after.len(), 3);
    for outcome in &after {
        assert_eq!(outcome.attempt, 3);
        match &outcome.settled {
            Settled::DeadLettered { error } => assert!(error.contains("lease"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            row(&app, id, &outcome.topic).await.0,
            2,
            "attempts recorded"
        );
    }
    assert!(!app.confirmation_dir.exists(), "nothing was delivered");
}

on_each_backend!(concurrent_claimers_never_claim_the_same_row);
async fn concurrent_claimers_never_claim_the_same_row(backend: Backend) {
    const ORDERS: i64 = 1_000;
    const CLAIMERS: usize = 8;
    let app = spawn_app(backend).await;
    let mut orders = String::from(
        "INSERT INTO orders \
         (principal, idempotency_key, request_fingerprint, total_cents, currency, created_at) \
         VALUES ",
    );
    let values: Vec<_> = (1..=ORDERS)
        .map(|n| format!("('p', 'k{n}', 'f', 0, 'EUR', 0)"))
        .collect();
    orders.push_str(&values.join(", "));
    app.execute(&orders).await;
    app.execute(
        "INSERT INTO outbox (order_id, topic, payload, created_at, attempts, available_at) \
         SELECT o.id, t.topic, '{}', 0, 0, 0 FROM orders o \
         CROSS JOIN (SELECT 'a' AS topic UNION ALL SELECT 'b' UNION ALL SELECT 'c') t",
    )
    .await;
    let rows = usize::try_from(ORDERS * 3).unwrap();

    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let (db, barrier) = (app.db.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = NonZeroU32::new(7).unwrap();
                    let claimed = claim::claim(&db, 1, Duration::from_secs(60), batch)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(rows);
    let mut claimers_with_rows = 0;
    for claimer in claimers {
        let mine = claimer.await.unwrap();
        claimers_with_rows += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let distinct: HashSet<_> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a row was claimed twice");
    assert_eq!(all.len(), rows, "every row claimed");
    assert!(claimers_with_rows > 1, "the claimers did not overlap");
    let claimed_twice = scalar(&app, "SELECT COUNT(*) FROM outbox WHERE attempts <> 1").await;
    assert_eq!(claimed_twice, 0);
}

on_each_backend!(spawned_workers_deliver_as_soon_as_an_order_commits);
async fn spawned_workers_deliver_as_soon_as_an_order_commits(backend: Backend) {
    // An hour between polls: only the order's wake-up can get the message delivered in time.
    let app = spawn_app_with(backend, |s| {
        s.outbox.workers = 2;
        s.outbox.poll_interval = Duration::from_secs(3_600);
    })
    .await;
    let mut events = app.outbox.subscribe();
    let stock3 = stock(&app, 3).await;
    let order = app.place_order(ALICE, "workers", BODY).await;
    let id = order["id"].as_i64().unwrap();

    let mut delivered = HashSet::new();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while delivered.len() < 3 {
            let outcome = events.recv().await.expect("the relay is alive");
            assert_eq!(outcome.order_id, id);
            assert_eq!(outcome.settled, Settled::Delivered, "{outcome:?}");
            delivered.insert(outcome.topic);
        }
    })
    .await;
    assert!(waited.is_ok(), "delivered only {delivered:?}");
    let file = app.confirmation_dir.join(format!("order-{id}.json"));
    assert_eq!(read_json(&file), expected_confirmation(&order));
    assert_eq!(stock(&app, 3).await, stock3 - 2);

    let stopped = tokio::time::timeout(Duration::from_secs(30), app.stop()).await;
    stopped
        .expect("shutdown waits for the workers and completes")
        .expect("run_until returns Ok");
}
