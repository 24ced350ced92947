//! The load generator: a request sequence at fixed concurrency (closed loop), the same at fixed
//! send times (open loop: a surge stays a surge however slowly answers come), and the stampede
//! (many concurrent requests for one cold key released together). Requests are GETs, or POSTs
//! with a body (orders); a closed loop can also send pairs, the second made from the first's
//! answer (an order, then a read of it with its consistency token), and a closed loop bounded by
//! time rather than by a count ([`timed`]).

mod timed;

pub use timed::{Timed, closed_loop_until};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

use crate::answer::{self, Answer};
use crate::cache_status;
use crate::stats::{Sample, Samples};

/// Every request's deadline (connect, send, whole body); a slower one counts as no answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of an unexpected answer's body shown on stderr.
const BODY_SHOWN: usize = 200;
/// The origin's answer header naming the database that served a read (`primary`, `replica-1`).
const READ_FROM: &str = "breakwater-read-from";

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

/// One request of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: reqwest::Method,
    /// Path and query.
    pub path: String,
    /// Extra request headers (an API key, say).
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Arc<str>>,
}

impl Request {
    /// A plain GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: reqwest::Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST of a JSON `body` to `path`.
    pub fn post_json(path: impl Into<String>, body: impl Into<Arc<str>>) -> Self {
        Self {
            method: reqwest::Method::POST,
            body: Some(body.into()),
            ..Self::get(path)
        }
        .with_header("content-type", "application/json")
    }

    /// The same request with `name: value` added.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// How a closed-loop run is sent.
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

/// Sends every request of `requests` to `base` with `shape.concurrency` in flight, each worker
/// taking the next request as soon as its previous answer is read to the end.
pub async fn closed_loop(
    client: &reqwest::Client,
    base: &str,
    requests: Arc<[Request]>,
    shape: Shape<'_>,
) -> Samples {
    let (client, base): (_, Arc<str>) = (client.clone(), base.into());
    let n = requests.len();
    let bypass = shape.bypass;
    workers(n, shape, move |i| {
        let (client, base, requests) = (client.clone(), base.clone(), requests.clone());
        async move { fetch(&client, &base, &requests[i], bypass, Instant::now()).await }
    })
    .await
}

/// Like [`closed_loop`], but each unit of work is two requests: `firsts[i]`, untimed, then the
/// request `then` makes of it and of its 2xx answer's header fields, sent at once; the second is
/// the unit's sample. A first request without a 2xx answer is the unit's sample instead, so its
/// failure is counted, not skipped. Throughput counts units.
pub async fn closed_loop_then<F>(
    client: &reqwest::Client,
    base: &str,
    firsts: Arc<[Request]>,
    then: F,
    shape: Shape<'_>,
) -> Samples
where
    F: Fn(&Request, &HeaderMap) -> Request + Send + Sync + 'static,
{
    let (client, base): (_, Arc<str>) = (client.clone(), base.into());
    let then = Arc::new(then);
    let n = firsts.len();
    workers(n, shape, move |i| {
        let (client, base, firsts) = (client.clone(), base.clone(), firsts.clone());
        let then = then.clone();
        async move {
            let first = &firsts[i];
            let (fetched, headers) =
                exchange(&client, &base, first, false, Instant::now(), true).await;
            match headers {
                Some(h) if fetched.0.status.is_some_and(|s| (200..300).contains(&s)) => {
                    fetch(&client, &base, &then(first, &h), false, Instant::now()).await
                }
                _ => fetched,
            }
        }
    })
    .await
}

/// Units `0..n` of work, `shape.concurrency` at once, each worker taking the next unit as soon
/// as its previous one is done.
async fn workers<F, Fut>(n: usize, shape: Shape<'_>, unit: F) -> Samples
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Fetched> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let unit = Arc::new(unit);
    let progress = Progress::new(shape.label, n, shape.progress);
    let started = Instant::now();
    let workers: Vec<JoinHandle<Vec<(usize, Fetched)>>> = (0..shape.concurrency.max(1))
        .map(|_| {
            let (unit, next, progress) = (unit.clone(), next.clone(), progress.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    done.push((i, unit(i).await));
                    progress.tick();
                }
                done
            })
        })
        .collect();
    let mut fetched: Vec<Option<Fetched>> = vec![None; n];
    for worker in workers {
        // A worker that panicked leaves its units unset; they count as no answer below.
        if let Ok(done) = worker.await {
            for (i, f) in done {
                fetched[i] = Some(f);
            }
        }
    }
    collect(fetched, started.elapsed(), shape.label)
}

/// Sends request `i` of `requests` at `at[i]` after the start, whether or not earlier answers
/// have come, and waits for every answer. Latency counts from the scheduled time. Returns the
/// samples and how late the latest send was (the generator's own lag, for the report).
pub async fn open_loop(
    client: &reqwest::Client,
    base: &str,
    requests: Arc<[Request]>,
    at: &[Duration],
    label: &str,
) -> (Samples, Duration) {
    assert_eq!(requests.len(), at.len(), "one send time per request");
    let base: Arc<str> = base.into();
    let progress = Progress::new(label, requests.len(), true);
    let started = tokio::time::Instant::now();
    let mut lag = Duration::ZERO;
    let mut tasks = Vec::with_capacity(requests.len());
    for (i, &offset) in at.iter().enumerate() {
        let due = started + offset;
        tokio::time::sleep_until(due).await;
        lag = lag.max(due.elapsed());
        let (client, base, requests) = (client.clone(), base.clone(), requests.clone());
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let fetched = fetch(&client, &base, &requests[i], false, due.into_std()).await;
            progress.tick();
            fetched
        }));
    }
    let mut fetched = Vec::with_capacity(tasks.len());
    for task in tasks {
        fetched.push(task.await.ok());
    }
    (collect(fetched, started.elapsed(), label), lag)
}

