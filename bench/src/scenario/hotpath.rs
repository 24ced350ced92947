//! The hot path: what one request costs the edge, against a bare workers-rs worker built and
//! routed the same way (`bench/bare`: a fetch handler answering a constant 40-byte JSON). Each
//! row is a closed loop of one kind of request at the bench's concurrency on a fresh workerd, in
//! turns taken in rotation with the other rows while every worker runs: throughput and its ratio
//! to the bare worker, p50/p99, and the CPU time workerd spent per answered request (read from
//! `/proc`, so the load generator's share of the machine is left out). Then cold start (spawn to ready, and ready to the first answer) and the
//! wasm's size, raw and gzipped, with a per-crate breakdown of the edge's code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{API_KEY_HEADER, Bench, NO_ADMISSION, idempotency, limiter, step};
use crate::edge::Edge;
use crate::load::{self, Request};
use crate::plot::{self, Plot, Series};
use crate::report::{Section, Table, ms, percent};
use crate::stats::{Sample, Summary};

/// The product every read row asks for (one key: the row measures a hit, not a workload).
const PRODUCT: &str = "/api/products/42";
/// Untimed requests before each row: connections open, the cache filled, the isolate warm.
const WARM_REQUESTS: usize = 200;
/// Turns each row takes, in rotation with the others, to make up its time.
const TURNS: usize = 4;
/// Distinct idempotency keys prepared per POST row; more than a row can send on this machine,
/// so no key repeats (a repeat would be a replay, a different path).
const POST_KEYS: usize = 40_000;
/// Where the edge's code is before wasm-opt strips its names (the per-crate breakdown).
const EDGE_WASM_NAMED: &str = "target/wasm32-unknown-unknown/release/breakwater.wasm";
/// Crates shown by name in the breakdown; the rest are summed.
const TOP_CRATES: usize = 20;

/// The goals the rows are held to, as shares of the bare worker.
const GOAL_THROUGHPUT: f64 = 0.75;
const GOAL_LIMITED_THROUGHPUT: f64 = 0.50;
const GOAL_CPU: f64 = 1.3;

/// What to run.
pub struct Plan {
    /// How long each row's timed loop runs.
    pub row: Duration,
    /// Rows whose name contains one of these (the bare worker always runs); empty for all.
    pub only: Vec<String>,
}

/// One row: a kind of request, what it measured, and what workerd spent on it.
struct Row {
    name: String,
    summary: Summary,
    cpu: Duration,
}

impl Row {
    fn cpu_per_request(&self) -> Option<Duration> {
        let answered = self.summary.requests - self.summary.errors;
        (answered > 0).then(|| self.cpu / answered as u32)
    }

    /// Throughput and CPU per request as multiples of `bare`'s (`None` without a base).
    fn against(&self, bare: &Row) -> (Option<f64>, Option<f64>) {
        let divide = |x: f64, base: f64| (base > 0.0).then(|| x / base);
        let throughput = divide(self.summary.throughput(), bare.summary.throughput());
        let cpu = self
            .cpu_per_request()
            .zip(bare.cpu_per_request())
            .and_then(|(own, base)| divide(own.as_secs_f64(), base.as_secs_f64()));
        (throughput, cpu)
    }
}

/// A multiple as `1.25×`, `-` for none.
fn times(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2}×"))
}

/// How a worker started: spawn to READY, then READY to its first answer.
struct Started {
    ready_after: Duration,
    first_answer: Duration,
}

/// The edges the rows run on, in the order they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worker {
    /// Routed through the edge's `[assets]`, as the edge is: the baseline.
    Bare,
    BareNoAssets,
    /// wrangler.toml's edge without admission routes (nothing is limited).
    Edge,
    /// The product route cached in the Cache API alone.
    CacheApiOnly,
    /// A quota on the product route that no run reaches, one API key.
    Limited,
    /// Idempotency records off.
    RecordsOff,
}

