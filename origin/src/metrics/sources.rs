//! What this origin measures beyond its requests: its connection pools and the tables whose size
//! says how its background work is doing. [`register`] wires them into an origin's [`Metrics`].

use super::{Metrics, ScrapedGauge};
use crate::db::Db;
use crate::order::outbox;
use crate::outbox::dead_letter;
use crate::replica::{Reads, replica_name};

/// Registers every pool under its bulkhead's name (`writes`, `reads`, `background`, and
/// `replica-<n>`) and the scrape-time outbox gauges, counted on the background pool.
pub fn register(metrics: &Metrics, writes: &Db, reads: &Reads, background: &Db) {
    metrics.register_pool("writes", writes.clone());
    metrics.register_pool("reads", reads.primary().clone());
    metrics.register_pool("background", background.clone());
    for (index, replica) in reads.replica_pools().iter().enumerate() {
        metrics.register_pool(&replica_name(index), replica.clone());
    }

    let db = background.clone();
    metrics.collect_on_scrape(ScrapedGauge::OutboxPending, move || {
        let db = db.clone();
        async move { outbox::pending_count(&db).await }
    });
    let db = background.clone();
    metrics.collect_on_scrape(ScrapedGauge::OutboxDeadLetters, move || {
        let db = db.clone();
        async move { dead_letter::waiting_count(&db).await }
    });
}
