//! Idempotency: what the edge's records cost, and whether a retry storm with faults between edge
//! and origin ever places an order twice.
//!
//! 1. Added latency: the same `POST /api/orders` (a fresh `Idempotency-Key` each) through two
//!    fresh edges, one with the edge's records on (wrangler.toml's `IDEMPOTENCY_POLICY`) and one
//!    with them off (keys go to the origin alone, which still requires and dedupes them), one at
//!    a time and at the bench's concurrency.
//! 2. Retry storm: distinct keys, each sent several times (some copies at once, some after a
//!    failure) by clients that retry until a terminal answer, while a relay between edge and
//!    origin refuses some POSTs and drops some answers after the origin committed. Orders are
//!    counted in the origin's database. Once with records on (a short lease), once with them off.

pub mod storm;
mod tables;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Bench, NO_ADMISSION, step};
use crate::load::{self, Request};
use crate::proxy::{Counts, Faults};
use crate::report::{Run, Section};
use crate::zipf::SplitMix64;

pub use storm::Client;

/// The write every request is.
const ORDERS: &str = "/api/orders";
/// Seed mixed in for the product ids of the orders.
const PRODUCT_SEED: u64 = 0x4f52_4445;

/// What to run.
pub struct Plan {
    /// Orders of the serial pass (one in flight) and of the loaded one, per edge.
    pub serial: usize,
    pub loaded: usize,
    /// Product ids `1..=products` the orders draw from.
    pub products: usize,
    pub storm: Storm,
    pub seed: u64,
}

/// The retry storm.
pub struct Storm {
    pub keys: usize,
    pub client: Client,
    pub faults: Faults,
    /// The edge's `ORIGIN_TIMEOUT_MS` and the records' `lease_ms`, short so recovery is quick.
    pub origin_timeout_ms: u64,
    pub lease_ms: u64,
}

/// Whether an edge keeps idempotency records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Records {
    Off,
    On,
}

impl Records {
    fn as_str(self) -> &'static str {
        match self {
            Self::Off => "records off",
            Self::On => "records on",
        }
    }

    /// Part of every key, so no two runs share one.
    fn tag(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
        }
    }
}

/// `IDEMPOTENCY_POLICY` with the edge's records off: keys go to the origin alone.
pub(super) const RECORDS_OFF: &str = r#"{"enabled": false, "routes": []}"#;

/// What one storm measured.
struct StormRun {
    records: Records,
    runs: Vec<storm::KeyRun>,
    /// Orders in the database per key, in key order.
    orders: Vec<i64>,
    keys: Arc<[String]>,
    relay: Counts,
    wall: Duration,
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    let mut latency = Vec::new();
    for records in [Records::Off, Records::On] {
        latency.push(latency_runs(bench, plan, records)?);
    }
    let mut storms = Vec::new();
    for records in [Records::On, Records::Off] {
        storms.push(storm_run(bench, plan, records)?);
    }
    Ok(tables::section(
        plan,
        bench.concurrency(),
        &latency,
        &storms,
    ))
}

/// The order bodies: one line each, of a seeded random product.
pub(super) fn bodies(n: usize, products: usize, seed: u64) -> Vec<String> {
    let mut rng = SplitMix64::new(seed ^ PRODUCT_SEED);
    (0..n)
        .map(|_| {
            let id = 1 + rng.below(products.max(1));
            json!({"items": [{"product_id": id, "quantity": 1}]}).to_string()
        })
        .collect()
}

/// `bodies` as POSTs, each with its own key `{prefix}-{i}`.
fn orders(prefix: &str, bodies: &[String]) -> Arc<[Request]> {
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            Request::post_json(ORDERS, body.as_str())
                .with_header("idempotency-key", format!("{prefix}-{i}"))
        })
        .collect()
}

/// The serial and the loaded pass through a fresh edge.
fn latency_runs(bench: &Bench, plan: &Plan, records: Records) -> Result<[Run; 2], String> {
    let mut vars = vec![("ADMISSION", NO_ADMISSION.to_owned())];
    if records == Records::Off {
        vars.push(("IDEMPOTENCY_POLICY", RECORDS_OFF.to_owned()));
    }
    let edge = bench.start_edge(&bench.proxied_url(), &vars)?;
    let config = records.as_str();
    let tag = format!("bench-latency-{}", records.tag());
    let warm = orders(
        &format!("{tag}-warm"),
        &bodies(2 * bench.concurrency(), plan.products, plan.seed ^ 1),
    );
    let serial = orders(
        &format!("{tag}-serial"),
        &bodies(plan.serial, plan.products, plan.seed),
    );
    let loaded = orders(
        &format!("{tag}-loaded"),
        &bodies(plan.loaded, plan.products, plan.seed ^ 2),
    );
    step(&format!(
        "{config}: {} untimed orders, then {} timed at 1 in flight and {} at {}: {}",
        warm.len(),
        serial.len(),
        loaded.len(),
        bench.concurrency(),
        edge.url
    ));
    let serial_name = format!("{config}, 1 in flight");
    let loaded_name = format!("{config}, {} in flight", bench.concurrency());
    let (one, many) = bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &edge.url).await;
        let quiet = |label| load::Shape {
            progress: false,
            ..bench.shape(label)
        };
        load::closed_loop(&client, &edge.url, warm, quiet("warm-up orders")).await;
        let one = load::Shape {
            concurrency: 1,
            ..quiet(&serial_name)
        };
        let one = bench
            .counted(load::closed_loop(&client, &edge.url, serial, one))
            .await;
        let many = load::closed_loop(&client, &edge.url, loaded, bench.shape(&loaded_name));
        Ok((one, bench.counted(many).await))
    })?;
    Ok([
        Run {
            name: serial_name,
            summary: one,
        },
        Run {
            name: loaded_name,
            summary: many,
        },
    ])
}

