//! The origin alone, no edge, on its three kinds of database: product reads and order writes
//! against a fresh in-process origin over SQLite (the baseline), over Postgres (the primary
//! only), and over Postgres with its streaming replica serving the reads.
//!
//! Each configuration gets a fresh database (a temp SQLite file; a `bench_<random>` database of
//! its own on the primary, dropped afterwards) and a fresh origin started with
//! `Application::build`, its settings otherwise the defaults. With the replica, the measurement
//! starts once the replica has replayed the `CREATE DATABASE` and the seeded catalogue, and the
//! origin answers reads from it (`breakwater-read-from: replica-1`). Then, closed loop at the
//! bench's concurrency, each after an untimed warm-up: Zipf-distributed `GET /api/products/{id}`,
//! then `POST /api/orders`, each with a fresh key; then read-your-writes: orders each read back
//! at once (`GET` its `Location`) with the write's `breakwater-consistency` token, the read timed.
//! One table: throughput, p50, p99, answers other than 2xx, which database served, and ratios
//! against the SQLite row of the same workload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use breakwater_origin::Settings;
use breakwater_origin::db::Bulkheads;
use breakwater_origin::replica::ReplicaPolicy;
use breakwater_origin::seed::CATALOGUE_SIZE;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::runtime::Runtime;

use super::{block_on, idempotency, load_runtime, step};
use crate::load::{self, Request, Shape};
use crate::origin::Server;
use crate::postgres::{Database, Servers};
use crate::report::{Section, Table, ms, percent, ratio, secs, tally_cell};
use crate::stats::{Summary, Tally};

/// The write every order request is.
const ORDERS: &str = "/api/orders";
/// The header naming the client (the edge sets it; here the bench does).
const PRINCIPAL: &str = "breakwater-principal";
/// A write's answer header and a read's request header: the write's position in the WAL.
const CONSISTENCY: &str = "breakwater-consistency";
/// The principals orders take turns with (`ip:198.51.100.k`, TEST-NET-2), as the edge names
/// clients by address.
const PRINCIPALS: usize = 200;
/// Bounds every wait on the replica (replay of the new database, of its catalogue, the
/// monitor putting it in rotation); each usually takes well under a second.
const REPLICA_DEADLINE: Duration = Duration::from_secs(60);
/// The replica's name in `breakwater-read-from` (the first and only `replica_urls` entry).
const REPLICA: &str = "replica-1";
/// The product the readiness probe reads.
const PROBE: &str = "/api/products/1";

/// What to run.
pub struct Plan {
    /// The measured product reads, and the untimed ones before them.
    pub reads: Arc<[Request]>,
    pub warm_reads: Arc<[Request]>,
    /// Orders measured, and untimed before them.
    pub writes: usize,
    pub warm_writes: usize,
    /// Order-then-read pairs (read-your-writes); 0 for none.
    pub read_your_writes: usize,
    /// Sets `synchronous_commit = on` on the Postgres databases.
    pub synchronous_commit: bool,
    /// Product ids `1..=products` orders draw from.
    pub products: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub servers: Servers,
    /// Says what the read sequence is.
    pub workload: String,
}

/// The database under the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Sqlite,
    Primary,
    Replica,
}

impl Config {
    const ALL: [Config; 3] = [Config::Sqlite, Config::Primary, Config::Replica];

    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Primary => "Postgres, primary only",
            Self::Replica => "Postgres + streaming replica",
        }
    }

    /// Part of every idempotency key.
    fn tag(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Primary => "pg",
            Self::Replica => "pg-replica",
        }
    }
}

/// One configuration's measurements.
struct Measured {
    config: Config,
    reads: Summary,
    writes: Summary,
    /// `None` when none were asked for.
    read_your_writes: Option<Summary>,
    /// How its start went (seeding, waits on the replica), for the report.
    setup: String,
    /// Postgres's commit settings as the origin's sessions see them.
    commit_settings: Option<String>,
}