/// `n` concurrent GETs of one `path`, released together by a barrier once every task is ready.
pub async fn stampede(client: &reqwest::Client, base: &str, path: &str, n: usize) -> Samples {
    let barrier = Arc::new(Barrier::new(n + 1));
    let request = Arc::new(Request::get(path));
    let base: Arc<str> = base.into();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, barrier) = (client.clone(), barrier.clone());
            let (base, request) = (base.clone(), request.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                fetch(&client, &base, &request, false, Instant::now()).await
            })
        })
        .collect();
    barrier.wait().await;
    let started = Instant::now();
    let mut fetched = Vec::with_capacity(n);
    for task in tasks {
        fetched.push(task.await.ok());
    }
    collect(fetched, started.elapsed(), path)
}

/// One request's sample, and for anything but a served answer what it was (for stderr).
type Fetched = (Sample, Option<String>);

/// Sends `request` to `base` + `request.path`; latency counts from `since`.
async fn fetch(
    client: &reqwest::Client,
    base: &str,
    request: &Request,
    bypass: bool,
    since: Instant,
) -> Fetched {
    exchange(client, base, request, bypass, since, false)
        .await
        .0
}

/// [`fetch`], also returning the answer's header fields with `keep` (`None` without an answer).
async fn exchange(
    client: &reqwest::Client,
    base: &str,
    request: &Request,
    bypass: bool,
    since: Instant,
    keep: bool,
) -> (Fetched, Option<HeaderMap>) {
    let url = format!("{base}{}", request.path);
    let mut req = client.request(request.method.clone(), &url);
    for (name, value) in &request.headers {
        req = req.header(*name, value);
    }
    if let Some(body) = &request.body {
        req = req.body(body.as_bytes().to_vec());
    }
    if bypass {
        req = req.header(BYPASS.0, BYPASS.1);
    }
    let failed = |e: String| {
        let sample = Sample {
            latency: since.elapsed(),
            answer: Answer::Unanswered,
            status: None,
            cache: cache_status::Outcome::Absent,
            read_from: None,
        };
        (sample, Some(e))
    };
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return (failed(format!("{url}: {e}")), None),
    };
    let status = resp.status();
    let cache = cache_status::parse(
        resp.headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok()),
    );
    let read_from = resp
        .headers()
        .get(READ_FROM)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = keep.then(|| resp.headers().clone());
    let body = match resp.bytes().await {
        Ok(body) => body,
        Err(e) => return (failed(format!("{url}: body: {e}")), None),
    };
    let latency = since.elapsed();
    let problem = (status.as_u16() >= 400)
        .then(|| answer::problem_kind(&body))
        .flatten();
    let answer = Answer::classify(status.as_u16(), problem.as_deref());
    let detail = (answer != Answer::Served).then(|| {
        let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SHOWN)]).into_owned();
        format!("{url}: {status}: {text}")
    });
    let sample = Sample {
        latency,
        answer,
        status: Some(status.as_u16()),
        cache,
        read_from,
    };
    ((sample, detail), headers)
}

/// The samples in request order (a request whose task died counts as no answer); prints the
/// first unexpected answer of each kind and how many there were.
fn collect(fetched: Vec<Option<Fetched>>, wall: Duration, label: &str) -> Samples {
    let mut first: BTreeMap<Answer, (usize, String)> = BTreeMap::new();
    let samples = fetched
        .into_iter()
        .map(|f| {
            let (sample, detail) = f.unwrap_or_else(|| {
                let sample = Sample {
                    latency: Duration::ZERO,
                    answer: Answer::Unanswered,
                    status: None,
                    cache: cache_status::Outcome::Absent,
                    read_from: None,
                };
                (sample, Some("the request's task failed".into()))
            });
            if let Some(detail) = detail {
                first.entry(sample.answer).or_insert((0, detail)).0 += 1;
            }
            sample
        })
        .collect();
    for (answer, (n, detail)) in first {
        eprintln!("    {label}: {n} × {}, e.g. {detail}", answer.as_str());
    }
    Samples { samples, wall }
}

/// Progress lines on stderr at every tenth of a run.
#[derive(Clone)]
struct Progress {
    label: Arc<str>,
    done: Arc<AtomicUsize>,
    total: usize,
    tenth: usize,
}

impl Progress {
    fn new(label: &str, total: usize, show: bool) -> Self {
        Self {
            label: label.into(),
            done: Arc::new(AtomicUsize::new(0)),
            total,
            tenth: if show {
                (total / 10).max(1)
            } else {
                usize::MAX
            },
        }
    }

    fn tick(&self) {
        let finished = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if finished.is_multiple_of(self.tenth) {
            eprintln!("    {}: {finished}/{}", self.label, self.total);
        }
    }
}
