//! The origin, in-process on a temp SQLite file, behind the counting proxy (and, for the surge,
//! a throttled relay that makes it slow with a fixed capacity; for the retry storm, a counting
//! proxy that injects faults). Its database is read directly to count the orders placed and the
//! write-behind events applied (and the transactions that applied them). The origin scenario
//! starts [`Server`]s of its own, over SQLite or Postgres, with no proxy.
//!
//! Started exactly as the end-to-end harness does (`Application::build`, `run_until`), on a
//! runtime of its own so the load generator's tasks never share its scheduler, as they would
//! not with a separate server process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use breakwater_origin::events::store;
use breakwater_origin::{Application, Db, Settings};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::killable::KillableRelay;
use crate::proxy::{CountingProxy, Faults};
use crate::throttle::{Throttle, ThrottledProxy};

/// The origin's admin token, which an edge presents as `ORIGIN_TOKEN` to the batch endpoint of
/// write-behind events (`POST /internal/events/batch`). Loopback only, so a fixed value.
pub const ADMIN_TOKEN: &str = "breakwater-bench-admin-token";
/// The key every bench edge signs its requests with (`EDGE_KEY`) and the origin checks, as a
/// deployment would: signing is part of what a request costs. Loopback only, so a fixed value.
pub const EDGE_KEY: &str = "breakwater-bench-edge-key-0123456789";

/// How often [`Origin::wait_for_views`] reads the database.
const POLL: Duration = Duration::from_millis(10);

pub struct Origin {
    /// The origin itself (the baseline's target).
    pub direct: SocketAddr,
    /// The counting proxy in front of it (the edge's `ORIGIN_URL`).
    pub proxied: SocketAddr,
    pub proxy: CountingProxy,
    server: Server,
    _db: tempfile::TempDir,
}

impl Origin {
    /// Migrates and seeds a fresh database (10,000 products), binds, and starts serving, with
    /// [`ADMIN_TOKEN`] as its admin token, checking the edge's signatures ([`EDGE_KEY`]).
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let url = format!("sqlite://{}", dir.path().join("origin.sqlite").display());
        let mut settings = Settings::new(Server::ANY_PORT, url);
        settings.admin_token = Some(ADMIN_TOKEN.to_owned());
        settings.edge_keys = vec![EDGE_KEY.to_owned()];
        let server = Server::start(settings)?;
        let direct = server.addr;
        let (proxy, proxied) = server
            .block_on(CountingProxy::start(direct, Faults::NONE))
            .map_err(|e| format!("counting proxy: {e}"))?;
        Ok(Self {
            direct,
            proxied,
            proxy,
            server,
            _db: dir,
        })
    }

    /// Starts a relay that slows the origin to `throttle`, on the origin's runtime; returns it
    /// and its address (an edge's `ORIGIN_URL`).
    pub fn throttled(&self, throttle: Throttle) -> Result<(ThrottledProxy, SocketAddr), String> {
        self.server
            .block_on(ThrottledProxy::start(self.direct, throttle))
    }

    /// Starts a counting proxy that injects `faults` into POSTs, on the origin's runtime;
    /// returns it and its address (an edge's `ORIGIN_URL`).
    pub fn faulty(&self, faults: Faults) -> Result<(CountingProxy, SocketAddr), String> {
        self.server
            .block_on(CountingProxy::start(self.direct, faults))
            .map_err(|e| format!("fault proxy: {e}"))
    }

    /// Starts a relay that can kill and restart the origin as a crash would, on the origin's
    /// runtime; returns it and its address (an origin of an edge's `ORIGINS`).
    pub fn killable(&self) -> Result<(KillableRelay, SocketAddr), String> {
        self.server
            .block_on(KillableRelay::start(self.direct))
            .map_err(|e| format!("killable relay: {e}"))
    }

    /// How many orders carry each of `keys`, read from the origin's database.
    pub fn orders_with_keys(&self, keys: &[String]) -> Result<Vec<i64>, String> {
        let db = &self.server.db;
        self.server.block_on(async {
            let mut counts = Vec::with_capacity(keys.len());
            for key in keys {
                let n = breakwater_origin::order::count_with_key(db, key)
                    .await
                    .map_err(|e| format!("counting the orders of {key}: {e}"))?;
                counts.push(n);
            }
            Ok(counts)
        })
    }

    /// The write-behind tables' totals now.
    pub fn event_totals(&self) -> Result<EventTotals, String> {
        self.server.block_on(EventTotals::read(&self.server.db))
    }

    /// For every event accepted (its `at`, the edge's clock) at or after `since_ms`, Unix ms: how
    /// long until the transaction that counted it (its batch's `first_seen`, the origin's clock;
    /// the same machine's), in no particular order.
    pub fn count_delays(&self, since_ms: i64) -> Result<Vec<Duration>, String> {
        let db = &self.server.db;
        let rows: Result<Vec<(i64, i64)>, sqlx::Error> = self.server.block_on(async {
            match db {
                Db::Sqlite(pool) => {
                    sqlx::query_as(COUNT_DELAYS)
                        .bind(since_ms)
                        .fetch_all(pool)
                        .await
                }
                Db::Postgres(pool) => {
                    sqlx::query_as(COUNT_DELAYS)
                        .bind(since_ms)
                        .fetch_all(pool)
                        .await
                }
            }
        });
        let rows = rows.map_err(|e| format!("reading the events' times: {e}"))?;
        Ok(rows
            .into_iter()
            .map(|(at, applied)| Duration::from_millis(applied.saturating_sub(at).max(0) as u64))
            .collect())
    }

    /// Reads the database every [`POLL`] until `SUM(views)` reaches `views`, or `deadline` after
    /// `since`. Returns the totals last read and, if it was reached, how long after `since`.
    pub fn wait_for_views(
        &self,
        views: i64,
        since: Instant,
        deadline: Duration,
    ) -> Result<(EventTotals, Option<Duration>), String> {
        let db = &self.server.db;
        self.server.block_on(async {
            let wait = async {
                loop {
                    let totals = EventTotals::read(db).await?;
                    let elapsed = since.elapsed();
                    if totals.views >= views {
                        return Ok((totals, Some(elapsed)));
                    }
                    if elapsed >= deadline {
                        return Ok((totals, None));
                    }
                    tokio::time::sleep(POLL).await;
                }
            };
            tokio::select! {
                result = wait => result,
                _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
            }
        })
    }
}