/// The rows, in report order: name, worker, what each request is.
const ROWS: [(&str, Worker, Kind); 9] = [
    ("bare workers-rs", Worker::Bare, Kind::Root),
    (
        "bare workers-rs, no [assets]",
        Worker::BareNoAssets,
        Kind::Root,
    ),
    ("memory hit", Worker::Edge, Kind::Product),
    ("hashed asset (CSS)", Worker::Edge, Kind::HashedCss),
    ("front page HTML", Worker::Edge, Kind::Root),
    ("keyed POST, records on", Worker::Edge, Kind::Order),
    ("Cache API hit", Worker::CacheApiOnly, Kind::Product),
    (
        "memory hit, limited route",
        Worker::Limited,
        Kind::LimitedProduct,
    ),
    ("keyed POST, records off", Worker::RecordsOff, Kind::Order),
];

/// What a row sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    Product,
    LimitedProduct,
    HashedCss,
    Order,
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    let hashed_css = hashed_asset(bench, "/css/app.css")?;
    let requests = |kind: Kind, name: &str| match kind {
        Kind::Root => vec![Request::get("/")],
        Kind::Product => vec![Request::get(PRODUCT)],
        Kind::LimitedProduct => {
            vec![Request::get(PRODUCT).with_header(API_KEY_HEADER, limiter::api_key(0))]
        }
        Kind::HashedCss => vec![Request::get(&hashed_css)],
        Kind::Order => keyed_orders(&name.replace([' ', ','], "")),
    };
    let chosen = |name: &str| {
        name == ROWS[0].0 || plan.only.is_empty() || plan.only.iter().any(|o| name.contains(o))
    };
    // Every worker up at once, so the rows can take turns: the machine's background load then
    // weighs on every row alike, and a ratio compares like with like.
    let mut workers = Vec::new();
    let mut starts = Vec::new();
    for worker in [
        Worker::Bare,
        Worker::BareNoAssets,
        Worker::Edge,
        Worker::CacheApiOnly,
        Worker::Limited,
        Worker::RecordsOff,
    ] {
        if !ROWS.iter().any(|(name, w, _)| *w == worker && chosen(name)) {
            continue;
        }
        let edge = start(bench, worker)?;
        let first = match worker {
            Worker::Bare | Worker::BareNoAssets => "/",
            _ => hashed_css.as_str(),
        };
        starts.push((worker, first_answer(bench, &edge, first)?));
        workers.push((worker, edge));
    }
    let mut rows: Vec<Turns> = Vec::new();
    for (name, worker, kind) in ROWS.iter().filter(|(name, ..)| chosen(name)) {
        let Some((_, edge)) = workers.iter().find(|(w, _)| w == worker) else {
            continue;
        };
        rows.push(Turns::warm(bench, edge, name, requests(*kind, name))?);
    }
    let turn = plan.row / TURNS as u32;
    for round in 0..TURNS {
        step(&format!(
            "hot path: round {} of {TURNS}, {} rows of {:.1} s each",
            round + 1,
            rows.len(),
            turn.as_secs_f64()
        ));
        for row in &mut rows {
            row.take_turn(bench, round, turn)?;
        }
    }
    let rows: Vec<Row> = rows.into_iter().map(Turns::finish).collect();
    drop(workers);
    let started = |w: Worker| starts.iter().find(|(s, _)| *s == w).map(|(_, s)| s);
    let (Some(bare_start), Some(edge_start)) = (
        started(Worker::Bare),
        started(Worker::Edge).or(starts.last().map(|(_, s)| s)),
    ) else {
        return Err("--hotpath-rows chose no edge row".into());
    };

    let root = bench.root();
    Ok(Section {
        plots: vec![ratio_plot(&rows)],
        title: "Hot path: CPU per request and size against a bare worker".into(),
        intro: vec![format!(
            "Each row: {} untimed requests, then one kind of request for {:.0} s in all at {} \
             in flight, in {TURNS} turns taken in rotation with the other rows (every worker \
             runs at once, each in a fresh workerd via the Miniflare API, so background load \
             weighs on all rows alike). CPU is the workerd processes' user + \
             system time over the row divided by the requests answered. Bare: `bench/bare`, a \
             workers-rs fetch handler answering 40 bytes of JSON, built as the edge is (release, \
             opt-level \"s\", LTO, wasm-opt -Oz) and routed through the same `[assets]` (run \
             first); every ratio is to it. The row without `[assets]` shows what that routing \
             costs under Miniflare, where an asset router worker runs in front of the worker in \
             the same workerd (on Cloudflare it runs in the platform, not in the worker's CPU \
             time). Memory and Cache API hits read `{PRODUCT}`; \
             the limited route has a quota it never reaches (one API key, leases of tokens); keyed POSTs are \
             `/api/orders` with a fresh `Idempotency-Key` each, so they reach the origin.",
            WARM_REQUESTS,
            plan.row.as_secs_f64(),
            bench.concurrency(),
        )],
        tables: vec![
            (String::new(), rows_table(&rows)),
            (
                "Goals, as shares of the bare worker measured in the same run.".into(),
                goals_table(&rows),
            ),
            (
                "Cold start: spawning Miniflare to its READY line (wrangler's config, workerd, \
                 compiling the wasm), then the first request's answer."
                    .into(),
                start_table(bare_start, edge_start),
            ),
            (
                "Wasm shipped (after wasm-opt), gzip -6 as an estimate of the upload's \
                 compression."
                    .into(),
                size_table(root)?,
            ),
            (
                format!(
                    "Where the edge's code is, by crate (`{EDGE_WASM_NAMED}`, before wasm-opt, \
                     which keeps the names)."
                ),
                crate::size::breakdown(&root.join(EDGE_WASM_NAMED))?.table(TOP_CRATES),
            ),
        ],
    })
}