impl Measured {
    fn summary(&self, workload: Workload) -> Option<&Summary> {
        match workload {
            Workload::Reads => Some(&self.reads),
            Workload::Writes => Some(&self.writes),
            Workload::ReadYourWrites => self.read_your_writes.as_ref(),
        }
    }
}

/// What is measured, in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Reads,
    Writes,
    ReadYourWrites,
}

impl Workload {
    const ALL: [Workload; 3] = [Workload::Reads, Workload::Writes, Workload::ReadYourWrites];

    fn name(self) -> &'static str {
        match self {
            Self::Reads => "product reads",
            Self::Writes => "order writes",
            Self::ReadYourWrites => "read-your-writes",
        }
    }
}

pub fn run(plan: &Plan) -> Result<Section, String> {
    let rt = load_runtime()?;
    let measured = Config::ALL
        .into_iter()
        .map(|config| measure(&rt, plan, config))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(section(plan, &measured))
}

/// The order POSTs, `{tag}-{i}` keys: one line of a seeded random product each, a fresh quoted
/// `Idempotency-Key` (a structured-field string, as a client sends it) and a principal in turn.
fn orders(tag: &str, n: usize, plan: &Plan, seed: u64) -> Arc<[Request]> {
    idempotency::bodies(n, plan.products, seed)
        .iter()
        .enumerate()
        .map(|(i, body)| {
            Request::post_json(ORDERS, body.as_str())
                .with_header(PRINCIPAL, format!("ip:198.51.100.{}", 1 + i % PRINCIPALS))
                .with_header("idempotency-key", format!("\"bench-origin-{tag}-{i}\""))
        })
        .collect()
}

/// A fresh database and origin for `config`, made ready, then both workloads.
fn measure(rt: &Runtime, plan: &Plan, config: Config) -> Result<Measured, String> {
    let name = config.name();
    let mut setup = Vec::new();
    // Both outlive the origin (dropped after it, at the end of this function).
    let mut sqlite_dir = None;
    let mut database = None;
    let mut commit_settings = None;
    let settings = match config {
        Config::Sqlite => {
            let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            let url = format!("sqlite://{}", dir.path().join("origin.sqlite").display());
            sqlite_dir = Some(dir);
            step(&format!("{name}: a temp file, {url}"));
            Settings::new(Server::ANY_PORT, url)
        }
        Config::Primary | Config::Replica => {
            let db = block_on(rt, Database::create(&plan.servers))?;
            if plan.synchronous_commit {
                block_on(rt, db.synchronous_commit_on())?;
            }
            let settings = block_on(rt, db.commit_settings())?;
            step(&format!(
                "{name}: database {} created on the primary ({settings})",
                db.name
            ));
            commit_settings = Some(settings);
            let mut settings = Settings::new(Server::ANY_PORT, db.url.clone());
            if config == Config::Replica {
                let took = block_on(rt, db.wait_on_replica(REPLICA_DEADLINE))?;
                setup.push(format!(
                    "the database on the replica {:.0} ms after CREATE DATABASE",
                    secs(took) * 1e3
                ));
                settings.replica_urls = vec![db.replica_url.clone()];
            }
            database = Some(db);
            settings
        }
    };
    let started = Instant::now();
    let server = Server::start(settings)?;
    setup.insert(
        0,
        format!(
            "migrated and seeded in {:.0} ms",
            secs(started.elapsed()) * 1e3
        ),
    );
    let base = format!("http://{}", server.addr);
    step(&format!("{name}: origin in-process at {base}"));

    let reads_label = format!("{name}: product reads");
    let writes_label = format!("{name}: order writes");
    let warm_orders = orders(
        &format!("{}-warm", config.tag()),
        plan.warm_writes,
        plan,
        plan.seed ^ 1,
    );
    let timed_orders = orders(config.tag(), plan.writes, plan, plan.seed);
    let ryw_label = format!("{name}: read-your-writes");
    let ryw_orders = orders(
        &format!("{}-ryw", config.tag()),
        plan.read_your_writes,
        plan,
        plan.seed ^ 2,
    );
    let (reads, writes, read_your_writes) = block_on(rt, async {
        let client = load::client()?;
        if let (Config::Replica, Some(db)) = (config, &database) {
            let catalogue = db
                .wait_for_catalogue_on_replica(CATALOGUE_SIZE, REPLICA_DEADLINE)
                .await?;
            let serving = replica_serves(&client, &base).await?;
            setup.push(format!(
                "its catalogue there {:.0} ms after the seed; the origin read from it {:.0} ms \
                 later",
                secs(catalogue) * 1e3,
                secs(serving) * 1e3
            ));
        }
        step(&format!(
            "{name}: {} untimed reads, then {} timed at {} in flight",
            plan.warm_reads.len(),
            plan.reads.len(),
            plan.concurrency
        ));
        load::closed_loop(
            &client,
            &base,
            plan.warm_reads.clone(),
            shape(plan, "warm-up", false),
        )
        .await;
        let reads = load::closed_loop(
            &client,
            &base,
            plan.reads.clone(),
            shape(plan, &reads_label, true),
        )
        .await
        .summary();
        step(&format!(
            "{name}: {} untimed orders, then {} timed at {} in flight",
            warm_orders.len(),
            timed_orders.len(),
            plan.concurrency
        ));
        load::closed_loop(
            &client,
            &base,
            warm_orders,
            shape(plan, "warm-up orders", false),
        )
        .await;
        let writes = load::closed_loop(
            &client,
            &base,
            timed_orders,
            shape(plan, &writes_label, true),
        )
        .await
        .summary();
        if ryw_orders.is_empty() {
            return Ok((reads, writes, None));
        }
        step(&format!(
            "{name}: {} orders, each read back at once with its consistency token, {} in flight",
            ryw_orders.len(),
            plan.concurrency
        ));
        let ryw = load::closed_loop_then(
            &client,
            &base,
            ryw_orders,
            read_back,
            shape(plan, &ryw_label, true),
        )
        .await
        .summary();
        Ok((reads, writes, Some(ryw)))
    })?;
    drop(server);
    drop(database);
    drop(sqlite_dir);
    Ok(Measured {
        config,
        reads,
        writes,
        read_your_writes,
        setup: setup.join(", "),
        commit_settings,
    })
}