/// For each event the edge accepted at or after `since_ms` (Unix ms, the event's `at`), how
/// long after that the transaction that counted it started (its batch's `first_seen`), in ms.
const COUNT_DELAYS: &str = "SELECT e.at, b.first_seen FROM processed_events e \
     JOIN event_batches b ON b.batch_id = e.batch_id WHERE e.at >= $1";

/// What the write-behind tables hold (`product_stats`, `event_batches`), summed over products
/// and batches; the difference of two readings is what happened between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTotals {
    /// `SUM(views)` of `product_stats`: views counted.
    pub views: i64,
    /// Transactions that applied a batch, every delivery of every batch (`SUM(deliveries)`,
    /// [`store::transactions`]); a synchronous view is a batch of one.
    pub transactions: i64,
    /// Distinct batch ids (`COUNT(*)`).
    pub batches: i64,
    /// Events counted (`SUM(applied)`).
    pub applied: i64,
    /// Events delivered, each delivery of a batch counting its events again
    /// (`SUM(deliveries * events)`): minus `applied`, the duplicates (and rejected events).
    pub delivered: i64,
}

const SUM_VIEWS: &str = "SELECT CAST(COALESCE(SUM(views), 0) AS BIGINT) FROM product_stats";
const SUM_BATCHES: &str = "SELECT CAST(COUNT(*) AS BIGINT), \
     CAST(COALESCE(SUM(applied), 0) AS BIGINT), \
     CAST(COALESCE(SUM(deliveries * events), 0) AS BIGINT) FROM event_batches";

impl EventTotals {
    pub async fn read(db: &Db) -> Result<Self, String> {
        let failed = |e: sqlx::Error| format!("reading the write-behind tables: {e}");
        let transactions = store::transactions(db).await.map_err(failed)?;
        let (views, sums): (Result<i64, _>, Result<(i64, i64, i64), _>) = match db {
            Db::Sqlite(pool) => (
                sqlx::query_scalar(SUM_VIEWS).fetch_one(pool).await,
                sqlx::query_as(SUM_BATCHES).fetch_one(pool).await,
            ),
            Db::Postgres(pool) => (
                sqlx::query_scalar(SUM_VIEWS).fetch_one(pool).await,
                sqlx::query_as(SUM_BATCHES).fetch_one(pool).await,
            ),
        };
        let (batches, applied, delivered) = sums.map_err(failed)?;
        Ok(Self {
            views: views.map_err(failed)?,
            transactions,
            batches,
            applied,
            delivered,
        })
    }

    /// What changed from `before` to `self`.
    pub fn since(self, before: Self) -> Self {
        Self {
            views: self.views - before.views,
            transactions: self.transactions - before.transactions,
            batches: self.batches - before.batches,
            applied: self.applied - before.applied,
            delivered: self.delivered - before.delivered,
        }
    }
}

/// An origin serving in-process: `Application::build` with the given settings, on a runtime of
/// its own; stopped (gracefully, then the runtime shut down) when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its write pool, on the primary.
    pub db: Db,
    stop: Option<oneshot::Sender<()>>,
    rt: Option<Runtime>,
    /// Where its outbox workers write order confirmations; deleted with it.
    _confirmations: tempfile::TempDir,
}

impl Server {
    /// Loopback, a port the OS picks.
    pub const ANY_PORT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

    /// Builds the origin (connect, migrate, seed an empty catalogue, bind) and starts serving,
    /// with its outbox workers writing confirmations into a temporary directory.
    pub fn start(mut settings: Settings) -> Result<Self, String> {
        let confirmations = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        settings.outbox.confirmation_dir = confirmations.path().to_owned();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("origin")
            .enable_all()
            .build()
            .map_err(|e| format!("origin runtime: {e}"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr, db) = rt.block_on(async {
            let app = Application::build(settings)
                .await
                .map_err(|e| format!("origin failed to start: {}", chain(&e)))?;
            let addr = app.local_addr();
            let db = app.db().clone();
            tokio::spawn(app.run_until(async move {
                let _ = stopped.await;
            }));
            Ok::<_, String>((addr, db))
        })?;
        Ok(Self {
            addr,
            db,
            stop: Some(stop),
            rt: Some(rt),
            _confirmations: confirmations,
        })
    }

    /// Runs `work` on the origin's runtime (relays in front of it live there too).
    pub fn block_on<T>(&self, work: impl Future<Output = T>) -> T {
        self.rt
            .as_ref()
            .expect("the runtime lives until drop")
            .block_on(work)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// An error and its sources, `: `-separated (a start-up error's own message rarely says why).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}