/// The vars of a storm edge.
fn storm_vars(storm: &Storm, records: Records) -> Vec<(&'static str, String)> {
    let policy = match records {
        Records::Off => RECORDS_OFF.to_owned(),
        // The whole table replaces wrangler.toml's, so the route is repeated.
        Records::On => json!({
            "lease_ms": storm.lease_ms,
            "routes": [{"prefix": ORDERS, "required": true}],
        })
        .to_string(),
    };
    vec![
        ("ADMISSION", NO_ADMISSION.to_owned()),
        ("ORIGIN_TIMEOUT_MS", storm.origin_timeout_ms.to_string()),
        ("IDEMPOTENCY_POLICY", policy),
    ]
}

/// The storm through a fresh edge in front of a fresh fault relay (the same seed, the same
/// draws), then the orders counted per key.
fn storm_run(bench: &Bench, plan: &Plan, records: Records) -> Result<StormRun, String> {
    let storm = &plan.storm;
    let (relay, addr) = bench.faulty(storm.faults)?;
    let edge = bench.start_edge(&format!("http://{addr}"), &storm_vars(storm, records))?;
    let keys: Arc<[String]> = (0..storm.keys)
        .map(|i| format!("bench-storm-{}-{i}", records.tag()))
        .collect();
    let bodies: Arc<[String]> = bodies(storm.keys, plan.products, plan.seed ^ 3).into();
    step(&format!(
        "retry storm, {}: {} keys, {} sends each ({} at once), {} keys at a time; relay refuses \
         {:.0}% of POSTs and drops {:.0}% of answers: {}",
        records.as_str(),
        storm.keys,
        storm.client.attempts,
        storm.client.concurrent,
        storm.client.keys_in_flight,
        storm.faults.refuse * 100.0,
        storm.faults.drop_response * 100.0,
        edge.url
    ));
    let (runs, relay, wall) = bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &edge.url).await;
        let before = relay.counts();
        let started = Instant::now();
        let url = format!("{}{ORDERS}", edge.url);
        let runs = storm::run(
            &client,
            &url,
            keys.clone(),
            bodies,
            storm.client,
            Default::default(),
        )
        .await;
        let wall = started.elapsed();
        let after = relay.counts();
        let counts = Counts {
            gets: after.gets - before.gets,
            posts: after.posts - before.posts,
            refused: after.refused - before.refused,
            dropped: after.dropped - before.dropped,
        };
        Ok((runs, counts, wall))
    })?;
    drop(edge);
    let orders = bench.orders_with_keys(&keys)?;
    Ok(StormRun {
        records,
        runs,
        orders,
        keys,
        relay,
        wall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_accepts_the_storm_and_latency_vars() {
        let storm = Storm {
            keys: 1,
            client: Client {
                attempts: 4,
                concurrent: 2,
                deadline: Duration::from_secs(20),
                keys_in_flight: 32,
                seed: 1,
            },
            faults: Faults::NONE,
            origin_timeout_ms: 1_000,
            lease_ms: 1_500,
        };
        let parse = |vars: Vec<(&str, String)>| {
            let mut vars: std::collections::BTreeMap<&str, String> = vars.into_iter().collect();
            vars.insert("ORIGIN_URL", "http://127.0.0.1:1".into());
            let json = |name| vars.get(name).map(|v| serde_json::from_str(v).unwrap());
            breakwater_core::config::EdgeConfig::from_vars(|n| vars.get(n).cloned())
                .unwrap()
                .with_admission(json("ADMISSION"), None, None)
                .unwrap()
                .with_idempotency(json("IDEMPOTENCY_POLICY"))
                .unwrap()
        };
        let on = parse(storm_vars(&storm, Records::On));
        assert!(on.idempotency.enabled);
        assert!(on.idempotency.route(ORDERS).is_some_and(|r| r.required));
        assert_eq!(on.idempotency.policy(ORDERS).lease_ms, 1_500);
        assert_eq!(on.origin_timeout, Duration::from_millis(1_000));
        assert!(on.admission.route(ORDERS).is_none());
        let off = parse(storm_vars(&storm, Records::Off));
        assert!(!off.idempotency.enabled);
    }

    #[test]
    fn orders_have_a_key_each_and_the_same_bodies_for_the_same_seed() {
        let b = bodies(50, 10, 7);
        assert_eq!(b, bodies(50, 10, 7));
        let value: serde_json::Value = serde_json::from_str(&b[0]).unwrap();
        let id = value["items"][0]["product_id"].as_u64().unwrap();
        assert!((1..=10).contains(&id));
        let requests = orders("k", &b[..3]);
        assert_eq!(requests[2].method, reqwest::Method::POST);
        assert!(
            requests[2]
                .headers
                .contains(&("idempotency-key", "k-2".into()))
        );
    }
}
