//! Database connection pools as `/metrics` shows them: occupancy read from sqlx at each scrape
//! (`breakwater_origin_db_connections{pool,state}`, `breakwater_origin_db_connections_max{pool}`).
//! A bulkhead at its limit shows as `in_use` equal to the max; what it refuses shows as `503`s in
//! the request counters. (sqlx does not say how long an acquisition waited, and timing every
//! query's acquisition by hand would mean owning every connection checkout.)
//!
//! Pools are registered by name (`writes`, `reads`, `background`, `replica-<n>`).

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::db::{Db, on_pool};

/// What `/metrics` reads from a pool at scrape time.
pub trait PoolStats: Send + Sync {
    /// Open connections, idle or in use.
    fn size(&self) -> u32;
    /// Open connections nobody holds.
    fn idle(&self) -> usize;
    /// The most connections the pool will open.
    fn max_connections(&self) -> u32;
}

impl<DB: sqlx::Database> PoolStats for sqlx::Pool<DB> {
    fn size(&self) -> u32 {
        sqlx::Pool::size(self)
    }

    fn idle(&self) -> usize {
        self.num_idle()
    }

    fn max_connections(&self) -> u32 {
        self.options().get_max_connections()
    }
}

impl PoolStats for Db {
    fn size(&self) -> u32 {
        on_pool!(self, pool => PoolStats::size(pool))
    }

    fn idle(&self) -> usize {
        on_pool!(self, pool => pool.idle())
    }

    fn max_connections(&self) -> u32 {
        on_pool!(self, pool => pool.max_connections())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    pool: String,
    state: &'static str,
}

type Named = (String, Arc<dyn PoolStats>);

/// The registered pools.
#[derive(Default)]
pub(super) struct Pools {
    pools: RwLock<Vec<Named>>,
}

impl Pools {
    pub(super) fn register(&self, name: &str, pool: impl PoolStats + 'static) {
        let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
        pools.retain(|(existing, _)| existing != name);
        pools.push((name.to_owned(), Arc::new(pool)));
    }

    /// Reads every pool now into `scrape`, the registry of this one scrape.
    pub(super) fn read(&self, scrape: &mut Registry) {
        let pools = self.pools.read().unwrap_or_else(|e| e.into_inner());
        if pools.is_empty() {
            return;
        }
        let connections = Family::<StateLabels, Gauge>::default();
        let max = Family::<PoolLabels, Gauge>::default();
        for (name, pool) in pools.iter() {
            let (size, idle) = (pool.size(), pool.idle());
            // Read one after the other, so a connection may move in between; never below zero.
            let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
            for (state, count) in [("idle", idle), ("in_use", size - idle)] {
                let labels = StateLabels {
                    pool: name.clone(),
                    state,
                };
                connections.get_or_create(&labels).set(i64::from(count));
            }
            max.get_or_create(&PoolLabels { pool: name.clone() })
                .set(i64::from(pool.max_connections()));
        }
        scrape.register(
            "db_connections",
            "Open database connections by pool and state (idle or in_use), read at scrape time",
            connections,
        );
        scrape.register(
            "db_connections_max",
            "The most connections each database pool will open",
            max,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Metrics, sorted_lines};
    use super::*;

    struct Fixed(u32, usize, u32);

    impl PoolStats for Fixed {
        fn size(&self) -> u32 {
            self.0
        }
        fn idle(&self) -> usize {
            self.1
        }
        fn max_connections(&self) -> u32 {
            self.2
        }
    }

    #[tokio::test]
    async fn named_pools_are_read_at_scrape_time() {
        let metrics = Metrics::new();
        metrics.register_pool("primary", Fixed(5, 2, 16));
        metrics.register_pool("replica", Fixed(1, 1, 8));
        // A racy read (more idle than open) shows as all idle, never a negative in_use.
        metrics.register_pool("racy", Fixed(3, 4, 8));
        let text = metrics.render().await.unwrap();
        assert_eq!(
            sorted_lines(&text, "breakwater_origin_db_connections{"),
            [
                "breakwater_origin_db_connections{pool=\"primary\",state=\"idle\"} 2",
                "breakwater_origin_db_connections{pool=\"primary\",state=\"in_use\"} 3",
                "breakwater_origin_db_connections{pool=\"racy\",state=\"idle\"} 3",
                "breakwater_origin_db_connections{pool=\"racy\",state=\"in_use\"} 0",
                "breakwater_origin_db_connections{pool=\"replica\",state=\"idle\"} 1",
                "breakwater_origin_db_connections{pool=\"replica\",state=\"in_use\"} 0",
            ]
        );
        assert_eq!(
            sorted_lines(&text, "breakwater_origin_db_connections_max{"),
            [
                "breakwater_origin_db_connections_max{pool=\"primary\"} 16",
                "breakwater_origin_db_connections_max{pool=\"racy\"} 8",
                "breakwater_origin_db_connections_max{pool=\"replica\"} 8",
            ]
        );

        // Replacing a pool by name shows the new one only.
        metrics.register_pool("primary", Fixed(0, 0, 4));
        let text = metrics.render().await.unwrap();
        assert!(
            text.lines()
                .any(|l| l == "breakwater_origin_db_connections_max{pool=\"primary\"} 4"),
            "{text}"
        );
        assert_eq!(
            sorted_lines(&text, "breakwater_origin_db_connections_max{").len(),
            3
        );
    }

    #[tokio::test]
    async fn a_real_sqlite_pool_reports_what_sqlx_sees() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let metrics = Metrics::new();
        metrics.register_pool("primary", db.clone());
        let Db::Sqlite(pool) = &db else {
            unreachable!("a sqlite: URL opens a SQLite pool")
        };
        let held = pool.acquire().await.unwrap();
        let text = metrics.render().await.unwrap();
        assert!(
            text.lines()
                .any(|l| l
                    == "breakwater_origin_db_connections{pool=\"primary\",state=\"in_use\"} 1"),
            "{text}"
        );
        drop(held);
    }
}
