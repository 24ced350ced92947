//! What this origin measures beyond its requests: its connection pool and the tables whose size
//! says how its background work is doing. [`register`] wires them into an origin's [`Metrics`].

use super::{Metrics, ScrapedGauge};
use crate::db::Db;
use crate::order::outbox;

/// The name the one pool of today's origin goes by in `pool="..."`.
pub const PRIMARY_POOL: &str = "primary";

/// Registers `db` as the `primary` pool and the scrape-time gauges computed from it.
pub fn register(metrics: &Metrics, db: &Db) {
    metrics.register_pool(PRIMARY_POOL, db.clone());

    let pending = db.clone();
    metrics.collect_on_scrape(ScrapedGauge::OutboxPending, move || {
        let db = pending.clone();
        async move { outbox::pending_count(&db).await }
    });

    // TODO(issue 6, merge with the outbox workers): register ScrapedGauge::OutboxDeadLetters
    // here with a count of the dead-letter table, which does not exist on this branch. Until
    // then the gauge is not exported at all: a 0 would claim there are no dead letters.
}
