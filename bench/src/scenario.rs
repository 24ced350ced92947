//! The phases of a bench run against one origin: the baseline, and edge runs (each on a fresh
//! Miniflare) with optional stampedes. Every phase can be interrupted with Ctrl-C, which unwinds
//! through the normal return path so the `Drop`s stop the edge and the origin.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::edge::Edge;
use crate::load::{self, Shape};
use crate::origin::Origin;
use crate::report::Stampede;
use crate::stats::Summary;

/// The product every stampede round asks for, each time with a fresh query (a fresh cache key).
const STAMPEDE_PRODUCT: u32 = 777;

pub struct Bench {
    /// The load generator's runtime (the origin has its own).
    rt: Runtime,
    origin: Origin,
    root: PathBuf,
    /// The measured sequence, and the untimed warm-up sequence.
    paths: Arc<[String]>,
    warm: Arc<[String]>,
    concurrency: usize,
    verbose: bool,
}

/// What one edge run measured.
pub struct EdgeRun {
    pub summary: Summary,
    pub stampedes: Vec<Stampede>,
    /// Versions from Miniflare's READY line.
    pub versions: String,
}

impl Bench {
    pub fn start(
        root: PathBuf,
        paths: Arc<[String]>,
        warm: Arc<[String]>,
        concurrency: usize,
        verbose: bool,
    ) -> Result<Self, String> {
        step("starting the origin (in-process, temp SQLite) behind a counting proxy");
        let origin = Origin::start()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("load")
            .enable_all()
            .build()
            .map_err(|e| format!("load runtime: {e}"))?;
        Ok(Self {
            rt,
            origin,
            root,
            paths,
            warm,
            concurrency,
            verbose,
        })
    }

    /// The sequence against the origin directly.
    pub fn baseline(&self, name: &str) -> Result<Summary, String> {
        let direct = format!("http://{}", self.origin.direct);
        step(&format!("{name}: {direct}"));
        self.rt.block_on(interruptible(async {
            let client = load::client()?;
            self.warm_up(&client, &direct).await;
            Ok(load::run(&client, &direct, self.paths.clone(), self.shape(name)).await)
        }))
    }

    /// The sequence through a fresh edge (empty caches), then `stampede_rounds` stampedes of
    /// `stampede` concurrent requests, each on a new cold key.
    pub fn edge(
        &self,
        name: &str,
        memory_bytes: Option<u64>,
        stampede: usize,
        stampede_rounds: usize,
    ) -> Result<EdgeRun, String> {
        let origin_url = format!("http://{}", self.origin.proxied);
        let memory = memory_bytes.map_or(String::new(), |b| format!(", CACHE_MEMORY_BYTES={b}"));
        step(&format!(
            "starting a fresh edge (workerd via Miniflare), ORIGIN_URL={origin_url}{memory}"
        ));
        let edge = Edge::start(&self.root, &origin_url, memory_bytes, self.verbose)?;
        step(&format!("{name}: {}", edge.url));
        self.rt.block_on(interruptible(async {
            let client = load::client()?;
            self.warm_up(&client, &edge.url).await;
            let run = load::run(&client, &edge.url, self.paths.clone(), self.shape(name));
            let summary = self.counted(run).await;
            let mut stampedes = Vec::new();
            for round in 1..=stampede_rounds {
                let path = format!("/api/products/{STAMPEDE_PRODUCT}?bench=stampede-{round}");
                step(&format!(
                    "stampede {round}/{stampede_rounds}: {stampede} concurrent GET {}{path}",
                    edge.url
                ));
                let summary = self
                    .counted(load::stampede(&client, &edge.url, &path, stampede))
                    .await;
                stampedes.push(Stampede { path, summary });
            }
            Ok(EdgeRun {
                summary,
                stampedes,
                versions: edge.versions.clone(),
            })
        }))
    }

    fn shape<'a>(&self, label: &'a str) -> Shape<'a> {
        Shape {
            concurrency: self.concurrency,
            label,
            bypass: false,
            progress: true,
        }
    }

    /// Untimed requests with the cache bypassed: connections open, the wasm is instantiated
    /// and the origin's database pages are warm before the clock starts, and no cache fills.
    async fn warm_up(&self, client: &reqwest::Client, base: &str) {
        let shape = Shape {
            bypass: true,
            progress: false,
            ..self.shape("warm-up")
        };
        let s = load::run(client, base, self.warm.clone(), shape).await;
        if s.errors > 0 {
            eprintln!("    warm-up: {} of {} failed", s.errors, s.requests);
        }
    }

    /// Runs `work` and records how many GETs reached the origin meanwhile.
    async fn counted(&self, work: impl Future<Output = Summary>) -> Summary {
        let before = self.origin.proxy.gets();
        let mut summary = work.await;
        summary.origin_requests = Some(self.origin.proxy.gets() - before);
        summary
    }
}

/// A phase line on stderr.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs `work` unless Ctrl-C comes first. (The Node process is in its own process group, so
/// the terminal's Ctrl-C reaches it only through [`Edge`]'s `Drop`.)
async fn interruptible<T>(work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    }
}
