//! The origin, in-process on a temp SQLite file, behind the counting proxy (and, for the surge,
//! a throttled relay that makes it slow with a fixed capacity; for the retry storm, a counting
//! proxy that injects faults). Its database is read directly to count the orders placed. The
//! origin scenario starts [`Server`]s of its own, over SQLite or Postgres, with no proxy.
//!
//! Started exactly as the end-to-end harness does (`Application::build`, `run_until`), on a
//! runtime of its own so the load generator's tasks never share its scheduler, as they would
//! not with a separate server process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use breakwater_origin::{Application, Db, Settings};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::proxy::{CountingProxy, Faults};
use crate::throttle::{Throttle, ThrottledProxy};

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
    /// Migrates and seeds a fresh database (10,000 products), binds, and starts serving.
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let url = format!("sqlite://{}", dir.path().join("origin.sqlite").display());
        let server = Server::start(Settings::new(Server::ANY_PORT, url))?;
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
