//! The load generator: a fixed request sequence at fixed concurrency (closed loop), and the
//! stampede (many concurrent requests for one cold key released together).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use crate::cache_status::{self, Tally};
use crate::stats::Summary;

/// Every request's deadline (connect, send, whole body); a slower one counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Failures printed per run; the rest are only counted.
const ERRORS_SHOWN: usize = 3;

/// A client for one target. HTTP/1.1 keep-alive, no proxy from the environment.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Header that makes the edge bypass its cache (credentials), for warm-up requests that must
/// not fill it.
const BYPASS: (&str, &str) = ("authorization", "Bearer bench-warm-up");

/// How one run is sent.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    pub concurrency: usize,
    /// For progress lines on stderr.
    pub label: &'a str,
    /// Send credentials, so the edge forwards without caching (warm-up).
    pub bypass: bool,
    /// Print a line on stderr at every tenth of the run.
    pub progress: bool,
}

/// Sends every path of `paths` to `base` with `shape.concurrency` requests in flight, each
/// worker taking the next path as soon as its previous answer is read to the end.
pub async fn run(
    client: &reqwest::Client,
    base: &str,
    paths: Arc<[String]>,
    shape: Shape<'_>,
) -> Summary {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let total = paths.len();
    let tenth = if shape.progress {
        (total / 10).max(1)
    } else {
        usize::MAX
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..shape.concurrency.max(1))
        .map(|_| {
            let (client, paths) = (client.clone(), paths.clone());
            let (next, done) = (next.clone(), done.clone());
            let base: Arc<str> = base.into();
            let label: Arc<str> = shape.label.into();
            let bypass = shape.bypass;
            tokio::spawn(async move {
                let mut part = Part::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    part.record(fetch(&client, &format!("{base}{path}"), bypass).await);
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if finished % tenth == 0 {
                        eprintln!("    {label}: {finished}/{total}");
                    }
                }
                part
            })
        })
        .collect();
    let mut whole = Part::default();
    for worker in workers {
        match worker.await {
            Ok(part) => whole.merge(part),
            Err(e) => whole.record(Err(format!("worker task failed: {e}"))),
        }
    }
    whole.into_summary(started.elapsed(), shape.label)
}

/// `n` concurrent GETs of one `path`, released together by a barrier once every task is ready.
pub async fn stampede(client: &reqwest::Client, base: &str, path: &str, n: usize) -> Summary {
    let barrier = Arc::new(Barrier::new(n + 1));
    let url: Arc<str> = format!("{base}{path}").into();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, barrier, url) = (client.clone(), barrier.clone(), url.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                fetch(&client, &url, false).await
            })
        })
        .collect();
    barrier.wait().await;
    let started = Instant::now();
    let mut part = Part::default();
    for task in tasks {
        match task.await {
            Ok(result) => part.record(result),
            Err(e) => part.record(Err(format!("task failed: {e}"))),
        }
    }
    part.into_summary(started.elapsed(), path)
}

/// One answer: latency to the last body byte and its `Cache-Status` outcome, or why it failed.
type Fetched = Result<(Duration, cache_status::Outcome), String>;

async fn fetch(client: &reqwest::Client, url: &str, bypass: bool) -> Fetched {
    let started = Instant::now();
    let mut req = client.get(url);
    if bypass {
        req = req.header(BYPASS.0, BYPASS.1);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let outcome = cache_status::parse(
        resp.headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok()),
    );
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("{url}: body: {e}"))?;
    let latency = started.elapsed();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("{url}: {status}: {text}"));
    }
    Ok((latency, outcome))
}

/// What one worker saw.
#[derive(Default)]
struct Part {
    requests: usize,
    latencies: Vec<Duration>,
    cache: Tally,
    failures: Vec<String>,
    errors: usize,
}

impl Part {
    fn record(&mut self, fetched: Fetched) {
        self.requests += 1;
        match fetched {
            Ok((latency, outcome)) => {
                self.latencies.push(latency);
                self.cache.add(&outcome);
            }
            Err(e) => {
                self.errors += 1;
                if self.failures.len() < ERRORS_SHOWN {
                    self.failures.push(e);
                }
            }
        }
    }

    fn merge(&mut self, other: Part) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        self.cache.merge(&other.cache);
        self.failures.extend(other.failures);
    }

    fn into_summary(mut self, wall: Duration, label: &str) -> Summary {
        for failure in self.failures.iter().take(ERRORS_SHOWN) {
            eprintln!("    {label}: error: {failure}");
        }
        self.latencies.sort_unstable();
        Summary {
            requests: self.requests,
            errors: self.errors,
            wall,
            latencies: self.latencies,
            cache: self.cache,
            origin_requests: None,
        }
    }
}
