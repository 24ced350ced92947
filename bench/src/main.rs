//! `breakwater-bench`: the benchmark behind `make bench`.
//!
//! One run, side by side, against one in-process origin and fresh edges under workerd (via the
//! Miniflare API): the cache tiers (a seeded Zipf sequence against the origin alone, through the
//! edge, through an edge with a small memory tier, then stampedes), the rate limiter's added
//! latency (the same cached reads with and without a limited route), surges and a brownout
//! against a slowed origin with admission control on, and idempotency (the same orders with and without the
//! edge's records, then a retry storm with faults between edge and origin, checked for duplicate
//! orders in the origin's database), write-behind (views queued by the edge and answered `202`
//! against the same write done synchronously, with the drain and the database transactions per
//! 1,000 events), failover (a pool of two origins with one killed mid-run and restarted, against
//! a single origin killed alike: error rate and p99 before, during and after); and the origin
//! alone, no edge, on SQLite, on Postgres and on Postgres with a streaming replica (product reads
//! and order writes; needs the primary and replica of `scripts/postgres.sh`); and the hot path
//! (CPU per request, cold start and wasm size against a bare workers-rs worker). Prints markdown
//! tables to stdout, progress to stderr, and writes the same report with charts (latency over
//! time, tier ratios, the hot path against the bare worker) as one HTML page, [`HTML_REPORT`].

mod answer;
mod cache_status;
mod cli;
mod edge;
mod html;
mod killable;
mod load;
mod origin;
mod plot;
mod postgres;
mod proxy;
mod report;
mod scenario;
mod size;
mod stats;
mod throttle;
mod workload;
mod zipf;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::cli::{Args, Scenario};
use crate::load::Request;
use crate::postgres::Servers;
use crate::proxy::Faults;
use crate::report::Report;
use crate::scenario::{
    Bench, cache, chaos, failover, hotpath, idempotency, limiter, origin as origin_only, step,
    surge, writebehind,
};
use crate::throttle::Throttle;

/// Mixed into the seed for warm-up paths, so warm-up never replays the measured sequence.
const WARMUP_SEED: u64 = 0x5741_524d;
/// The unloaded surge rate as a share of the slowed origin's capacity, unless set.
const UNLOADED_UTILISATION: f64 = 0.75;

fn main() -> ExitCode {
    scenario::chaos::serve_origin_if_asked();
    let args = Args::parse();
    match bench(&args) {
        Ok(report) if report.failed.is_empty() => {
            print!("{}", report.render());
            write_html(&report);
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.render());
            write_html(&report);
            eprintln!("bench: goals missed: {}", report.failed.join("; "));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the HTML report (the tables and their charts) is written.
const HTML_REPORT: &str = "target/bench/report.html";

/// Writes the report as one self-contained HTML page beside the markdown on stdout.
fn write_html(report: &Report) {
    let path = repo_root().join(HTML_REPORT);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, html::render(report)));
    match written {
        Ok(()) => eprintln!("bench: the report with charts: {}", path.display()),
        Err(e) => eprintln!("bench: could not write {}: {e}", path.display()),
    }
}

