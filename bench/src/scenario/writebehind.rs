//! Write-behind: what a view costs when the edge queues it and answers `202`, against the same
//! view written synchronously, and how many database transactions each needs per event.
//!
//! The same seeded Zipf sequence of `POST /api/products/{id}/views`, closed loop, three times
//! against the one origin (its database is read before and after, so every figure is a delta):
//!
//! - **A, write-behind**: through a fresh edge with wrangler.toml's `WRITE_BEHIND` routes: each
//!   view is checked, put on `EVENTS` and answered `202`; the edge's queue consumer delivers the
//!   batches to the origin's batch endpoint (one transaction each). After the last `202` the
//!   origin's database is read until every view is counted: the drain.
//! - **B, synchronous through the edge**: a fresh edge whose `WRITE_BEHIND` has no routes, so it
//!   proxies each view to the origin's synchronous twin (`204`, one transaction each).
//! - **C, synchronous at the origin**: the twin straight at the origin, no edge: the floor.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Bench, NO_ADMISSION, step};
use crate::load::{self, Request};
use crate::origin::{ADMIN_TOKEN, EventTotals};
use crate::report::{Section, Table, ms, ratio, secs, tally_cell};
use crate::stats::{Sample, Summary, percentile};
use crate::workload;

/// `WRITE_BEHIND` without routes: every view goes to the origin's synchronous twin. (The whole
/// table replaces wrangler.toml's; with no routes its other fields do nothing.)
pub const NO_WRITE_BEHIND: &str = r#"{"routes": []}"#;
/// The queue the write-behind routes put events on (`[[queues.producers]]` `EVENTS`).
const EVENTS_QUEUE: &str = "breakwater-events";
/// Mixed into the seed for the warm-up views, so they never replay the measured sequence.
const WARM_SEED: u64 = 0x5649_4557;

/// What to run.
pub struct Plan {
    /// Views per run.
    pub events: usize,
    /// Product ids `1..=products`, Zipf `s`, seed.
    pub products: usize,
    pub s: f64,
    pub seed: u64,
    /// Untimed views before each run (counted, and drained, before the clock starts).
    pub warm: usize,
    /// How long after the last answer every view must be counted.
    pub drain_deadline: Duration,
    /// The `EVENTS` consumer's batching, from wrangler.toml (what Miniflare runs).
    pub batching: Batching,
}

/// `[[queues.consumers]]` of the events queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batching {
    pub max_batch_size: u64,
    /// Seconds.
    pub max_batch_timeout: f64,
}

impl Batching {
    /// The events queue's consumer settings in `wrangler.toml` (the text of it).
    pub fn from_wrangler_toml(text: &str) -> Result<Self, String> {
        let config: toml::Table = text.parse().map_err(|e| format!("wrangler.toml: {e}"))?;
        let consumer = config
            .get("queues")
            .and_then(|q| q.get("consumers"))
            .and_then(toml::Value::as_array)
            .and_then(|consumers| {
                consumers
                    .iter()
                    .find(|c| c.get("queue").and_then(toml::Value::as_str) == Some(EVENTS_QUEUE))
            })
            .ok_or_else(|| {
                format!("wrangler.toml has no [[queues.consumers]] for {EVENTS_QUEUE}")
            })?;
        let number = |field: &str| {
            consumer
                .get(field)
                .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
                .ok_or_else(|| format!("wrangler.toml: the {EVENTS_QUEUE} consumer has no {field}"))
        };
        Ok(Self {
            max_batch_size: number("max_batch_size")? as u64,
            max_batch_timeout: number("max_batch_timeout")?,
        })
    }