/// A fresh `worker` with its vars.
fn start(bench: &Bench, worker: Worker) -> Result<Edge, String> {
    let no_admission = ("ADMISSION", NO_ADMISSION.to_owned());
    let vars = match worker {
        Worker::Bare | Worker::BareNoAssets => {
            let bare = Edge::start_bare(bench.root(), worker == Worker::Bare, false)?;
            step(&format!("bare workers-rs worker: {}", bare.url));
            return Ok(bare);
        }
        Worker::Edge => vec![no_admission],
        Worker::CacheApiOnly => cache_api_only(),
        Worker::Limited => {
            let (admission, api_keys) = limiter::never_denying(1, "lease");
            vec![("ADMISSION", admission), ("API_KEYS", api_keys)]
        }
        Worker::RecordsOff => vec![
            no_admission,
            ("IDEMPOTENCY_POLICY", idempotency::RECORDS_OFF.to_owned()),
        ],
    };
    bench.start_edge(&bench.proxied_url(), &vars)
}

/// One row's turns so far: a closed loop of its requests on its worker, `TURNS` times.
struct Turns<'a> {
    name: &'static str,
    edge: &'a Edge,
    /// One part per turn, each fresh (keyed POSTs never repeat a key).
    parts: Vec<Arc<[Request]>>,
    samples: Vec<Sample>,
    wall: Duration,
    cpu: Duration,
}

impl<'a> Turns<'a> {
    /// Sends `WARM_REQUESTS` untimed requests (the first of `requests`, or the only request
    /// over and over), and splits the rest into the turns' parts (the only request, each turn).
    fn warm(
        bench: &Bench,
        edge: &'a Edge,
        name: &'static str,
        requests: Vec<Request>,
    ) -> Result<Self, String> {
        step(&format!("hot path: warming {name}"));
        let (warm, parts): (Arc<[Request]>, Vec<Arc<[Request]>>) = match requests.as_slice() {
            [one] => (
                std::iter::repeat_n(one.clone(), WARM_REQUESTS).collect(),
                vec![Arc::from(requests.as_slice()); TURNS],
            ),
            _ => {
                let (warm, timed) = requests.split_at(WARM_REQUESTS.min(requests.len() / 2));
                let part = timed.len().div_ceil(TURNS).max(1);
                (warm.into(), timed.chunks(part).map(Arc::from).collect())
            }
        };
        bench.block_on(async {
            let client = load::client()?;
            let shape = load::Shape {
                progress: false,
                ..bench.shape("warm")
            };
            load::closed_loop(&client, &edge.url, warm, shape).await;
            Ok(())
        })?;
        Ok(Self {
            name,
            edge,
            parts,
            samples: Vec::new(),
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
        })
    }