fn bench(args: &Args) -> Result<Report, String> {
    let root = repo_root();
    let edges = args.runs_edges();
    if edges && !root.join("build/index.js").exists() {
        return Err("build/index.js is missing: run make bench (it builds the edge)".into());
    }
    let spec = workload::Spec {
        products: args.keys as usize,
        list_pages: args.list_pages,
        s: args.zipf_s,
        requests: args.requests(),
        seed: args.seed,
    };
    let paths: Arc<[String]> = workload::paths(&spec).into();
    let warm: Arc<[Request]> = workload::paths(&workload::Spec {
        requests: args.warmup(),
        seed: spec.seed ^ WARMUP_SEED,
        ..spec.clone()
    })
    .into_iter()
    .map(Request::get)
    .collect();
    let distinct = workload::distinct(&paths);
    let warm_len = warm.len();
    let describe = |paths: &[String]| {
        format!(
            "Workload: Zipf s={} over {} keys ({} products, {} list pages), {} requests ({} \
             distinct), {} in flight, seed {}; {} warm-up requests per target (cache bypassed).",
            spec.s,
            spec.products + spec.list_pages,
            spec.products,
            spec.list_pages,
            paths.len(),
            workload::distinct(paths),
            args.concurrency,
            spec.seed,
            warm_len,
        )
    };
    let workload = describe(&paths);
    if edges {
        step(&workload);
    }

    // Checked before anything runs, so a bad flag fails at once rather than minutes in.
    let idempotency = args
        .runs(Scenario::Idempotency)
        .then(|| idempotency_plan(args))
        .transpose()?;
    let writebehind = args
        .runs(Scenario::WriteBehind)
        .then(|| writebehind_plan(args, &spec, &root))
        .transpose()?;
    let origin_plan = args
        .runs(Scenario::Origin)
        .then(|| origin_plan(args, &spec))
        .transpose()?;

    let mut sections = Vec::new();
    let mut failed = Vec::new();
    let mut took = Vec::new();
    let mut started = Instant::now();
    let mut lap = |name: &str| {
        took.push(format!("{name} {:.0} s", started.elapsed().as_secs_f64()));
        started = Instant::now();
    };
    let mut versions = "no edge started".to_owned();
    if edges {
        let bench = Bench::start(root, warm, usize::from(args.concurrency), args.verbose)?;
        if args.runs(Scenario::Cache) {
            let plan = cache::Plan {
                requests: paths.iter().map(Request::get).collect(),
                workload: workload.clone(),
                distinct,
                stampede: usize::from(args.stampede),
                stampede_rounds: args.stampede_rounds,
                pressure_memory_bytes: Some(args.pressure_memory_bytes).filter(|&b| b > 0),
            };
            sections.push(cache::run(&bench, &plan)?);
            lap("cache");
        }
        if args.runs(Scenario::Limiter) {
            let paths = &paths[..args.limiter_requests()];
            let plan = limiter::Plan {
                paths: paths.into(),
                principals: args.limiter_principals,
                workload: describe(paths),
            };
            sections.push(limiter::run(&bench, &plan)?);
            lap("limiter");
        }
        if args.runs(Scenario::Surge) {
            let throttle = Throttle {
                delay: Duration::from_millis(args.origin_delay_ms),
                concurrency: args.origin_concurrency as usize,
            };
            let rate = args
                .surge_rate
                .unwrap_or((throttle.capacity() * UNLOADED_UTILISATION).round());
            if !(rate > 0.0 && rate.is_finite()) {
                return Err("--surge-rate must be positive".into());
            }
            let base = surge::Plan {
                throttle,
                rate,
                profile: surge::Profile::Surge { factor: 1.0 },
                phase: Duration::from_secs(args.surge_seconds()),
                principals: args.surge_principals as usize,
                concurrency: None,
                products: spec.products,
                list_pages: spec.list_pages,
                seed: args.seed,
            };
            let mut verdicts = Vec::new();
            for &profile in &args.surge_profiles {
                for setting in &args.surge_concurrency {
                    let plan = surge::Plan {
                        profile,
                        concurrency: (setting != "shipped").then(|| setting.clone()),
                        ..base.clone()
                    };
                    let (section, goals) = surge::run(&bench, &plan)?;
                    sections.push(section);
                    verdicts.push(goals);
                }
            }
            sections.push(surge::summary(&verdicts));
            lap("surge");
        }
        if let Some(plan) = &idempotency {
            sections.push(idempotency::run(&bench, plan)?);
            lap("idempotency");
        }
        if let Some(plan) = &writebehind {
            sections.push(writebehind::run(&bench, plan)?);
            lap("writebehind");
        }
        if args.runs(Scenario::Failover) {
            let (before, during, after) = args.failover_seconds();
            let plan = failover::Plan {
                phases: failover::Phases {
                    before: Duration::from_secs(before),
                    during: Duration::from_secs(during),
                    after: Duration::from_secs(after),
                },
                requests: paths.iter().map(Request::get).collect(),
                workload: format!(
                    "Workload: the Zipf sequence above (`GET /api/products/{{id}}` and \
                     `?page=k`), sent round and round, {} in flight, for a fixed time per phase.",
                    args.concurrency
                ),
            };
            sections.push(failover::run(&bench, &plan)?);
            lap("failover");
        }
        if args.runs(Scenario::Hotpath) {
            let plan = hotpath::Plan {
                row: Duration::from_secs(args.hotpath_seconds()),
                only: args.hotpath_rows.clone(),
            };
            sections.push(hotpath::run(&bench, &plan)?);
            lap("hotpath");
        }
        if args.runs(Scenario::Chaos) {
            let plan = chaos::Plan {
                keys: args.chaos_keys(),
                kills: args.chaos_kills(),
                keys_in_flight: usize::from(args.concurrency),
                seed: args.seed,
            };
            let (section, passed) = chaos::run(&bench, &plan)?;
            if !passed {
                failed.push(section.title.clone());
            }
            sections.push(section);
            lap("chaos");
        }
        if let Some(v) = bench.versions() {
            v.clone_into(&mut versions);
        }
    }
    if let Some(plan) = &origin_plan {
        sections.push(origin_only::run(plan)?);
        lap("origin");
    }

    let mut notes = Vec::new();
    if edges {
        notes.push(
            "Edge under workerd via the Miniflare API (not wrangler dev); origin in-process on \
             SQLite; same run baseline."
                .to_owned(),
        );
    }
    notes.push(format!(
        "Machine: {} CPUs, {}/{}; bench built {}; {versions}. Load generator, origin{} share \
         the machine, so compare the ratios, not the absolute figures. Scenario wall times: {}.",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::env::consts::OS,
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        match (edges, origin_plan.is_some()) {
            (true, true) => ", workerd and Postgres",
            (true, false) => " and workerd",
            (false, _) => " and Postgres",
        },
        took.join(", "),
    ));
    Ok(Report {
        sections,
        notes,
        failed,
    })
}

