//! Failover: an origin killed mid-run. Closed-loop reads, every one of which reaches an origin
//! (the cache bypassed on `/api/`, admission off), through a fresh edge whose pool is two real
//! origins, A and B, each in-process on its own seeded SQLite database behind a
//! [`KillableRelay`]; B is killed when the "before" phase ends and restarted when the "during"
//! phase ends. Then the same against a fresh edge whose pool is B alone, killed and restarted at
//! the same moments: the baseline. The bench acts as the cron trigger (once a second, through
//! the edge's scheduled route), so active health checks run as they would deployed. Per phase:
//! requests, non-2xx and the error rate, p50/p99, what reached each origin and what the dead
//! one refused, and how long after the restart B took traffic again.

mod phases;
mod tables;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Bench, NO_ADMISSION, step};
use crate::edge::SCHEDULED_PATH;
use crate::killable::{Counts, KillableRelay};
use crate::load::{self, Request};
use crate::origin::Origin;
use crate::plot::{self, Plot, Series};
use crate::report::Section;
use crate::stats::Summary;

pub use phases::Phases;
use phases::{Phase, Second};

/// How often the bench fires the worker's `scheduled` handler (the cron).
const CRON_EVERY: Duration = Duration::from_secs(1);
/// wrangler.toml's `[triggers] crons`, as the scheduled event's `cron` (URL-encoded).
const CRON: &str = "*+*+*+*+*";
/// Answer deadline of one cron firing; a slower one counts as failed.
const CRON_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run.
pub struct Plan {
    pub phases: Phases,
    /// The read sequence, sent round and round.
    pub requests: Arc<[Request]>,
    /// Says what the sequence is.
    pub workload: String,
}

/// The edge's pool: wrangler.toml's ejection defaults, spelled out so the report shows them;
/// health checks of `/health` at every cron firing (the interval is below [`CRON_EVERY`] so
/// no firing skips them).
fn origins(urls: &[&str]) -> Value {
    json!({
        "origins": urls.iter().map(|url| json!({"url": url, "weight": 1})).collect::<Vec<_>>(),
        "ejection": {
            "consecutive_failures": 3, "base_ejection_ms": 5_000, "max_ejection_ms": 60_000,
            "max_ejected_percent": 50,
        },
        "health": {
            "path": "/health", "interval_ms": 500, "healthy_threshold": 2,
            "unhealthy_threshold": 2, "timeout_ms": 500,
        },
    })
}

/// The vars of an edge over `urls`: the pool, every `/api/` read bypassing the cache (so each
/// one reaches an origin), admission off, and no warm set (the cron runs the health checks
/// alone rather than refreshing paths that are not cached here).
fn vars(urls: &[&str]) -> Vec<(&'static str, String)> {
    vec![
        ("ORIGINS", origins(urls).to_string()),
        ("ADMISSION", NO_ADMISSION.to_owned()),
        (
            "CACHE_POLICY",
            json!({"routes": [{"prefix": "/api/", "mode": "bypass"}]}).to_string(),
        ),
        ("CACHE_WARM", String::new()),
    ]
}

/// The cron firings of one run.
#[derive(Debug, Clone, Default)]
pub struct Cron {
    pub ok: u64,
    pub failed: u64,
    /// The first failure, as the route or the client told it.
    pub first_failure: Option<String>,
}

/// One run's measurements.
pub struct Measured {
    pub name: &'static str,
    /// Per phase, in [`Phase::ALL`] order.
    pub summaries: [Summary; 3],
    pub seconds: Vec<Second>,
    /// p99 latency of each second's answers (and failures), in ms, by when they came.
    pub p99_per_second: Vec<(f64, f64)>,
    /// Per phase: what A's relay saw (`None` when A is not in the pool) and B's.
    pub a: Option<[Counts; 3]>,
    pub b: [Counts; 3],
    /// From B's restart to the first request it relayed.
    pub b_back_after: Option<Duration>,
    pub cron: Cron,
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    step("failover: starting origin B (in-process, its own seeded SQLite)");
    let origin_b = Origin::start()?;
    let (relay_a, addr_a) = bench.killable()?;
    let (relay_b, addr_b) = origin_b.killable()?;
    let (url_a, url_b) = (format!("http://{addr_a}"), format!("http://{addr_b}"));

    let pool_vars = vars(&[&url_a, &url_b]);
    let pool = one_run(
        bench,
        plan,
        "pool of two (A + B)",
        &pool_vars,
        Some(&relay_a),
        &relay_b,
    )?;
    let single_vars = vars(&[&url_b]);
    let single = one_run(
        bench,
        plan,
        "single origin (B)",
        &single_vars,
        None,
        &relay_b,
    )?;
    drop(origin_b);
    let mut section = tables::section(plan, &pool_vars, &pool, &single);
    section.plots = plots(plan, &[&pool, &single]);
    Ok(section)
}

/// Over time, one point a second, each run a line: p99 latency and answers other than 2xx, with
/// B's kill and restart marked.
fn plots(plan: &Plan, runs: &[&Measured]) -> Vec<Plot> {
    let p = plan.phases;
    let kind = || plot::Kind::Lines {
        x_label: "seconds".into(),
        marks: vec![
            (p.kill_at().as_secs_f64(), "B killed".into()),
            (p.restart_at().as_secs_f64(), "B restarted".into()),
        ],
    };
    vec![
        Plot {
            title: "p99 latency over time".into(),
            y_label: "ms".into(),
            kind: kind(),
            series: runs
                .iter()
                .map(|m| Series::new(m.name, m.p99_per_second.clone()))
                .collect(),
        },
        Plot {
            title: "Answers other than 2xx per second".into(),
            y_label: "requests".into(),
            kind: kind(),
            series: runs
                .iter()
                .map(|m| {
                    let points = m.seconds.iter().enumerate();
                    Series::new(
                        m.name,
                        points.map(|(s, c)| (s as f64, c.non_2xx as f64)).collect(),
                    )
                })
                .collect(),
        },
    ]
}

