//! `GET /metrics`: requests per route template and status, pool gauges, the outbox backlog, and
//! what a scrape shows when the database is gone.

use breakwater_origin::db::Bulkheads;

use crate::exposition::Exposition;
use crate::helpers::{Backend, TestApp, on_each_backend, spawn_app};

const REQUESTS: &str = "breakwater_origin_http_requests_total";
const DURATION_COUNT: &str = "breakwater_origin_http_request_duration_seconds_count";
pub const PENDING: &str = "breakwater_origin_outbox_pending";
pub const DEAD_LETTERS: &str = "breakwater_origin_outbox_dead_letters";
const CONNECTIONS: &str = "breakwater_origin_db_connections";
const CONNECTIONS_MAX: &str = "breakwater_origin_db_connections_max";

pub async fn scrape(app: &TestApp) -> Exposition {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    Exposition::parse(&response.text().await.unwrap())
}

fn requests(scrape: &Exposition, route: &str, method: &str, status: &str) -> Option<f64> {
    scrape.value(
        REQUESTS,
        &[("route", route), ("method", method), ("status", status)],
    )
}

on_each_backend!(requests_are_counted_by_route_template_method_and_status);
async fn requests_are_counted_by_route_template_method_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/api/products/1",
        "/api/products/2",
        "/api/products/0",
        "/api/products?page=2",
        "/no/such/place",
        "/api/products/1/reviews",
    ] {
        app.get(path).await;
    }
    let deleted = app
        .client
        .delete(format!("{}/api/products/3", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 405);

    let first = scrape(&app).await;
    assert_eq!(first.types[REQUESTS], "counter");
    assert_eq!(
        first.types["breakwater_origin_http_request_duration_seconds"],
        "histogram"
    );
    let by_id = "/api/products/{id}";
    assert_eq!(requests(&first, by_id, "GET", "200"), Some(2.0));
    assert_eq!(requests(&first, by_id, "GET", "400"), Some(1.0));
    assert_eq!(requests(&first, by_id, "DELETE", "405"), Some(1.0));
    assert_eq!(requests(&first, "/api/products", "GET", "200"), Some(1.0));
    assert_eq!(requests(&first, "unmatched", "GET", "404"), Some(2.0));
    assert_eq!(
        first.value(DURATION_COUNT, &[("route", by_id), ("method", "GET")]),
        Some(3.0)
    );
    // Raw paths never become label values.
    for sample in first.series(REQUESTS) {
        let route = &sample.labels["route"];
        assert!(
            route == "unmatched" || !route.chars().any(|c| c.is_ascii_digit()),
            "{sample:?}"
        );
    }
    // The scrape is counted once it is answered, so the next one shows it.
    assert_eq!(requests(&first, "/metrics", "GET", "200"), None);
    let again = scrape(&app).await;
    assert_eq!(requests(&again, "/metrics", "GET", "200"), Some(1.0));
}

on_each_backend!(the_bulkheads_pools_are_read_at_scrape_time);
async fn the_bulkheads_pools_are_read_at_scrape_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let scrape = scrape(&app).await;
    let bulkheads = Bulkheads::default();
    for (pool, limits) in [
        ("writes", bulkheads.writes),
        ("reads", bulkheads.reads),
        ("background", bulkheads.background),
    ] {
        assert_eq!(
            scrape.value(CONNECTIONS_MAX, &[("pool", pool)]),
            Some(f64::from(limits.size)),
            "{pool}"
        );
    }
    let max = scrape
        .value(CONNECTIONS_MAX, &[("pool", "writes")])
        .expect("the write pool's maximum");
    let state = |state| {
        scrape
            .value(CONNECTIONS, &[("pool", "writes"), ("state", state)])
            .unwrap_or_else(|| panic!("no {state} connections of the write pool"))
    };
    let (idle, in_use) = (state("idle"), state("in_use"));
    assert!(max >= 1.0, "max {max}");
    assert!(idle + in_use >= 1.0, "startup opened a connection");
    assert!(
        idle + in_use <= max,
        "idle {idle} + in use {in_use} > max {max}"
    );
}

on_each_backend!(the_outbox_backlog_is_counted_when_scraped);
async fn the_outbox_backlog_is_counted_when_scraped(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(scrape(&app).await.value(PENDING, &[]), Some(0.0));

    let placed = app
        .client
        .post(format!("{}/api/orders", app.address))
        .header("breakwater-principal", "ip:203.0.113.7")
        .header("idempotency-key", "\"metrics-outbox-1\"")
        .header("content-type", "application/json")
        .body(r#"{"items":[{"product_id":3,"quantity":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    // One row per consumer, none delivered yet.
    assert_eq!(scrape(&app).await.value(PENDING, &[]), Some(3.0));

    app.execute("UPDATE outbox SET delivered_at = created_at WHERE topic = 'analytics'")
        .await;
    let scrape = scrape(&app).await;
    assert_eq!(scrape.value(PENDING, &[]), Some(2.0));
    assert_eq!(scrape.types[PENDING], "gauge");
    assert_eq!(scrape.value(DEAD_LETTERS, &[]), Some(0.0));
}

on_each_backend!(with_the_database_gone_health_answers_and_metrics_leave_the_backlog_out);
async fn with_the_database_gone_health_answers_and_metrics_leave_the_backlog_out(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(scrape(&app).await.value(PENDING, &[]), Some(0.0));
    // The backlog is counted on the background pool.
    app.background.close().await;

    assert_eq!(app.get("/health").await.status(), 200);
    let scrape = scrape(&app).await;
    assert_eq!(scrape.value(PENDING, &[]), None, "a stale or zero backlog");
    assert_eq!(requests(&scrape, "/health", "GET", "200"), Some(1.0));
    assert_eq!(
        scrape.value(CONNECTIONS, &[("pool", "background"), ("state", "in_use")]),
        Some(0.0)
    );
}
