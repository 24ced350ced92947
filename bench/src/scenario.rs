//! What every scenario shares: one origin (with its counting proxy) and the load generator's
//! runtime for the whole bench, fresh edges started with the vars a scenario overrides, warm-up,
//! and counting what reached the origin. Every phase can be interrupted with Ctrl-C, which
//! unwinds through the normal return path so the `Drop`s stop the edges and the origin.

pub mod cache;
pub mod chaos;
pub mod failover;
pub mod hotpath;
pub mod idempotency;
pub mod limiter;
pub mod origin;
pub mod surge;
pub mod writebehind;

use std::cell::OnceCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::edge::Edge;
use crate::killable::KillableRelay;
use crate::load::{self, Request, Shape};
use crate::origin::{EventTotals, Origin};
use crate::proxy::{CountingProxy, Faults};
use crate::stats::{Samples, Summary};
use crate::throttle::{Throttle, ThrottledProxy};

/// `ADMISSION` without routes: nothing is limited or shed. The cache scenario runs with it, so
/// only the cache tiers are measured (wrangler.toml's 20 requests per second per client on
/// `/api/products` would answer most of a benchmark with `429`).
pub const NO_ADMISSION: &str = r#"{"routes": []}"#;

/// The request header carrying an API key, in every `ADMISSION` the bench sets
/// (wrangler.toml's `api_key_header`).
pub const API_KEY_HEADER: &str = "x-api-key";

pub struct Bench {
    /// The load generator's runtime (the origin has its own).
    rt: Runtime,
    origin: Origin,
    root: PathBuf,
    /// The untimed warm-up sequence.
    warm: Arc<[Request]>,
    concurrency: usize,
    verbose: bool,
    /// Versions from the first Miniflare READY line.
    versions: OnceCell<String>,
}

impl Bench {
    pub fn start(
        root: PathBuf,
        warm: Arc<[Request]>,
        concurrency: usize,
        verbose: bool,
    ) -> Result<Self, String> {
        step("starting the origin (in-process, temp SQLite) behind a counting proxy");
        let origin = Origin::start()?;
        let rt = load_runtime()?;
        Ok(Self {
            rt,
            origin,
            root,
            warm,
            concurrency,
            verbose,
            versions: OnceCell::new(),
        })
    }

    /// The origin itself (the baseline's target).
    pub fn direct_url(&self) -> String {
        format!("http://{}", self.origin.direct)
    }

    /// The counting proxy in front of the origin (an edge's `ORIGIN_URL`).
    pub fn proxied_url(&self) -> String {
        format!("http://{}", self.origin.proxied)
    }

    /// A relay that slows the origin to `throttle`, and its address.
    pub fn throttled(&self, throttle: Throttle) -> Result<(ThrottledProxy, SocketAddr), String> {
        self.origin.throttled(throttle)
    }

    /// A counting proxy that injects `faults` into POSTs to the origin, and its address.
    pub fn faulty(&self, faults: Faults) -> Result<(CountingProxy, SocketAddr), String> {
        self.origin.faulty(faults)
    }

    /// A relay that can kill and restart the origin as a crash would, and its address.
    pub fn killable(&self) -> Result<(KillableRelay, SocketAddr), String> {
        self.origin.killable()
    }

    /// How many orders carry each of `keys`, in the origin's database.
    pub fn orders_with_keys(&self, keys: &[String]) -> Result<Vec<i64>, String> {
        self.origin.orders_with_keys(keys)
    }

    /// The origin's write-behind tables' totals now.
    pub fn event_totals(&self) -> Result<EventTotals, String> {
        self.origin.event_totals()
    }

    /// Waits until the origin has counted `views` views in all, or `deadline` after `since`:
    /// the totals last read and, if reached, when (after `since`).
    pub fn wait_for_views(
        &self,
        views: i64,
        since: Instant,
        deadline: Duration,
    ) -> Result<(EventTotals, Option<Duration>), String> {
        self.origin.wait_for_views(views, since, deadline)
    }

