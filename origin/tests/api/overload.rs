//! The origin sheds load (see `breakwater_origin::overload`): a bulkhead whose requests keep
//! queueing answers the excess `503 overloaded` with `Retry-After` at once, serves every request
//! it admitted, leaves the other bulkhead alone, and never sheds the probes or `/metrics`.
//!
//! The handlers are slowed for real: the read pool's only connection is held by the test, so the
//! admitted reads wait for it (with a 30 s pool budget) until the test lets go.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakwater_origin::overload::OverloadSettings;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::bulkheads::exhaust;
use crate::helpers::{Backend, on_each_backend, spawn_app_with};
use crate::metrics::scrape;

const SHED: &str = "breakwater_origin_overload_shed_total";
const REQUESTS: &str = "breakwater_origin_overload_requests";
const DROPPING: &str = "breakwater_origin_overload_dropping";

/// A read's answer and how long after the surge began it came.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    after: Duration,
}

on_each_backend!(a_stalled_read_bulkhead_sheds_the_excess_at_once_and_serves_what_it_admitted);
async fn a_stalled_read_bulkhead_sheds_the_excess_at_once_and_serves_what_it_admitted(
    backend: Backend,
) {
    const SLOTS: usize = 2;
    const SURGE: usize = 8;
    let app = Arc::new(
        spawn_app_with(backend, |settings| {
            settings.bulkheads.reads.size = 1;
            settings.bulkheads.reads.wait = Duration::from_secs(30);
            settings.overload = OverloadSettings {
                max_in_flight: NonZeroU32::new(SLOTS as u32),
                ..OverloadSettings::default()
            };
        })
        .await,
    );
    assert_eq!(app.get("/api/products/1").await.status(), 200);
    let held = exhaust(app.reads.primary()).await;

    let started = Instant::now();
    let mut reads = JoinSet::new();
    for _ in 0..SURGE {
        let app = Arc::clone(&app);
        reads.spawn(async move {
            let response = app.get("/api/products/1").await;
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.text().await.unwrap();
            Answer {
                status,
                headers,
                body,
                after: started.elapsed(),
            }
        });
    }

    // Everything beyond the slots is refused while the admitted reads still wait for the held
    // connection: promptly, long before the pool's 30 s or the 10 s request timeout.
    for _ in SLOTS..SURGE {
        let answer = reads.join_next().await.unwrap().unwrap();
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert!(answer.after < Duration::from_secs(5), "{:?}", answer.after);
        let retry_after: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        let problem: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(
            problem["type"], "https://breakwater.dev/problems/overloaded",
            "{problem}"
        );
        assert_eq!(problem["title"], "Overloaded");
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["instance"], "/api/products/1");
        assert!(problem["request_id"].is_string(), "{problem}");
    }

    // Meanwhile the probes and the scrape answer, and the write bulkhead works.
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    let during = scrape(&app).await;
    let reads_label = [("bulkhead", "reads")];
    assert_eq!(
        during.value(SHED, &[("bulkhead", "reads"), ("reason", "queue_delay")]),
        Some((SURGE - SLOTS) as f64)
    );
    assert_eq!(
        during.value(REQUESTS, &[("bulkhead", "reads"), ("state", "in_flight")]),
        Some(SLOTS as f64)
    );
    assert_eq!(during.value(DROPPING, &reads_label), Some(1.0));
    assert_eq!(
        during.value(SHED, &[("bulkhead", "writes"), ("reason", "queue_delay")]),
        Some(0.0)
    );
    app.place_order(
        "ip:198.51.100.7",
        "overload-write",
        r#"{"items": [{"product_id": 1, "quantity": 1}]}"#,
    )
    .await;

    // Every admitted read succeeds once its connection is free.
    drop(held);
    while let Some(answer) = reads.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let after = scrape(&app).await;
    assert_eq!(
        after.value(REQUESTS, &[("bulkhead", "reads"), ("state", "in_flight")]),
        Some(0.0)
    );
    assert_eq!(after.value(DROPPING, &reads_label), Some(0.0));
    assert_eq!(app.get("/api/products/1").await.status(), 200);
}