/// The read of a just-placed `order`: its `Location`, by the same principal, presenting the
/// answer's consistency token when there is one (Postgres; SQLite has none: one file).
fn read_back(order: &Request, answer: &HeaderMap) -> Request {
    let field = |name| answer.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let mut read = Request::get(field("location").unwrap_or(ORDERS));
    if let Some((name, principal)) = order.headers.iter().find(|(n, _)| *n == PRINCIPAL) {
        read = read.with_header(name, principal.clone());
    }
    if let Some(token) = field(CONSISTENCY) {
        read = read.with_header(CONSISTENCY, token);
    }
    read
}

/// A closed-loop run at the plan's concurrency.
fn shape<'a>(plan: &Plan, label: &'a str, progress: bool) -> Shape<'a> {
    Shape {
        concurrency: plan.concurrency,
        label,
        bypass: false,
        progress,
    }
}

/// Waits until the origin answers a read from the replica (its monitor measures every replica
/// every `check_interval` and puts it in rotation once it is caught up); returns how long.
async fn replica_serves(client: &reqwest::Client, base: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < REPLICA_DEADLINE {
        match client.get(format!("{base}{PROBE}")).send().await {
            Ok(resp) => {
                let from = resp
                    .headers()
                    .get("breakwater-read-from")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(no breakwater-read-from)")
                    .to_owned();
                if resp.status().is_success() && from == REPLICA {
                    return Ok(started.elapsed());
                }
                last = format!("{} from {from}", resp.status());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "the origin did not read {PROBE} from {REPLICA} within {} s (last: {last})",
        REPLICA_DEADLINE.as_secs()
    ))
}

/// The section: what ran, then one table, workload by workload, SQLite first.
fn section(plan: &Plan, measured: &[Measured]) -> Section {
    let bulkheads = Bulkheads::default();
    let policy = ReplicaPolicy::default();
    let (primary, replica) = plan.servers.addresses();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let commit = measured
        .iter()
        .find_map(|m| m.commit_settings.clone())
        .unwrap_or_else(|| "unknown".into());
    // With synchronous_commit off, a commit's WAL stays in the primary's buffers until the WAL
    // writer flushes it, and only flushed WAL goes to the replica.
    let lag = if commit.contains("synchronous_commit=off") {
        format!(
            " With synchronous_commit off, a commit reaches the replica only once the WAL \
             writer flushes it (every wal_writer_delay), usually later than the {} ms a \
             read-your-writes read waits, so most such reads wait, then go to the primary \
             (`--origin-synchronous-commit` turns it on for the bench's databases).",
            policy.read_your_writes_wait.as_millis()
        )
    } else {
        String::new()
    };
    let forced = if plan.synchronous_commit {
        "; synchronous_commit set on for the bench's databases"
    } else {
        ""
    };
    let setup: Vec<String> = measured
        .iter()
        .map(|m| format!("{}: {}.", m.config.name(), m.setup))
        .collect();
    Section {
        plots: Vec::new(),
        title: "Origin: SQLite vs Postgres (primary only, and with a streaming replica)".into(),
        intro: vec![
            format!(
                "The origin alone, no edge: for each configuration a fresh origin in-process \
                 (`Application::build`, as the tests start it) over a fresh database, seeded \
                 with {CATALOGUE_SIZE} products: SQLite on a temp file (WAL, synchronous=NORMAL); \
                 Postgres: a `bench_<random>` database of its own on the primary ({primary}), \
                 dropped afterwards; with the replica: `replica_urls` = that database on the \
                 streaming replica ({replica}), measured once the replica has replayed the \
                 catalogue and the origin reads from it. Other settings are the defaults: \
                 bulkheads reads {} connections (wait {} ms), writes {} ({} ms); a replica \
                 leaves the rotation beyond {} MiB of lag, measured every {} ms.",
                bulkheads.reads.size,
                bulkheads.reads.wait.as_millis(),
                bulkheads.writes.size,
                bulkheads.writes.wait.as_millis(),
                policy.max_lag_bytes / (1024 * 1024),
                policy.check_interval.as_millis(),
            ),
            format!(
                "Closed loop, {} in flight, after {} untimed requests of the same kind. Product \
                 reads: {} Order writes: {} `POST {ORDERS}` with one line (a seeded random \
                 product, quantity 1), a fresh `Idempotency-Key` each and \
                 `Breakwater-Principal: ip:198.51.100.k` over {PRINCIPALS} addresses; each \
                 should be a 201. Read-your-writes: {} such orders, each followed at once by \
                 `GET` of its `Location` with the answer's `Breakwater-Consistency` token \
                 (Postgres only: SQLite, one file, sends none); only the read is timed, and \
                 req/s counts order-and-read pairs. With the replica, such a read goes to it \
                 once it has replayed the write (waiting up to {} ms), else to the primary.",
                plan.concurrency,
                plan.warm_reads.len(),
                plan.workload,
                plan.writes,
                plan.read_your_writes,
                policy.read_your_writes_wait.as_millis(),
            ),
            format!(
                "Loopback HTTP; the load generator, the origin and both Postgres servers share \
                 this machine's {cpus} CPUs, and Postgres is tuned for tests by \
                 scripts/postgres.sh (as the origin's sessions saw it: {commit}{forced}), so the \
                 absolute figures describe this machine only; compare the ratios to the SQLite \
                 row of the same workload, same run, same requests.{lag}"
            ),
            format!("Start-up: {}", setup.join(" ")),
        ],
        tables: vec![(
            "non-2xx: answers other than 2xx, by status (a 503 is a bulkhead that found no \
                 connection within its wait). served by: which database answered the served \
                 requests, from `breakwater-read-from`."
                .into(),
            table(measured),
        )],
    }
}

fn table(measured: &[Measured]) -> Table {
    let mut table = Table::new([
        "workload",
        "configuration",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "req/s vs SQLite",
        "p99 vs SQLite",
        "served by",
    ])
    .left(1)
    .left(9);
    for workload in Workload::ALL {
        let base = measured
            .iter()
            .find(|m| m.config == Config::Sqlite)
            .and_then(|m| m.summary(workload));
        for m in measured {
            let Some(s) = m.summary(workload) else {
                continue;
            };
            table.row(vec![
                workload.name().to_owned(),
                m.config.name().to_owned(),
                s.requests.to_string(),
                format!("{:.0}", s.throughput()),
                ms(s.p(50.0)),
                ms(s.p(99.0)),
                tally_cell(s.non_2xx_count(), &s.non_2xx),
                ratio(Some(s.throughput()), base.map(Summary::throughput)),
                ratio(s.p(99.0).map(secs), base.and_then(|b| b.p(99.0)).map(secs)),
                served_by(&s.read_from),
            ]);
        }
    }
    table
}

/// `replica-1 99.9%, primary 0.1%`, most first; `-` when no answer named its database.
fn served_by(tally: &Tally) -> String {
    let total: u64 = tally.labels().map(|l| tally.get(l)).sum();
    if total == 0 {
        return "-".into();
    }
    let mut sources: Vec<(&str, u64)> = tally.labels().map(|l| (l, tally.get(l))).collect();
    sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    sources
        .into_iter()
        .map(|(source, n)| format!("{source} {}", percent(n as f64 / total as f64)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_most_first_and_errors_by_status() {
        let mut tally = Tally::default();
        for _ in 0..3 {
            tally.add("replica-1");
        }
        tally.add("primary");
        assert_eq!(served_by(&tally), "replica-1 75.0%, primary 25.0%");
        assert_eq!(served_by(&Tally::default()), "-");
        assert_eq!(tally_cell(0, &Tally::default()), "0");
        let mut errors = Tally::default();
        errors.add("503");
        errors.add("503");
        errors.add("no answer");
        assert_eq!(tally_cell(3, &errors), "3 (503 ×2, no answer ×1)");
    }

    #[test]
    fn a_read_back_presents_the_token_as_the_same_principal() {
        let order = Request::post_json(ORDERS, "{}").with_header(PRINCIPAL, "ip:198.51.100.7");
        let mut answer = HeaderMap::new();
        answer.insert("location", HeaderValue::from_static("/api/orders/42"));
        let read = read_back(&order, &answer);
        assert_eq!(read.method, reqwest::Method::GET);
        assert_eq!(read.path, "/api/orders/42");
        assert_eq!(read.headers, vec![(PRINCIPAL, "ip:198.51.100.7".into())]);
        answer.insert(CONSISTENCY, HeaderValue::from_static("0/3000060"));
        let read = read_back(&order, &answer);
        assert!(read.headers.contains(&(CONSISTENCY, "0/3000060".into())));
    }

    #[test]
    fn orders_carry_a_quoted_key_a_principal_and_one_line() {
        let plan = Plan {
            reads: Arc::from([]),
            warm_reads: Arc::from([]),
            writes: 0,
            warm_writes: 0,
            read_your_writes: 0,
            synchronous_commit: false,
            products: 10,
            concurrency: 1,
            seed: 1,
            servers: Servers::for_tests(),
            workload: String::new(),
        };
        let requests = orders("pg", 300, &plan, 7);
        let header = |r: &Request, name: &str| {
            r.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(requests[0].path, ORDERS);
        assert_eq!(
            header(&requests[2], "idempotency-key").as_deref(),
            Some("\"bench-origin-pg-2\"")
        );
        assert_eq!(
            header(&requests[0], "breakwater-principal").as_deref(),
            Some("ip:198.51.100.1")
        );
        assert_eq!(
            header(&requests[PRINCIPALS], "breakwater-principal"),
            header(&requests[0], "breakwater-principal")
        );
        let body: serde_json::Value =
            serde_json::from_str(requests[5].body.as_deref().unwrap()).unwrap();
        assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["items"][0]["quantity"], 1);
    }
}