    /// How long after the edge accepted it each event accepted at or after `since_ms` (Unix ms)
    /// was counted by the origin.
    pub fn count_delays(&self, since_ms: i64) -> Result<Vec<Duration>, String> {
        self.origin.count_delays(since_ms)
    }

    /// Requests (GETs and POSTs) that have reached the origin through the counting proxy.
    pub fn origin_requests(&self) -> u64 {
        let c = self.origin.proxy.counts();
        c.gets + c.posts
    }

    /// Versions of Miniflare, workerd and Node, once an edge has started.
    /// The repository's root.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn versions(&self) -> Option<&str> {
        self.versions.get().map(String::as_str)
    }

    /// A fresh edge (empty caches and Durable Objects) in front of `origin_url`, with `vars`
    /// overriding wrangler.toml's.
    pub fn start_edge(&self, origin_url: &str, vars: &[(&str, String)]) -> Result<Edge, String> {
        self.start_edge_with(origin_url, vars, false)
    }

    /// [`Bench::start_edge`], and with `scheduled` the edge also answers
    /// [`crate::edge::SCHEDULED_PATH`] by running the worker's cron handler, so the bench can
    /// act as the cron trigger.
    pub fn start_edge_with(
        &self,
        origin_url: &str,
        vars: &[(&str, String)],
        scheduled: bool,
    ) -> Result<Edge, String> {
        let names: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
        step(&format!(
            "starting a fresh edge (workerd via Miniflare), ORIGIN_URL={origin_url}, \
             overriding {}",
            if names.is_empty() {
                "nothing".into()
            } else {
                names.join(", ")
            }
        ));
        let edge = Edge::start(&self.root, origin_url, vars, scheduled, self.verbose)?;
        let _ = self.versions.set(edge.versions.clone());
        Ok(edge)
    }

    /// Runs `work` on the load generator's runtime unless Ctrl-C comes first. (The Node process
    /// is in its own process group, so the terminal's Ctrl-C reaches it only through [`Edge`]'s
    /// `Drop`.)
    pub fn block_on<T>(&self, work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
        block_on(&self.rt, work)
    }

    /// Untimed warm-up requests per target.
    pub fn warm_len(&self) -> usize {
        self.warm.len()
    }

    /// Requests in flight in closed-loop runs.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// A closed-loop run at the bench's concurrency, with progress lines.
    pub fn shape<'a>(&self, label: &'a str) -> Shape<'a> {
        Shape {
            concurrency: self.concurrency,
            label,
            bypass: false,
            progress: true,
        }
    }

    /// Untimed requests with the cache bypassed: connections open, the wasm is instantiated
    /// and the origin's database pages are warm before the clock starts, and no cache fills.
    pub async fn warm_up(&self, client: &reqwest::Client, base: &str) {
        let shape = Shape {
            bypass: true,
            progress: false,
            ..self.shape("warm-up")
        };
        load::closed_loop(client, base, self.warm.clone(), shape).await;
    }

    /// Runs `work` and summarises it with how many requests (GETs and POSTs) reached the origin
    /// through the counting proxy meanwhile.
    pub async fn counted(&self, work: impl Future<Output = Samples>) -> Summary {
        let before = self.origin_requests();
        let mut summary = work.await.summary();
        summary.origin_requests = Some(self.origin_requests() - before);
        summary
    }
}

/// A runtime for the load generator, apart from any origin's.
pub fn load_runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("load")
        .enable_all()
        .build()
        .map_err(|e| format!("load runtime: {e}"))
}

/// Runs `work` on `rt` unless Ctrl-C comes first.
pub fn block_on<T>(
    rt: &Runtime,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    rt.block_on(async {
        tokio::select! {
            result = work => result,
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        }
    })
}

/// A phase line on stderr.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}
