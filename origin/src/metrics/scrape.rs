//! Gauges whose value is computed when `/metrics` is scraped, by an async hook (a `count(*)`
//! query, typically) registered with [`Metrics::collect_on_scrape`](super::Metrics).
//!
//! The hooks of one scrape run concurrently, each within [`HOOK_TIMEOUT`]. A hook that fails,
//! panics or times out leaves its gauge out of that scrape's output: Prometheus then shows the
//! series as absent, which an alert can catch, where a stale or zero value would look healthy.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;

/// Longest one hook may take before its gauge is left out of the scrape; well below the
/// 10 s default scrape timeout of Prometheus, so the rest of the scrape still arrives.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// A gauge computed at scrape time. Each has one name and help text, so two hooks can never
/// export the same series twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScrapedGauge {
    /// Outbox rows not yet delivered to their consumer.
    OutboxPending,
    /// Outbox rows that used up their attempts and wait for a person (dead letters).
    OutboxDeadLetters,
}

impl ScrapedGauge {
    /// The metric name after the `breakwater_origin_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutboxPending => "outbox_pending",
            Self::OutboxDeadLetters => "outbox_dead_letters",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Self::OutboxPending => "Outbox rows not yet delivered, counted at scrape time",
            Self::OutboxDeadLetters => {
                "Outbox messages that used up their delivery attempts (dead letters), counted at \
                 scrape time"
            }
        }
    }
}

type Computation = Pin<Box<dyn Future<Output = Result<i64, String>> + Send>>;
type Hook = Arc<dyn Fn() -> Computation + Send + Sync>;

/// The registered hooks, at most one per gauge.
#[derive(Default)]
pub(super) struct Hooks {
    hooks: RwLock<HashMap<ScrapedGauge, Hook>>,
}

impl Hooks {
    pub(super) fn add<F, Fut, E>(&self, gauge: ScrapedGauge, compute: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<i64, E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        let hook: Hook = Arc::new(move || {
            let computation = compute();
            Box::pin(async move { computation.await.map_err(|error| error.to_string()) })
        });
        self.hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gauge, hook);
    }

    /// Runs every hook and registers the gauges that got a value in `scrape`, in a fixed order.
    pub(super) async fn run(&self, scrape: &mut Registry) {
        let hooks: Vec<(ScrapedGauge, Hook)> = self
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(gauge, hook)| (*gauge, Arc::clone(hook)))
            .collect();
        let mut running = JoinSet::new();
        for (gauge, hook) in hooks {
            let computation = hook();
            running.spawn(async move {
                let outcome = match tokio::time::timeout(HOOK_TIMEOUT, computation).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {HOOK_TIMEOUT:?}")),
                };
                (gauge, outcome)
            });
        }
        let mut values = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((gauge, Ok(value))) => values.push((gauge, value)),
                Ok((gauge, Err(error))) => tracing::warn!(
                    gauge = gauge.as_str(),
                    %error,
                    "a scraped gauge could not be computed; it is left out of this scrape"
                ),
                Err(error) => tracing::error!(
                    %error,
                    "a scrape hook panicked; its gauge is left out of this scrape"
                ),
            }
        }
        values.sort_unstable();
        for (gauge, value) in values {
            scrape.register(gauge.as_str(), gauge.help(), ConstGauge::new(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::super::Metrics;
    use super::*;

    const PENDING: &str = "breakwater_origin_outbox_pending";

    fn value_of(text: &str, name: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned))
    }

    #[tokio::test]
    async fn each_scrape_computes_the_value_afresh() {
        let metrics = Metrics::new();
        let rows = Arc::new(AtomicI64::new(3));
        let counted = Arc::clone(&rows);
        metrics.collect_on_scrape(ScrapedGauge::OutboxPending, move || {
            let value = counted.load(Ordering::SeqCst);
            async move { Ok::<_, String>(value) }
        });
        let text = metrics.render().await.unwrap();
        assert_eq!(value_of(&text, PENDING).as_deref(), Some("3"));
        assert!(text.contains(&format!("# TYPE {PENDING} gauge")), "{text}");
        rows.store(7, Ordering::SeqCst);
        let text = metrics.render().await.unwrap();
        assert_eq!(value_of(&text, PENDING).as_deref(), Some("7"));
        // No hook, no series: an unregistered gauge is absent, not 0.
        assert!(!text.contains("outbox_dead_letters"), "{text}");
    }

    #[tokio::test]
    async fn a_failing_hook_leaves_its_gauge_out_and_the_rest_in() {
        let metrics = Metrics::new();
        metrics.collect_on_scrape(ScrapedGauge::OutboxPending, || async {
            Err::<i64, _>("database closed")
        });
        metrics.collect_on_scrape(ScrapedGauge::OutboxDeadLetters, || async {
            Ok::<_, String>(2)
        });
        let text = metrics.render().await.unwrap();
        assert_eq!(value_of(&text, PENDING), None, "{text}");
        assert_eq!(
            value_of(&text, "breakwater_origin_outbox_dead_letters").as_deref(),
            Some("2")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_hook_is_cut_off_at_the_timeout() {
        let metrics = Metrics::new();
        metrics.collect_on_scrape(ScrapedGauge::OutboxPending, || {
            std::future::pending::<Result<i64, String>>()
        });
        let started = tokio::time::Instant::now();
        let text = metrics.render().await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= HOOK_TIMEOUT && waited < 2 * HOOK_TIMEOUT,
            "{waited:?}"
        );
        assert_eq!(value_of(&text, PENDING), None, "{text}");
    }

    #[tokio::test]
    async fn a_second_hook_for_a_gauge_replaces_the_first() {
        let metrics = Metrics::new();
        metrics.collect_on_scrape(ScrapedGauge::OutboxPending, || async { Ok::<_, String>(1) });
        metrics.collect_on_scrape(ScrapedGauge::OutboxPending, || async { Ok::<_, String>(9) });
        let text = metrics.render().await.unwrap();
        let samples: Vec<_> = text.lines().filter(|l| l.starts_with(PENDING)).collect();
        assert_eq!(samples, [format!("{PENDING} 9")]);
    }
}
