//! The rate limiter's cost: the same cached reads through two fresh edges, one whose route has a
//! quota so high it never denies (every request pays the `RATE_LIMITER` round trip) and one
//! whose `ADMISSION` has no routes. Every key is fetched once, untimed, before the measured run,
//! so the measured requests are memory hits and the origin is not what is measured.

use std::sync::Arc;

use super::{API_KEY_HEADER, Bench, NO_ADMISSION, step};
use crate::load::{self, Request};
use crate::report::{Run, Section, latency_table, ratio_table};

/// Requests per second the limited route allows each principal, and its burst: far above
/// anything the bench sends, so no request is denied.
const NEVER_DENIES: u32 = 1_000_000;
/// The plan every API key is on (its quotas are the route's: `plan_quotas` is off).
const PLAN: &str = "bench";
/// Requests of the serial pass (one in flight), from the start of the sequence.
const SERIAL_REQUESTS: usize = 1_000;

/// What to run.
pub struct Plan {
    /// The Zipf paths, in order (the start of the cache scenario's sequence).
    pub paths: Arc<[String]>,
    /// API keys the requests take turns with; 0 for none (the bench's address).
    pub principals: usize,
    pub workload: String,
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    let keys: Vec<String> = (0..plan.principals).map(api_key).collect();
    let request = |i: usize, path: &str| {
        let request = Request::get(path);
        match keys.get(i % keys.len().max(1)) {
            Some(key) => request.with_header(API_KEY_HEADER, key.clone()),
            None => request,
        }
    };
    let requests: Arc<[Request]> = plan
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| request(i, p))
        .collect();
    let mut distinct: Vec<&String> = plan.paths.iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let fill: Arc<[Request]> = distinct
        .into_iter()
        .enumerate()
        .map(|(i, p)| request(i, p))
        .collect();

    let (limited, api_keys) = never_denying(plan.principals, "exact");
    let (leased, _) = never_denying(plan.principals, "lease");
    let configs = [
        ("unlimited", NO_ADMISSION.to_owned()),
        ("rate-limited", limited.clone()),
        ("rate-limited, leases", leased.clone()),
    ];
    let serial: Arc<[Request]> = requests[..requests.len().min(SERIAL_REQUESTS)].into();
    // Per config: the serial pass, then the loaded one.
    let mut runs: Vec<[Run; 2]> = Vec::new();
    for (config, admission) in configs {
        let vars = [("ADMISSION", admission), ("API_KEYS", api_keys.clone())];
        let edge = bench.start_edge(&bench.proxied_url(), &vars)?;
        step(&format!(
            "{config}: {} untimed fills, then {} timed at 1 in flight and {} at {}: {}",
            fill.len(),
            serial.len(),
            requests.len(),
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
            load::closed_loop(&client, &edge.url, fill.clone(), quiet("fill")).await;
            let one = load::Shape {
                concurrency: 1,
                ..quiet(&serial_name)
            };
            let one = bench.counted(load::closed_loop(&client, &edge.url, serial.clone(), one));
            let one = one.await;
            let many = load::closed_loop(
                &client,
                &edge.url,
                requests.clone(),
                bench.shape(&loaded_name),
            );
            Ok((one, bench.counted(many).await))
        })?;
        runs.push([
            Run {
                name: serial_name,
                summary: one,
            },
            Run {
                name: loaded_name,
                summary: many,
            },
        ]);
    }
    let [unlimited, limited_runs, leased_runs] = [&runs[0], &runs[1], &runs[2]];
    let rows = [0, 1].map(|pass| [&unlimited[pass], &limited_runs[pass], &leased_runs[pass]]);

    let principals = if plan.principals == 0 {
        "one principal (the bench's address: one `RATE_LIMITER` object)".to_owned()
    } else {
        format!(
            "{} principals (API keys taking turns: one `RATE_LIMITER` object each)",
            plan.principals
        )
    };
    Ok(Section {
        plots: Vec::new(),
        title: "Rate limiter latency".into(),
        intro: vec![
            format!(
                "{} Each edge is fresh; every key is fetched once, untimed, before the timed \
                 runs, so the timed requests are memory-tier hits. Timed: the first {} \
                 requests one at a time (the round trip itself), then all {} at {} in flight \
                 (the round trip's cost under load); {principals}.",
                plan.workload,
                serial.len(),
                requests.len(),
                bench.concurrency(),
            ),
            format!(
                "Rate-limited: `ADMISSION={limited}` (one `RATE_LIMITER` round trip per \
                 request). With leases: the same with `\"mode\": \"lease\"` (a round trip per \
                 lease of several tokens). Unlimited: `ADMISSION={NO_ADMISSION}`."
            ),
        ],
        tables: vec![
            (String::new(), latency_table(rows.iter().flatten().copied())),
            (
                "Rate-limited / unlimited, same run and concurrency: latency added by the \
                 `RATE_LIMITER` round trip (difference and ratio), and throughput"
                    .to_owned(),
                ratio_table(
                    rows.iter()
                        .flat_map(|[u, l, e]| [(*l, &u.summary), (*e, &u.summary)]),
                    true,
                ),
            ),
        ],
    })
}

/// The `i`th API key the bench's limited routes know (from 0).
pub(super) fn api_key(i: usize) -> String {
    format!("bench-limiter-{}", i + 1)
}

/// `ADMISSION` limiting `/api/products` with a quota no run reaches, and `API_KEYS` naming
/// `principals` keys ([`api_key`]) on the bench's plan: every request pays the `RATE_LIMITER`
/// round trip and none is denied.
/// `mode` is the route's: `exact` or `lease`.
pub(super) fn never_denying(principals: usize, mode: &str) -> (String, String) {
    let keys: std::collections::BTreeMap<String, &str> =
        (0..principals).map(|i| (api_key(i), PLAN)).collect();
    (limited_admission(mode), serde_json::json!(keys).to_string())
}

/// An `ADMISSION` that limits `/api/products` with a quota no run can reach, charged in `mode`.
fn limited_admission(mode: &str) -> String {
    serde_json::json!({
        "api_key_header": API_KEY_HEADER,
        "routes": [{
            "prefix": "/api/products",
            "priority": "high",
            "mode": mode,
            "quotas": [{
                "name": "never-denies",
                "limit": NEVER_DENIES,
                "period": "1s",
                "burst": NEVER_DENIES,
            }],
        }],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_accepts_both_policies() {
        let parse = |admission: &str| {
            breakwater_core::config::EdgeConfig::from_vars(|n| {
                (n == "ORIGIN_URL").then(|| "http://127.0.0.1:1".into())
            })
            .unwrap()
            .with_admission(Some(serde_json::from_str(admission).unwrap()), None, None)
            .unwrap()
            .admission
        };
        let limited = parse(&limited_admission("exact"));
        let route = limited.route("/api/products/1").expect("a limited route");
        assert_eq!(route.quotas[0].limit, NEVER_DENIES);
        let leased = parse(&limited_admission("lease"));
        let route = leased.route("/api/products/1").expect("a limited route");
        assert_eq!(route.mode, breakwater_core::ratelimit::Mode::Lease);
        assert!(parse(NO_ADMISSION).route("/api/products/1").is_none());
    }
}