    /// Reads `wrangler.toml` under `root`.
    pub fn read(root: &Path) -> Result<Self, String> {
        let path = root.join("wrangler.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::from_wrangler_toml(&text)
    }
}

/// One of the three runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A: through an edge with write-behind on.
    Queued,
    /// B: through an edge with no write-behind routes.
    EdgeSync,
    /// C: the synchronous twin at the origin, no edge.
    OriginSync,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Queued, Mode::EdgeSync, Mode::OriginSync];

    fn name(self) -> &'static str {
        match self {
            Self::Queued => "A: write-behind (edge, queued)",
            Self::EdgeSync => "B: synchronous through the edge",
            Self::OriginSync => "C: synchronous at the origin, no edge",
        }
    }

    /// The answer every view must get.
    fn expected(self) -> u16 {
        match self {
            Self::Queued => 202,
            Self::EdgeSync | Self::OriginSync => 204,
        }
    }

    /// The vars of its edge; `None` for no edge.
    fn vars(self) -> Option<Vec<(&'static str, String)>> {
        let mut vars = vec![
            ("ADMISSION", NO_ADMISSION.to_owned()),
            ("ORIGIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ];
        match self {
            Self::Queued => {}
            Self::EdgeSync => vars.push(("WRITE_BEHIND", NO_WRITE_BEHIND.to_owned())),
            Self::OriginSync => return None,
        }
        Some(vars)
    }
}

/// What one run measured.
struct Measured {
    mode: Mode,
    /// Every request.
    all: Summary,
    /// The answers with the expected status only (their latencies are the percentiles).
    expected: Summary,
    /// From the last answer until the database had counted every view; `None` if not within
    /// the deadline.
    drain: Option<Duration>,
    /// The write-behind tables' change over the run and its drain.
    delta: EventTotals,
    /// HTTP requests that reached the origin through the counting proxy (edge runs).
    origin_requests: Option<u64>,
    /// Per event of the run, from the edge accepting it to the transaction counting it,
    /// ascending (zero for a synchronous view: both times are the origin's `now`).
    count_delays: Vec<Duration>,
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    let requests = views(plan.events, plan.products, plan.s, plan.seed);
    let warm = views(plan.warm, plan.products, plan.s, plan.seed ^ WARM_SEED);
    let mut measured = Vec::new();
    for mode in Mode::ALL {
        measured.push(measure(bench, plan, mode, &requests, &warm)?);
    }
    Ok(section(bench, plan, &requests, &measured))
}

/// `n` views of Zipf-distributed products: `POST /api/products/{id}/views`, no body.
fn views(n: usize, products: usize, s: f64, seed: u64) -> Arc<[Request]> {
    let spec = workload::Spec {
        products,
        list_pages: 0,
        s,
        requests: n,
        seed,
    };
    workload::paths(&spec)
        .into_iter()
        .map(|path| Request {
            method: reqwest::Method::POST,
            ..Request::get(format!("{path}/views"))
        })
        .collect()
}

fn measure(
    bench: &Bench,
    plan: &Plan,
    mode: Mode,
    requests: &Arc<[Request]>,
    warm: &Arc<[Request]>,
) -> Result<Measured, String> {
    let edge = match mode.vars() {
        Some(vars) => Some(bench.start_edge(&bench.proxied_url(), &vars)?),
        None => None,
    };
    let base = edge
        .as_ref()
        .map_or_else(|| bench.direct_url(), |e| e.url.clone());
    let name = mode.name();
    step(&format!(
        "{name}: {} untimed views (counted before the clock starts), then {} at {} in flight, \
         each expected {}: {base}",
        warm.len(),
        requests.len(),
        bench.concurrency(),
        mode.expected(),
    ));
    let client = load::client()?;

    // Warm-up: connections, the wasm, the queue, the origin's pages; then wait until the
    // warm-up views are counted, so the measured run starts with nothing in flight.
    let start = bench.event_totals()?;
    bench.block_on(async {
        bench.warm_up(&client, &base).await;
        let quiet = load::Shape {
            progress: false,
            ..bench.shape("warm-up views")
        };
        load::closed_loop(&client, &base, warm.clone(), quiet).await;
        Ok(())
    })?;
    let (before, warmed) = bench.wait_for_views(
        start.views + warm.len() as i64,
        Instant::now(),
        plan.drain_deadline,
    )?;
    if warmed.is_none() {
        return Err(format!(
            "{name}: only {} of the {} warm-up views were counted within {} s: are the \
             EVENTS queue and its consumer working (ORIGIN_TOKEN, the origin's batch endpoint)?",
            before.views - start.views,
            warm.len(),
            plan.drain_deadline.as_secs(),
        ));
    }

    let mark_ms = unix_ms();
    let origin_before = bench.origin_requests();
    let samples = bench.block_on(async {
        Ok(load::closed_loop(&client, &base, requests.clone(), bench.shape(name)).await)
    })?;
    let last_answer = Instant::now();
    let target = before.views + requests.len() as i64;
    let (after, drain) = bench.wait_for_views(target, last_answer, plan.drain_deadline)?;
    let origin_requests = edge
        .is_some()
        .then(|| bench.origin_requests() - origin_before);
    drop(edge);
    let delta = after.since(before);
    let mut count_delays = bench.count_delays(mark_ms)?;
    count_delays.sort_unstable();
    match drain {
        Some(d) => step(&format!(
            "{name}: every view counted {:.2} s after the last answer",
            d.as_secs_f64()
        )),
        None => step(&format!(
            "{name}: only {} of {} views counted {} s after the last answer",
            delta.views,
            requests.len(),
            plan.drain_deadline.as_secs()
        )),
    }
    let expected = mode.expected();
    let expected_only: Vec<&Sample> = samples
        .samples
        .iter()
        .filter(|s| s.status == Some(expected))
        .collect();
    Ok(Measured {
        mode,
        all: samples.summary(),
        expected: Summary::of(expected_only, samples.wall),
        drain,
        delta,
        origin_requests,
        count_delays,
    })
}

/// Now, in Unix milliseconds (the clock the edge and the origin stamp events with).
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn section(bench: &Bench, plan: &Plan, requests: &[Request], measured: &[Measured]) -> Section {
    let paths: Vec<String> = requests.iter().map(|r| r.path.clone()).collect();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let batching = plan.batching;
    let mut odd = Vec::new();
    for m in measured {
        let other_2xx = m.all.requests as u64 - m.all.non_2xx_count() - m.expected.requests as u64;
        if other_2xx > 0 {
            odd.push(format!(
                "{}: {other_2xx} answers were 2xx but not {} (left out of the percentiles).",
                m.mode.name(),
                m.mode.expected()
            ));
        }
    }
    let mut tables = vec![
        (
            format!(
                "p50/p99: of the answers with the run's status (202 for A, 204 for B and C). \
                 drain: from the last answer until the origin's `SUM(views)` had grown by all \
                 {} (polled every 10 ms). {} DB transactions: transactions that applied events \
                 (`SUM(deliveries)` of `event_batches`; a synchronous view is a batch of one). \
                 vs B: ratio to run B, the same write done synchronously through the same edge.",
                requests.len(),
                last_batch(requests.len(), batching),
            ),
            main_table(plan, measured),
        ),
        (
            "Delivery, from the origin's database: events counted (`SUM(views)`), distinct \
             batches, redeliveries (transactions − batches), duplicate events (delivered − \
             counted; the origin counts each event id once), events per transaction; accepted \
             → counted: per event, from the edge accepting it (the event's `at`) to the start \
             of the transaction that counted it (its batch's `first_seen`), i.e. how stale the \
             counts are; and HTTP requests that reached the origin from the edge."
                .to_owned(),
            delivery_table(measured),
        ),
    ];
    if !odd.is_empty() {
        tables[0].0.push(' ');
        tables[0].0.push_str(&odd.join(" "));
    }
    Section {
        plots: Vec::new(),
        title: "Write-behind: queued views vs synchronous writes".into(),
        intro: vec![
            format!(
                "Setup: the edge under workerd via the Miniflare API (not `wrangler dev`), a \
                 fresh edge per run; `EVENTS` and its dead-letter queue are Miniflare's \
                 in-process queue simulation, batching as wrangler.toml says (max_batch_size \
                 {}, max_batch_timeout {} s: a batch goes when it is full or when its first \
                 message has waited that long), consumed by the same worker, which sends each \
                 batch to the origin's `/internal/events/batch` with `ORIGIN_TOKEN` = the \
                 origin's admin token; the origin in-process on SQLite (a temp file), the same \
                 one for the three runs (figures are deltas of its tables). `ADMISSION={}` in \
                 both edges. Load generator, workerd and origin share {cpus} CPUs, so the \
                 ratios matter, not the absolute figures.",
                batching.max_batch_size, batching.max_batch_timeout, NO_ADMISSION,
            ),
            format!(
                "Workload: {} `POST /api/products/{{id}}/views` (no body), Zipf s={} over ids \
                 1..={} ({} distinct), seed {}, closed loop at {} in flight; before each run \
                 {} untimed GETs and {} untimed views, counted before the clock starts. A: \
                 wrangler.toml's `WRITE_BEHIND` (views answered 202, queued). B: \
                 `WRITE_BEHIND={NO_WRITE_BEHIND}`, so the edge proxies each view to the \
                 origin's synchronous twin (204, one transaction). C: the twin straight at the \
                 origin. A 202 means queued, not counted: A's latency buys that, and its \
                 counting is the drain.",
                requests.len(),
                plan.s,
                plan.products,
                workload::distinct(&paths),
                plan.seed,
                bench.concurrency(),
                bench.warm_len(),
                plan.warm,
            ),
        ],
        tables,
    }
}

fn main_table(plan: &Plan, measured: &[Measured]) -> Table {
    let mut table = Table::new([
        "run",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "drain",
        "DB transactions",
        "per 1,000 events",
        "p50 vs B",
        "p99 vs B",
    ]);
    let base = measured
        .iter()
        .find(|m| m.mode == Mode::EdgeSync)
        .map(|m| &m.expected);
    for m in measured {
        let s = &m.expected;
        let n = m.all.requests;
        let drain = match m.drain {
            Some(d) => format!("{:.2} s", d.as_secs_f64()),
            None => format!(
                "over {} s ({} of {n} counted)",
                plan.drain_deadline.as_secs(),
                m.delta.views
            ),
        };
        table.row(vec![
            m.mode.name().to_owned(),
            n.to_string(),
            format!("{:.0}", m.all.throughput()),
            ms(s.p(50.0)),
            ms(s.p(99.0)),
            tally_cell(m.all.non_2xx_count(), &m.all.non_2xx),
            drain,
            m.delta.transactions.to_string(),
            per_thousand(m.delta.transactions, n),
            ratio(s.p(50.0).map(secs), base.and_then(|b| b.p(50.0)).map(secs)),
            ratio(s.p(99.0).map(secs), base.and_then(|b| b.p(99.0)).map(secs)),
        ]);
    }
    table
}

fn delivery_table(measured: &[Measured]) -> Table {
    let mut table = Table::new([
        "run",
        "events counted",
        "batches",
        "redeliveries",
        "duplicate events",
        "events per transaction",
        "accepted → counted p50 / p99",
        "origin HTTP requests",
    ]);
    for m in measured {
        let d = &m.delta;
        table.row(vec![
            m.mode.name().to_owned(),
            format!("{} of {}", d.views, m.all.requests),
            d.batches.to_string(),
            (d.transactions - d.batches).to_string(),
            (d.delivered - d.applied).to_string(),
            if d.transactions > 0 {
                format!("{:.1}", d.applied as f64 / d.transactions as f64)
            } else {
                "-".into()
            },
            staleness(m),
            m.origin_requests.map_or("-".into(), |n| n.to_string()),
        ]);
    }
    table
}

/// What the drain caption says of the last batch.
fn last_batch(events: usize, batching: Batching) -> String {
    let size = batching.max_batch_size.max(1) as usize;
    let rest = events % size;
    if rest == 0 {
        format!(
            "For A, {events} events make whole batches of {size}: when batches fill within \
             the {} s wait (events per transaction below says whether they did), the last one \
             goes as soon as it is full and the drain is its delivery alone; a remainder would \
             wait up to {} s.",
            batching.max_batch_timeout, batching.max_batch_timeout
        )
    } else {
        format!(
            "For A it includes the wait of the last {rest} events (a batch not full) of up to \
             {} s (max_batch_timeout).",
            batching.max_batch_timeout
        )
    }
}

/// `p50 / p99 ms` of the accepted → counted delays (whole ms: both ends are Unix ms); `in the
/// request` for synchronous views.
fn staleness(m: &Measured) -> String {
    if m.mode != Mode::Queued {
        return "in the request".into();
    }
    let d = &m.count_delays;
    let whole_ms = |p| percentile(d, p).map_or("-".into(), |d| d.as_millis().to_string());
    let mut cell = format!("{} / {} ms", whole_ms(50.0), whole_ms(99.0));
    if d.len() != m.all.requests {
        cell.push_str(&format!(" ({} events)", d.len()));
    }
    cell
}

/// `transactions` per 1,000 of `events`, one decimal.
fn per_thousand(transactions: i64, events: usize) -> String {
    if events == 0 {
        return "-".into();
    }
    format!("{:.1}", transactions as f64 * 1_000.0 / events as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_posts_without_a_body_to_seeded_products() {
        let a = views(200, 50, 0.99, 7);
        assert_eq!(a, views(200, 50, 0.99, 7));
        for r in a.iter() {
            assert_eq!(r.method, reqwest::Method::POST);
            assert!(r.body.is_none() && r.headers.is_empty());
            let id = r
                .path
                .strip_prefix("/api/products/")
                .and_then(|p| p.strip_suffix("/views"))
                .and_then(|id| id.parse::<usize>().ok());
            assert!(id.is_some_and(|id| (1..=50).contains(&id)), "{}", r.path);
        }
        assert_ne!(a, views(200, 50, 0.99, 8));
    }

    #[test]
    fn the_edge_accepts_both_runs_vars() {
        let parse = |vars: Vec<(&str, String)>| {
            let mut vars: std::collections::BTreeMap<&str, String> = vars.into_iter().collect();
            vars.insert("ORIGIN_URL", "http://127.0.0.1:1".into());
            let json = |name| vars.get(name).map(|v| serde_json::from_str(v).unwrap());
            breakwater_core::config::EdgeConfig::from_vars(|n| vars.get(n).cloned())
                .unwrap()
                .with_admission(json("ADMISSION"), None, None)
                .unwrap()
                .with_write_behind(json("WRITE_BEHIND"))
                .unwrap()
        };
        let off = parse(Mode::EdgeSync.vars().unwrap());
        assert!(off.write_behind.routes.is_empty());
        assert!(
            off.write_behind
                .route("POST", "/api/products/7/views")
                .is_none()
        );
        assert!(off.admission.route("/api/products/7/views").is_none());
        // Run A keeps wrangler.toml's WRITE_BEHIND: the bench sets none.
        let on = Mode::Queued.vars().unwrap();
        assert!(on.iter().all(|(name, _)| *name != "WRITE_BEHIND"));
        assert!(on.contains(&("ORIGIN_TOKEN", ADMIN_TOKEN.to_owned())));
        assert!(Mode::OriginSync.vars().is_none());
    }

    #[test]
    fn the_repository_queues_views_and_batches_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let batching = Batching::read(&root).unwrap();
        assert!(batching.max_batch_size >= 1 && batching.max_batch_timeout > 0.0);
        let text = std::fs::read_to_string(root.join("wrangler.toml")).unwrap();
        let config: toml::Table = text.parse().unwrap();
        let table = config["vars"]["WRITE_BEHIND"].clone();
        let json = serde_json::to_value(table).unwrap();
        let wb = breakwater_core::writebehind::WriteBehindConfig::from_value(json).unwrap();
        assert!(wb.route("POST", "/api/products/7/views").is_some());
    }

    #[test]
    fn batching_is_read_from_the_events_consumer() {
        let text = r#"
            [[queues.consumers]]
            queue = "other"
            max_batch_size = 5
            max_batch_timeout = 9

            [[queues.consumers]]
            queue = "breakwater-events"
            max_batch_size = 100
            max_batch_timeout = 2
        "#;
        let b = Batching::from_wrangler_toml(text).unwrap();
        assert_eq!(
            b,
            Batching {
                max_batch_size: 100,
                max_batch_timeout: 2.0
            }
        );
        assert!(Batching::from_wrangler_toml("name = 'x'").is_err());
    }

    #[test]
    fn transactions_per_thousand_events() {
        assert_eq!(per_thousand(50, 5_000), "10.0");
        assert_eq!(per_thousand(5_000, 5_000), "1000.0");
        assert_eq!(per_thousand(1, 0), "-");
    }
}