    /// Runs part `round` for `length`, adding its samples, wall time and workerd CPU time.
    fn take_turn(&mut self, bench: &Bench, round: usize, length: Duration) -> Result<(), String> {
        let part = self
            .parts
            .get(round)
            .cloned()
            .ok_or_else(|| format!("{}: no requests left for turn {round}", self.name))?;
        let (samples, wall, cpu) = bench.block_on(async {
            let client = load::client()?;
            let before = self.edge.workerd_cpu()?;
            let started = Instant::now();
            let timed = load::closed_loop_until(
                &client,
                &self.edge.url,
                part,
                bench.concurrency(),
                started,
                length,
                self.name,
            )
            .await;
            let wall = started.elapsed();
            let cpu = self.edge.workerd_cpu()?.saturating_sub(before);
            Ok((timed, wall, cpu))
        })?;
        self.samples.extend(samples.into_iter().map(|t| t.sample));
        self.wall += wall;
        self.cpu += cpu;
        Ok(())
    }

    fn finish(self) -> Row {
        Row {
            name: self.name.to_owned(),
            summary: Summary::of(&self.samples, self.wall),
            cpu: self.cpu,
        }
    }
}

/// How long `edge` took to be ready, and then to answer `path` for the first time.
fn first_answer(bench: &Bench, edge: &Edge, path: &str) -> Result<Started, String> {
    let first_answer = bench.block_on(async {
        let client = load::client()?;
        let sent = Instant::now();
        let status = client
            .get(format!("{}{path}", edge.url))
            .send()
            .await
            .map_err(|e| format!("first request to {}: {e}", edge.url))?
            .status();
        if !status.is_success() {
            return Err(format!("first request to {}{path}: {status}", edge.url));
        }
        Ok(sent.elapsed())
    })?;
    Ok(Started {
        ready_after: edge.ready_after,
        first_answer,
    })
}

/// `POST /api/orders` with [`POST_KEYS`] distinct keys `{tag}-{i}`: each is a first attempt.
fn keyed_orders(tag: &str) -> Vec<Request> {
    idempotency::bodies(POST_KEYS, 1_000, 7)
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            Request::post_json("/api/orders", body)
                .with_header("idempotency-key", format!("{tag}-key-{i:08}"))
        })
        .collect()
}

/// An edge whose product route is cached in the Cache API only, so every hit is one.
fn cache_api_only() -> Vec<(&'static str, String)> {
    let policy = json!({"routes": [{
        "prefix": "/api/products",
        "mode": "honor",
        "ttl": {"floor": 0, "ceiling": 3600},
        "tiers": ["cache_api"],
    }]});
    vec![
        ("ADMISSION", NO_ADMISSION.to_owned()),
        ("CACHE_POLICY", policy.to_string()),
    ]
}

/// The content-hashed path the asset manifest (`dist/asset-manifest.json`) gives `logical`.
fn hashed_asset(bench: &Bench, logical: &str) -> Result<String, String> {
    let path = bench.root().join("dist/asset-manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    manifest["current"][logical]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no current entry for {logical}", path.display()))
}

fn rows_table(rows: &[Row]) -> Table {
    let mut table = Table::new([
        "run",
        "requests",
        "errors",
        "req/s",
        "vs bare",
        "p50 ms",
        "p99 ms",
        "workerd CPU µs/request",
        "CPU vs bare",
        "answered from",
    ])
    .left(9);
    let bare = rows.first();
    for row in rows {
        let s = &row.summary;
        let cpu = row.cpu_per_request();
        let (rate_ratio, cpu_ratio) = bare.map_or((None, None), |bare| row.against(bare));
        table.row(vec![
            row.name.clone(),
            s.requests.to_string(),
            s.errors.to_string(),
            format!("{:.0}", s.throughput()),
            times(rate_ratio),
            ms(s.p(50.0)),
            ms(s.p(99.0)),
            cpu.map_or("-".into(), |c| format!("{:.0}", c.as_secs_f64() * 1e6)),
            times(cpu_ratio),
            answered_from(s),
        ]);
    }
    table
}