/// One fresh edge over the origins `vars` names (the first is also `ORIGIN_URL`): warm-up, then
/// the phases, B killed and restarted between them, the cron fired throughout.
fn one_run(
    bench: &Bench,
    plan: &Plan,
    name: &'static str,
    vars: &[(&'static str, String)],
    a: Option<&KillableRelay>,
    b: &KillableRelay,
) -> Result<Measured, String> {
    let first = vars
        .iter()
        .find(|(n, _)| *n == "ORIGINS")
        .and_then(|(_, v)| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v["origins"][0]["url"].as_str().map(str::to_owned))
        .ok_or("ORIGINS names no origin")?;
    let edge = bench.start_edge_with(&first, vars, true)?;
    let p = plan.phases;
    step(&format!(
        "failover, {name}: {} s before, B killed for {} s, {} s after: {}",
        p.before.as_secs(),
        p.during.as_secs(),
        p.after.as_secs(),
        edge.url
    ));
    let snapshot = || (a.map(KillableRelay::counts), b.counts());
    let (timed, snapshots, cron) = bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &edge.url).await;
        let started = Instant::now();
        let load = load::closed_loop_until(
            &client,
            &edge.url,
            plan.requests.clone(),
            bench.concurrency(),
            started,
            p.total(),
            name,
        );
        let control = async {
            let mut snapshots = vec![snapshot()];
            tokio::time::sleep_until((started + p.kill_at()).into()).await;
            snapshots.push(snapshot());
            b.kill();
            step(&format!("{name}: B killed"));
            tokio::time::sleep_until((started + p.restart_at()).into()).await;
            snapshots.push(snapshot());
            b.restart();
            step(&format!("{name}: B restarted"));
            snapshots
        };
        let mut cron = Cron::default();
        let (timed, snapshots) = tokio::select! {
            done = async { tokio::join!(load, control) } => done,
            () = fire_cron(&edge.url, &mut cron) => unreachable!("the cron fires until stopped"),
        };
        Ok((timed, snapshots, cron))
    })?;
    drop(edge);
    let mut snapshots = snapshots;
    snapshots.push(snapshot());
    let a_at: Option<Vec<Counts>> = snapshots.iter().map(|s| s.0).collect();
    let b_at: Vec<Counts> = snapshots.iter().map(|s| s.1).collect();
    let phases = p.split(&timed);
    Ok(Measured {
        name,
        summaries: Phase::ALL
            .map(|phase| Summary::of(phases[phase.index()].iter().copied(), p.length(phase))),
        seconds: phases::per_second(&timed, p.total()),
        p99_per_second: plot::percentile_per_second(
            timed.iter().map(|t| (t.at, t.sample.latency)),
            99.0,
        ),
        a: a_at.as_deref().map(per_phase),
        b: per_phase(&b_at),
        b_back_after: b.first_request_after_restart(),
        cron,
    })
}

/// What happened in each phase, from the counts at its boundaries (start, kill, restart, end).
fn per_phase(at: &[Counts]) -> [Counts; 3] {
    [at[1].since(at[0]), at[2].since(at[1]), at[3].since(at[2])]
}

/// Fires the edge's `scheduled` handler every [`CRON_EVERY`], forever, counting the outcomes.
async fn fire_cron(edge: &str, cron: &mut Cron) {
    let url = format!("{edge}{SCHEDULED_PATH}?cron={CRON}");
    let client = match load::client() {
        Ok(c) => c,
        Err(e) => {
            cron.first_failure = Some(e);
            return std::future::pending().await;
        }
    };
    let mut every = tokio::time::interval(CRON_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let outcome = match client.get(&url).timeout(CRON_TIMEOUT).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "{}: {}",
                r.status(),
                r.text().await.unwrap_or_default().trim()
            )),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => cron.ok += 1,
            Err(e) => {
                cron.failed += 1;
                cron.first_failure.get_or_insert(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_edge_accepts_the_vars_and_every_read_bypasses_the_cache() {
        let mut vars: BTreeMap<&str, String> = vars(&["http://127.0.0.1:1", "http://127.0.0.1:2"])
            .into_iter()
            .collect();
        vars.insert("ORIGIN_URL", "http://127.0.0.1:1".into());
        let json = |name| vars.get(name).map(|v| serde_json::from_str(v).unwrap());
        let config = breakwater_core::config::EdgeConfig::from_vars(|n| vars.get(n).cloned())
            .unwrap()
            .with_cache_policy(json("CACHE_POLICY"))
            .unwrap()
            .with_origins(json("ORIGINS"))
            .unwrap();
        assert_eq!(config.pool.origins.len(), 2);
        assert_eq!(config.pool.ejection.max_ejected_percent, 50);
        assert!(config.pool.health.interval_ms < CRON_EVERY.as_millis() as u64);
        assert!(config.warm.is_empty());
        let policy = config.cache.route("/api/products/7").unwrap();
        assert_eq!(policy.mode.as_str(), "bypass");
    }
}
