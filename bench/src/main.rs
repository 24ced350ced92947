//! `breakwater-bench`: the cache tiering benchmark behind `make bench`.
//!
//! One run, side by side: the same seeded Zipf request sequence against the origin alone
//! (baseline), through the edge under workerd (via the Miniflare API), and through a fresh edge
//! with a small memory tier; then stampedes on cold keys. Prints markdown tables to stdout,
//! progress to stderr.

mod cache_status;
mod cli;
mod edge;
mod load;
mod origin;
mod proxy;
mod report;
mod scenario;
mod stats;
mod workload;
mod zipf;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::cli::Args;
use crate::report::{Report, Run};
use crate::scenario::{Bench, step};

/// Mixed into the seed for warm-up paths, so warm-up never replays the measured sequence.
const WARMUP_SEED: u64 = 0x5741_524d;

fn main() -> ExitCode {
    let args = Args::parse();
    match bench(&args) {
        Ok(report) => {
            print!("{}", report.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> Result<Report, String> {
    let root = repo_root();
    if !root.join("build/index.js").exists() {
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
    let warm: Arc<[String]> = workload::paths(&workload::Spec {
        requests: args.warmup(),
        seed: spec.seed ^ WARMUP_SEED,
        ..spec.clone()
    })
    .into();
    let distinct = workload::distinct(&paths);
    let workload = format!(
        "Workload: Zipf s={} over {} keys ({} products, {} list pages), {} requests ({} distinct), \
         {} in flight, seed {}; {} warm-up requests per target (cache bypassed).",
        spec.s,
        spec.products + spec.list_pages,
        spec.products,
        spec.list_pages,
        spec.requests,
        distinct,
        args.concurrency,
        spec.seed,
        warm.len(),
    );
    step(&workload);

    let concurrency = usize::from(args.concurrency);
    let bench = Bench::start(root, paths, warm, concurrency, args.verbose)?;
    let baseline = Run {
        name: "baseline: origin direct".into(),
        summary: bench.baseline("baseline: origin direct")?,
    };
    let stampede = usize::from(args.stampede);
    let name = "edge (default memory tier)";
    let edge = bench.edge(name, None, stampede, args.stampede_rounds)?;
    let mut edges = vec![Run {
        name: name.into(),
        summary: edge.summary,
    }];
    if args.pressure_memory_bytes > 0 {
        let bytes = args.pressure_memory_bytes;
        let name = format!("edge, CACHE_MEMORY_BYTES={bytes}");
        let pressure = bench.edge(&name, Some(bytes), stampede, 0)?;
        edges.push(Run {
            name,
            summary: pressure.summary,
        });
    }
    drop(bench);

    let notes = vec![
        "Edge under workerd via the Miniflare API (not wrangler dev); origin in-process on \
         SQLite; same run baseline."
            .to_owned(),
        format!(
            "Machine: {} CPUs, {}/{}; bench built {}; {}. Load generator, origin and workerd \
             share the machine, so compare the ratios, not the absolute figures.",
            std::thread::available_parallelism().map_or(0, usize::from),
            std::env::consts::OS,
            std::env::consts::ARCH,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            edge.versions,
        ),
        format!(
            "Reached origin: GETs counted by a TCP proxy between edge and origin. Offload = 1 - \
             reached origin / requests. With empty caches at least the {distinct} distinct keys \
             must reach the origin once."
        ),
    ];
    Ok(Report {
        workload,
        baseline,
        edges,
        stampedes: edge.stampedes,
        notes,
    })
}

/// The repository root: this crate lives in `bench/`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
