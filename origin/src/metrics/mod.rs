//! The origin's Prometheus metrics, served by `GET /metrics`.
//!
//! One registry per [`Application`](crate::Application), held in the router's state, never a
//! global one: two servers in one process (the API tests) then never share a counter.
//!
//! Two kinds of metric. *Pushed* ones live in the long-lived registry and change as things
//! happen: requests ([`http`]), replica lag ([`Metrics::set_replica_lag`]), the bulkheads'
//! overload limiters ([`overload`]). *Pulled* ones are read when `/metrics` is scraped: pool
//! occupancy straight from sqlx ([`pools`]) and gauges a query computes ([`scrape`]). Those go
//! into a registry built for that one scrape, so a value that could not be read this time is
//! left out instead of being reported stale.

pub mod http;
pub mod overload;
pub mod pools;
pub mod replicas;
pub mod scrape;
pub mod sources;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

pub use overload::OverloadSeries;
pub use pools::PoolStats;
pub use scrape::ScrapedGauge;

/// Every metric name starts with this (`breakwater_origin_http_requests_total`, ...).
pub const PREFIX: &str = "breakwater_origin";
/// What `GET /metrics` answers with: the Prometheus text exposition format, version 0.0.4, which
/// every Prometheus-compatible scraper reads (OpenMetrics would need content negotiation).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The metrics of one origin. Cheap to clone: clones share the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// The pushed metrics, all registered by [`Metrics::new`], so it never changes afterwards.
    registry: Registry,
    http: http::HttpMetrics,
    pools: pools::Pools,
    replicas: replicas::Replicas,
    overload: overload::OverloadFamilies,
    scraped: scrape::Hooks,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty set of metrics with nothing to scrape yet: pools and scraped gauges are added with
    /// [`Metrics::register_pool`] and [`Metrics::collect_on_scrape`].
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let http = http::HttpMetrics::new(&mut registry);
        let pools = pools::Pools::default();
        let replicas = replicas::Replicas::new(&mut registry);
        let overload = overload::OverloadFamilies::new(&mut registry);
        Self {
            inner: Arc::new(Inner {
                registry,
                http,
                pools,
                replicas,
                overload,
                scraped: scrape::Hooks::default(),
            }),
        }
    }

    /// Counts one answered request and observes how long it took. `route` is the matched route
    /// template (never the raw path: one series per template, not per URL).
    pub fn record_request(&self, route: &str, method: &str, status: StatusCode, took: Duration) {
        self.inner.http.record(route, method, status, took);
    }

    /// Shows `pool` as `pool="<name>"` in the connection gauges, read at each scrape. A second
    /// pool under the same name replaces the first.
    pub fn register_pool(&self, name: &str, pool: impl PoolStats + 'static) {
        self.inner.pools.register(name, pool);
    }

    /// Sets how many bytes of WAL `replica` is behind the primary.
    pub fn set_replica_lag(&self, replica: &str, lag_bytes: u64) {
        self.inner.replicas.set_lag(replica, lag_bytes);
    }

    /// Sets whether reads are currently sent to `replica`.
    pub fn set_replica_in_rotation(&self, replica: &str, in_rotation: bool) {
        self.inner.replicas.set_in_rotation(replica, in_rotation);
    }

    /// Stops exporting `replica` (it was removed from the configuration).
    pub fn forget_replica(&self, replica: &str) {
        self.inner.replicas.forget(replica);
    }

    /// The series of the overload limiter of `bulkhead` (`bulkhead="<name>"`), which has
    /// `max_in_flight` slots; they show, at zero, from now on.
    pub fn overload_series(&self, bulkhead: &str, max_in_flight: usize) -> OverloadSeries {
        self.inner.overload.series(bulkhead, max_in_flight)
    }

    /// Computes `gauge` with `compute` at every scrape (a second hook for the same gauge replaces
    /// the first). A scrape that gets an error, or no answer within [`scrape::HOOK_TIMEOUT`],
    /// leaves the gauge out of its output.
    pub fn collect_on_scrape<F, Fut, E>(&self, gauge: ScrapedGauge, compute: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<i64, E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        self.inner.scraped.add(gauge, compute);
    }

    /// Everything, in the Prometheus text format: runs the scrape hooks, reads the pools, then
    /// encodes the pushed metrics followed by the pulled ones.
    pub async fn render(&self) -> Result<String, fmt::Error> {
        let mut pulled = Registry::with_prefix(PREFIX);
        self.inner.scraped.run(&mut pulled).await;
        self.inner.pools.read(&mut pulled);

        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.inner.registry)?;
        prometheus_text::encode(&mut text, &pulled)?;
        Ok(text)
    }
}

/// The lines of an exposition that start with `prefix`, sorted (for the modules' tests).
#[cfg(test)]
fn sorted_lines(text: &str, prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_instances_never_share_a_counter() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.record_request("/x", "GET", StatusCode::OK, Duration::from_millis(3));
        let line =
            "breakwater_origin_http_requests_total{route=\"/x\",method=\"GET\",status=\"200\"} 1";
        assert!(a.render().await.unwrap().lines().any(|l| l == line));
        assert!(!b.render().await.unwrap().contains("route=\"/x\""));
    }

    #[tokio::test]
    async fn nothing_pushed_means_no_series_rather_than_zeros() {
        let text = Metrics::new().render().await.unwrap();
        assert!(text.is_empty(), "{text}");
    }
}