/// Each row's throughput and CPU per request as multiples of the bare worker's, as bars.
fn ratio_plot(rows: &[Row]) -> Plot {
    let ratios: Vec<(Option<f64>, Option<f64>)> = match rows.first() {
        Some(bare) => rows.iter().map(|row| row.against(bare)).collect(),
        None => Vec::new(),
    };
    Plot {
        title: "Against the bare worker (1 = the same)".into(),
        y_label: "× bare".into(),
        kind: plot::Kind::Bars {
            categories: rows.iter().map(|r| r.name.clone()).collect(),
        },
        series: vec![
            Series::bars("req/s", ratios.iter().map(|r| r.0.unwrap_or(0.0))),
            Series::bars("CPU per request", ratios.iter().map(|r| r.1.unwrap_or(0.0))),
        ],
    }
}

/// The cache outcomes of the served requests, largest first, as shares (`hit memory 100%`).
fn answered_from(s: &Summary) -> String {
    let served = s.requests - s.errors;
    let mut labels: Vec<(&str, u64)> = s.cache.labels().map(|l| (l, s.cache.get(l))).collect();
    labels.sort_unstable_by_key(|&(_, n)| std::cmp::Reverse(n));
    labels
        .iter()
        .map(|(label, n)| format!("{label} {}", percent(*n as f64 / served.max(1) as f64)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each goal: the row it holds, what it compares, and whether this run met it.
fn goals_table(rows: &[Row]) -> Table {
    let mut table = Table::new(["goal", "measured", "met"]);
    let against = |name: &str| {
        let row = rows.iter().find(|r| r.name == name)?;
        Some(row.against(rows.first()?))
    };
    let throughput = |name: &str| against(name).and_then(|(rate, _)| rate);
    let cpu = |name: &str| against(name).and_then(|(_, cpu)| cpu);
    let mut goal = |text: String, measured: Option<f64>, met: fn(f64) -> bool| {
        table.row(vec![
            text,
            times(measured),
            match measured {
                Some(m) if met(m) => "yes".into(),
                Some(_) => "**no**".into(),
                None => "-".into(),
            },
        ]);
    };
    for name in ["memory hit", "hashed asset (CSS)", "front page HTML"] {
        let measured = throughput(name);
        goal(
            format!("{name}: throughput ≥ {GOAL_THROUGHPUT}× bare"),
            measured,
            |m| m >= GOAL_THROUGHPUT,
        );
    }
    goal(
        format!("memory hit: CPU per request ≤ {GOAL_CPU}× bare"),
        cpu("memory hit"),
        |m| m <= GOAL_CPU,
    );
    goal(
        format!("memory hit, limited route: throughput ≥ {GOAL_LIMITED_THROUGHPUT}× bare"),
        throughput("memory hit, limited route"),
        |m| m >= GOAL_LIMITED_THROUGHPUT,
    );
    table
}

fn start_table(bare: &Started, edge: &Started) -> Table {
    let mut table = Table::new([
        "worker",
        "spawn → ready ms",
        "first answer ms",
        "total vs bare",
    ]);
    let total = |s: &Started| (s.ready_after + s.first_answer).as_secs_f64();
    for (name, s) in [("bare workers-rs", bare), ("edge", edge)] {
        table.row(vec![
            name.into(),
            format!("{:.0}", s.ready_after.as_secs_f64() * 1e3),
            format!("{:.1}", s.first_answer.as_secs_f64() * 1e3),
            crate::report::ratio(Some(total(s)), Some(total(bare))),
        ]);
    }
    table
}

fn size_table(root: &std::path::Path) -> Result<Table, String> {
    let mut table = Table::new(["worker", "wasm bytes", "gzip bytes", "gzip vs bare"]);
    let bare = sizes(&root.join("bench/bare/build/index_bg.wasm"))?;
    let edge = sizes(&root.join("build/index_bg.wasm"))?;
    for (name, (raw, gz)) in [("bare workers-rs", bare), ("edge", edge)] {
        table.row(vec![
            name.into(),
            raw.to_string(),
            gz.to_string(),
            crate::report::ratio(Some(gz as f64), Some(bare.1 as f64)),
        ]);
    }
    Ok(table)
}

/// A file's size, and gzipped (`gzip -6`).
fn sizes(path: &std::path::Path) -> Result<(u64, u64), String> {
    let raw = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let out = std::process::Command::new("gzip")
        .args(["-6", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip {}: {}", path.display(), out.status));
    }
    Ok((raw, out.stdout.len() as u64))
}
