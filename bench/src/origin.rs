//! The origin, in-process on a temp SQLite file, behind the counting proxy (and, for the surge,
//! a throttled relay that makes it slow with a fixed capacity; for the retry storm, a counting
//! proxy that injects faults). Its database is read directly to count the orders placed.
//!
//! Started exactly as the end-to-end harness does (`Application::build`, `run_until`), on a
//! runtime of its own so the load generator's tasks never share its scheduler, as they would
//! not with a separate server process.

use std::net::SocketAddr;
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
    db: Db,
    stop: Option<oneshot::Sender<()>>,
    rt: Option<Runtime>,
    _db: tempfile::TempDir,
}

impl Origin {
    /// Migrates and seeds a fresh database (10,000 products), binds, and starts serving.
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let url = format!("sqlite://{}", dir.path().join("origin.sqlite").display());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("origin")
            .enable_all()
            .build()
            .map_err(|e| format!("origin runtime: {e}"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (direct, db, proxy, proxied) = rt.block_on(async {
            let listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let app = Application::build(Settings::new(listen, url))
                .await
                .map_err(|e| format!("origin failed to start: {e}"))?;
            let direct = app.local_addr();
            let db = app.db().clone();
            tokio::spawn(app.run_until(async move {
                let _ = stopped.await;
            }));
            let (proxy, proxied) = CountingProxy::start(direct, Faults::NONE)
                .await
                .map_err(|e| format!("counting proxy: {e}"))?;
            Ok::<_, String>((direct, db, proxy, proxied))
        })?;
        Ok(Self {
            direct,
            proxied,
            proxy,
            db,
            stop: Some(stop),
            rt: Some(rt),
            _db: dir,
        })
    }

    /// Starts a relay that slows the origin to `throttle`, on the origin's runtime; returns it
    /// and its address (an edge's `ORIGIN_URL`).
    pub fn throttled(&self, throttle: Throttle) -> Result<(ThrottledProxy, SocketAddr), String> {
        let rt = self.rt.as_ref().ok_or("the origin has stopped")?;
        rt.block_on(ThrottledProxy::start(self.direct, throttle))
    }

    /// Starts a counting proxy that injects `faults` into POSTs, on the origin's runtime;
    /// returns it and its address (an edge's `ORIGIN_URL`).
    pub fn faulty(&self, faults: Faults) -> Result<(CountingProxy, SocketAddr), String> {
        let rt = self.rt.as_ref().ok_or("the origin has stopped")?;
        rt.block_on(CountingProxy::start(self.direct, faults))
            .map_err(|e| format!("fault proxy: {e}"))
    }

    /// How many orders carry each of `keys`, read from the origin's database.
    pub fn orders_with_keys(&self, keys: &[String]) -> Result<Vec<i64>, String> {
        let rt = self.rt.as_ref().ok_or("the origin has stopped")?;
        rt.block_on(async {
            let mut counts = Vec::with_capacity(keys.len());
            for key in keys {
                let n = breakwater_origin::order::count_with_key(&self.db, key)
                    .await
                    .map_err(|e| format!("counting the orders of {key}: {e}"))?;
                counts.push(n);
            }
            Ok(counts)
        })
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
