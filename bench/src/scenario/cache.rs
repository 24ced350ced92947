//! The cache tiering scenario: a seeded Zipf sequence against the origin alone (baseline),
//! through a fresh edge, and through a fresh edge with a small memory tier; then stampedes on
//! cold keys. Admission is off ([`NO_ADMISSION`]), so only the cache is measured.

use std::sync::Arc;

use super::{Bench, NO_ADMISSION, step};
use crate::cache_status;
use crate::load::{self, Request};
use crate::plot::{Kind, Plot, Series};
use crate::report::{Run, Section, Table, latency_table, ms, ratio_table, share};
use crate::stats::{Summary, Tally};

/// The product every stampede round asks for, each time with a fresh query (a fresh cache key).
const STAMPEDE_PRODUCT: u32 = 777;

/// What to run.
pub struct Plan {
    /// The measured sequence.
    pub requests: Arc<[Request]>,
    /// Says what the sequence is (the section's first line).
    pub workload: String,
    /// Distinct keys in the sequence: the cold misses any cache must take once.
    pub distinct: usize,
    /// Concurrent requests per stampede round, and rounds.
    pub stampede: usize,
    pub stampede_rounds: usize,
    /// `CACHE_MEMORY_BYTES` of the memory-pressure run; `None` skips it.
    pub pressure_memory_bytes: Option<u64>,
}

/// One stampede round.
struct Stampede {
    path: String,
    summary: Summary,
}

pub fn run(bench: &Bench, plan: &Plan) -> Result<Section, String> {
    let name = "baseline: origin direct";
    let direct = bench.direct_url();
    step(&format!("{name}: {direct}"));
    let summary = bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &direct).await;
        let samples =
            load::closed_loop(&client, &direct, plan.requests.clone(), bench.shape(name)).await;
        Ok(samples.summary())
    })?;
    let baseline = Run {
        name: name.into(),
        summary,
    };

    let name = "edge (default memory tier)";
    let (summary, stampedes) = edge(bench, plan, name, None, plan.stampede_rounds)?;
    let mut edges = vec![Run {
        name: name.into(),
        summary,
    }];
    if let Some(bytes) = plan.pressure_memory_bytes {
        let name = format!("edge, CACHE_MEMORY_BYTES={bytes}");
        let (summary, _) = edge(bench, plan, &name, Some(bytes), 0)?;
        edges.push(Run { name, summary });
    }
    Ok(section(plan, &baseline, &edges, &stampedes))
}

/// The sequence through a fresh edge (empty caches), then `rounds` stampedes, each on a new
/// cold key.
fn edge(
    bench: &Bench,
    plan: &Plan,
    name: &str,
    memory_bytes: Option<u64>,
    rounds: usize,
) -> Result<(Summary, Vec<Stampede>), String> {
    let mut vars = vec![("ADMISSION", NO_ADMISSION.to_owned())];
    if let Some(bytes) = memory_bytes {
        vars.push(("CACHE_MEMORY_BYTES", bytes.to_string()));
    }
    let edge = bench.start_edge(&bench.proxied_url(), &vars)?;
    step(&format!("{name}: {}", edge.url));
    bench.block_on(async {
        let client = load::client()?;
        bench.warm_up(&client, &edge.url).await;
        let run = load::closed_loop(&client, &edge.url, plan.requests.clone(), bench.shape(name));
        let summary = bench.counted(run).await;
        let mut stampedes = Vec::new();
        for round in 1..=rounds {
            let path = format!("/api/products/{STAMPEDE_PRODUCT}?bench=stampede-{round}");
            step(&format!(
                "stampede {round}/{rounds}: {} concurrent GET {}{path}",
                plan.stampede, edge.url
            ));
            let summary = bench
                .counted(load::stampede(&client, &edge.url, &path, plan.stampede))
                .await;
            stampedes.push(Stampede { path, summary });
        }
        Ok((summary, stampedes))
    })
}

fn section(plan: &Plan, baseline: &Run, edges: &[Run], stampedes: &[Stampede]) -> Section {
    let mut tables = vec![
        (
            String::new(),
            latency_table(std::iter::once(baseline).chain(edges)),
        ),
        (
            "Edge / baseline, same run (latency: below 1 is faster than the origin alone; \
             throughput: above 1 is more requests per second)"
                .to_owned(),
            ratio_table(edges.iter().map(|e| (e, &baseline.summary)), false),
        ),
        (
            "Edge answers by `Cache-Status` (share of all requests)".to_owned(),
            cache_table(edges),
        ),
    ];
    if !stampedes.is_empty() {
        tables.push((
            "Stampede: concurrent requests for one cold key, released together (target: 1 \
             reaches the origin)"
                .to_owned(),
            stampede_table(stampedes),
        ));
    }
    Section {
        plots: vec![outcome_plot(edges)],
        title: "Cache tiering".into(),
        intro: vec![
            plan.workload.clone(),
            format!(
                "Admission off (`ADMISSION={NO_ADMISSION}`), so only the cache is measured. \
                 Reached origin: GETs counted by a TCP proxy between edge and origin. Offload = \
                 1 - reached origin / requests. With empty caches at least the {} distinct keys \
                 must reach the origin once.",
                plan.distinct
            ),
        ],
        tables,
    }
}

/// The `Cache-Status` table as grouped bars: each outcome's share of the requests, per edge.
fn outcome_plot(edges: &[Run]) -> Plot {
    let columns = cache_status::columns(edges.iter().map(|r| &r.summary.cache));
    let series = edges
        .iter()
        .map(|run| {
            let of_all = |c: &String| {
                100.0 * run.summary.cache.get(c) as f64 / run.summary.requests.max(1) as f64
            };
            Series::bars(run.name.clone(), columns.iter().map(of_all))
        })
        .collect();
    Plot {
        title: "Answers by Cache-Status, share of requests".into(),
        y_label: "% of requests".into(),
        kind: Kind::Bars {
            categories: columns,
        },
        series,
    }
}

fn cache_table(edges: &[Run]) -> Table {
    let columns = cache_status::columns(edges.iter().map(|r| &r.summary.cache));
    let mut table = Table::new(std::iter::once("run").chain(columns.iter().map(String::as_str)));
    for run in edges {
        let cells = columns
            .iter()
            .map(|c| share(run.summary.cache.get(c), run.summary.requests));
        table.row(std::iter::once(run.name.clone()).chain(cells).collect());
    }
    table
}

fn stampede_table(stampedes: &[Stampede]) -> Table {
    let mut table = Table::new([
        "key",
        "requests",
        "errors",
        "reached origin",
        "p50 ms",
        "p99 ms",
        "Cache-Status",
    ])
    .left(6);
    for st in stampedes {
        let s = &st.summary;
        table.row(vec![
            format!("`{}`", st.path),
            s.requests.to_string(),
            s.errors.to_string(),
            s.origin_requests.map_or("-".into(), |n| n.to_string()),
            ms(s.p(50.0)),
            ms(s.p(99.0)),
            breakdown(&s.cache),
        ]);
    }
    table
}

fn breakdown(tally: &Tally) -> String {
    if tally.is_empty() {
        return "-".into();
    }
    cache_status::columns([tally])
        .iter()
        .filter(|c| tally.get(c) > 0)
        .map(|c| format!("{c}: {}", tally.get(c)))
        .collect::<Vec<_>>()
        .join(", ")
}
