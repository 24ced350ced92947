//! A slowed origin of fixed capacity: an HTTP relay in front of the origin that holds every
//! request for a set service time, at most `concurrency` at once (the rest wait in FIFO order),
//! so the origin serves about `concurrency / delay` requests per second however hard it is
//! pushed. Counts the GETs it received, served, and lost because the edge gave up on them (the
//! edge aborts its origin fetch at `ORIGIN_TIMEOUT_MS`; hyper then drops the waiting request,
//! as a server drops a request whose client has gone).
//!
//! HTTP rather than TCP like [`crate::proxy::CountingProxy`]: a service-time slot has to start
//! and end with one request, and only the HTTP framing says where a request and its answer end
//! on a keep-alive connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Largest request body relayed (the bench only sends GETs).
const BODY_LIMIT: usize = 1024 * 1024;
/// Deadline of one relayed call to the origin, which answers in milliseconds.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The slowed origin's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Added to every request, inside its slot.
    pub delay: Duration,
    /// Requests served at once.
    pub concurrency: usize,
}

impl Throttle {
    /// The most requests per second it can answer (ignoring the origin's own few hundred µs).
    pub fn capacity(&self) -> f64 {
        self.concurrency as f64 / self.delay.as_secs_f64().max(f64::EPSILON)
    }
}

/// What the relay has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// GETs that arrived.
    pub received: u64,
    /// Answered (whatever the origin said).
    pub served: u64,
    /// Dropped before their answer because the client (the edge) went away.
    pub abandoned: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    served: AtomicU64,
    abandoned: AtomicU64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    slots: Semaphore,
    /// The service time in µs, changed by [`ThrottledProxy::set_delay`] (a brownout).
    delay_us: AtomicU64,
    counters: Counters,
}

/// Handle on a running relay; it stops with the runtime it was started on.
#[derive(Clone)]
pub struct ThrottledProxy {
    shared: Arc<Shared>,
}

impl ThrottledProxy {
    /// Listens on a free loopback port and relays to `upstream` through `throttle`.
    pub async fn start(
        upstream: SocketAddr,
        throttle: Throttle,
    ) -> Result<(Self, SocketAddr), String> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(UPSTREAM_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("relay client: {e}"))?;
        let shared = Arc::new(Shared {
            upstream: format!("http://{upstream}"),
            client,
            slots: Semaphore::new(throttle.concurrency.max(1)),
            delay_us: AtomicU64::new(micros(throttle.delay)),
            counters: Counters::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("throttled proxy: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("throttled proxy: {e}"))?;
        let app = axum::Router::new()
            .fallback(relay)
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bench: throttled proxy stopped: {e}");
            }
        });
        Ok((Self { shared }, addr))
    }

    /// Makes every request that takes a slot from now on wait `delay` (an origin that became
    /// slower, or recovered).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay_us.store(micros(delay), Ordering::Relaxed);
    }

    pub fn counts(&self) -> Counts {
        let c = &self.shared.counters;
        Counts {
            received: c.received.load(Ordering::Relaxed),
            served: c.served.load(Ordering::Relaxed),
            abandoned: c.abandoned.load(Ordering::Relaxed),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counts a request as abandoned unless it was answered: hyper drops the handler's future when
/// the client closes the connection, and this guard with it.
struct InFlight<'a> {
    counters: &'a Counters,
    answered: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let counter = if self.answered {
            &self.counters.served
        } else {
            &self.counters.abandoned
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn relay(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if req.method() == axum::http::Method::GET {
        shared.counters.received.fetch_add(1, Ordering::Relaxed);
    }
    let mut in_flight = InFlight {
        counters: &shared.counters,
        answered: false,
    };
    let Ok(_slot) = shared.slots.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let delay = Duration::from_micros(shared.delay_us.load(Ordering::Relaxed));
    tokio::time::sleep(delay).await;
    let response = forward(&shared, req).await;
    in_flight.answered = true;
    response
}

/// The request to the origin and its whole answer back; a relay failure is a bare `502`.
async fn forward(shared: &Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let result = shared
        .client
        .request(parts.method, format!("{}{target}", shared.upstream))
        .headers(end_to_end(parts.headers))
        .body(body)
        .send()
        .await;
    let upstream = match result {
        Ok(upstream) => upstream,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = upstream.status();
    let headers = end_to_end(upstream.headers().clone());
    let body: Bytes = match upstream.bytes().await {
        Ok(body) => body,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `headers` without the hop-by-hop fields (RFC 9110 §7.6.1), `Host` and the framing, which
/// each hop sets for itself.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    const HOP: [HeaderName; 8] = [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ];
    for name in HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_slots_per_service_time() {
        let t = Throttle {
            delay: Duration::from_millis(30),
            concurrency: 8,
        };
        assert!((t.capacity() - 266.666).abs() < 0.01);
    }

    /// Waits (polling, up to 5 s) until `done` holds for the proxy's counts.
    async fn until(proxy: &ThrottledProxy, done: impl Fn(Counts) -> bool) -> Counts {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done(proxy.counts()) && tokio::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        proxy.counts()
    }

    #[tokio::test]
    async fn answers_after_the_delay_and_counts_what_the_client_gave_up_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { "from the origin" });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let delay = Duration::from_secs(1);
        let throttle = Throttle {
            delay,
            concurrency: 1,
        };
        let (proxy, addr) = ThrottledProxy::start(upstream, throttle).await.unwrap();
        let url = format!("http://{addr}/api/x?y=1");
        let client = |timeout| {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(timeout)
                .build()
                .unwrap()
        };

        let started = std::time::Instant::now();
        let answer = client(Duration::from_secs(10))
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "from the origin");
        assert!(started.elapsed() >= delay);

        // Faster from now on: a client that waits less than the first delay is answered.
        proxy.set_delay(Duration::from_millis(1));
        let quick = client(Duration::from_millis(900)).get(&url).send().await;
        assert_eq!(quick.unwrap().status(), 200);
        proxy.set_delay(delay);

        let gave_up = client(Duration::from_millis(50)).get(&url).send().await;
        assert!(gave_up.is_err());
        let counts = until(&proxy, |c| c.abandoned == 1).await;
        assert_eq!(
            counts,
            Counts {
                received: 3,
                served: 2,
                abandoned: 1
            }
        );
    }

    #[test]
    fn hop_by_hop_fields_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "3".parse().unwrap());
        h.insert("cache-tag", "product:1".parse().unwrap());
        let kept = end_to_end(h);
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key("cache-tag"));
    }
}