/// The origin scenario's plan from the flags: the Zipf product reads (product pages only) and
/// the Postgres servers, which must be configured.
fn origin_plan(args: &Args, spec: &workload::Spec) -> Result<origin_only::Plan, String> {
    let servers = Servers::from_env()?;
    let spec = workload::Spec {
        list_pages: 0,
        requests: args.origin_reads(),
        ..spec.clone()
    };
    let reads: Arc<[Request]> = workload::paths(&spec)
        .into_iter()
        .map(Request::get)
        .collect();
    let warm_reads: Arc<[Request]> = workload::paths(&workload::Spec {
        requests: args.warmup(),
        seed: spec.seed ^ WARMUP_SEED,
        ..spec.clone()
    })
    .into_iter()
    .map(Request::get)
    .collect();
    let paths: Vec<String> = reads.iter().map(|r| r.path.clone()).collect();
    Ok(origin_only::Plan {
        workload: format!(
            "{} `GET /api/products/{{id}}`, Zipf s={} over ids 1..={} ({} distinct), seed {}.",
            reads.len(),
            spec.s,
            spec.products,
            workload::distinct(&paths),
            spec.seed,
        ),
        reads,
        warm_reads,
        writes: args.origin_writes(),
        read_your_writes: args.origin_read_your_writes(),
        synchronous_commit: args.origin_synchronous_commit,
        warm_writes: args.warmup(),
        products: spec.products,
        concurrency: usize::from(args.concurrency),
        seed: args.seed,
        servers,
    })
}

/// The write-behind scenario's plan from the flags and wrangler.toml's queue batching.
fn writebehind_plan(
    args: &Args,
    spec: &workload::Spec,
    root: &Path,
) -> Result<writebehind::Plan, String> {
    Ok(writebehind::Plan {
        events: args.writebehind_events(),
        products: spec.products,
        s: spec.s,
        seed: spec.seed,
        warm: 2 * usize::from(args.concurrency),
        drain_deadline: Duration::from_secs(args.writebehind_drain_s),
        batching: writebehind::Batching::read(root)?,
    })
}

/// The idempotency scenario's plan from the flags.
fn idempotency_plan(args: &Args) -> Result<idempotency::Plan, String> {
    let faults = Faults {
        refuse: args.storm_refuse,
        drop_response: args.storm_drop,
        seed: args.seed,
    };
    faults.validate()?;
    if args.storm_lease_ms <= args.storm_origin_timeout_ms {
        return Err(format!(
            "--storm-lease-ms ({}) must exceed --storm-origin-timeout-ms ({})",
            args.storm_lease_ms, args.storm_origin_timeout_ms
        ));
    }
    Ok(idempotency::Plan {
        serial: args.idempotency_serial(),
        loaded: args.idempotency_requests(),
        products: args.keys as usize,
        seed: args.seed,
        storm: idempotency::Storm {
            keys: args.storm_keys(),
            client: idempotency::Client {
                attempts: usize::from(args.storm_attempts),
                concurrent: usize::from(args.storm_concurrent),
                deadline: Duration::from_secs(args.storm_deadline_s),
                keys_in_flight: usize::from(args.concurrency),
                seed: args.seed,
            },
            faults,
            origin_timeout_ms: args.storm_origin_timeout_ms,
            lease_ms: args.storm_lease_ms,
        },
    })
}

/// The repository root: this crate lives in `bench/`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
