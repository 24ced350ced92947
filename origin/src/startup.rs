//! Building the server: settings in, a bound listener with a migrated, seeded database out.
//! `main` and the tests both go through [`Application::build`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{AdminToken, InvalidAdminToken};
use crate::auth::{self, Auth, AuthSetupError};
use crate::db::{self, Bulkheads, Connect, Db};
use crate::edge::{EdgeKeys, InvalidEdgeKey};
use crate::metrics::{self, Metrics};
use crate::outbox::{self, OutboxSettings, Relay, Wakeup, Workers};
use crate::overload::{OverloadSettings, RequestBulkheads};
use crate::replica::{self, Reads, ReplicaPolicy};
use crate::routes::{self, AppState};
use crate::seed;

/// Where the binary listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// A SQLite file relative to the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/breakwater.sqlite";

/// What the server needs to start. Build it with [`Settings::new`] or
/// `Settings { .., ..Settings::default() }` so that fields added later do not break callers.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// Address to bind; port 0 asks the OS for a free port (see [`Application::local_addr`]).
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// The bearer token admin writes must present; `None` disables admin writes (they answer
    /// 403). Checked by [`Application::build`] (see [`AdminToken::parse`]).
    pub admin_token: Option<String>,
    /// Streaming replicas of a Postgres primary (`postgres://...`), for reads.
    pub replica_urls: Vec<String>,
    /// Pool limits for reads, writes and background work.
    pub bulkheads: Bulkheads,
    /// How the request bulkheads (reads, writes) limit and shed requests under a surge.
    pub overload: OverloadSettings,
    /// When a replica is in rotation and how long a read waits for one to catch up.
    pub replica_policy: ReplicaPolicy,
    /// The outbox workers and their consumers' sinks.
    pub outbox: OutboxSettings,
    /// The Ed25519 seed access tokens are signed with, 32 bytes as unpadded base64url; `None`
    /// signs with a random key made at start-up (see [`Auth::new`]).
    pub signing_key: Option<String>,
    /// The `iss` of access tokens.
    pub token_issuer: String,
    /// The `aud` of access tokens.
    pub token_audience: String,
    /// The keys the edge signs its requests with (current first, then any still accepted during
    /// a rotation), each at least 32 characters; empty, requests are not checked and
    /// `Breakwater-Principal` is trusted as sent (see [`crate::edge`]).
    pub edge_keys: Vec<String>,
}

impl Settings {
    /// Settings with admin writes disabled, the default pools and outbox, and a random signing key.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            admin_token: None,
            replica_urls: Vec::new(),
            bulkheads: Bulkheads::default(),
            overload: OverloadSettings::default(),
            replica_policy: ReplicaPolicy::default(),
            outbox: OutboxSettings::default(),
            signing_key: None,
            token_issuer: auth::DEFAULT_TOKEN_ISSUER.to_owned(),
            token_audience: auth::DEFAULT_TOKEN_AUDIENCE.to_owned(),
            edge_keys: Vec::new(),
        }
    }
}

/// By hand, so that the admin token and the signing key never reach a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("replica_urls", &self.replica_urls)
            .field("bulkheads", &self.bulkheads)
            .field("overload", &self.overload)
            .field("replica_policy", &self.replica_policy)
            .field("outbox", &self.outbox)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
            .field("edge_keys", &format!("<{} redacted>", self.edge_keys.len()))
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new(
            DEFAULT_LISTEN
                .parse()
                .expect("DEFAULT_LISTEN is a valid address"),
            DEFAULT_DATABASE_URL,
        )
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid admin token (--admin-token / BREAKWATER_ADMIN_TOKEN)")]
    AdminToken(#[from] InvalidAdminToken),
    #[error("invalid edge key (--edge-key / BREAKWATER_EDGE_KEYS)")]
    EdgeKey(#[from] InvalidEdgeKey),
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    Connect(#[from] db::ConnectError),
    #[error("cannot apply database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "read replicas (--replica-url) need a Postgres primary (--database-url postgres://...)"
    )]
    ReplicasNeedPostgres,
    #[error("cannot seed the product catalogue")]
    Seed(#[source] sqlx::Error),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A server ready to accept connections: database migrated and seeded, listener bound. Its
/// outbox workers start with [`Application::run_until`].
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    db: Db,
    reads: Reads,
    background: Db,
    monitor: Option<JoinHandle<()>>,
    relay: Relay,
    wakeup: Wakeup,
    outbox: OutboxSettings,
    metrics: Metrics,
}

impl Application {
    /// Checks the admin token and the token settings, connects, migrates, seeds an empty catalogue, and binds the
    /// listener, in that order, so a bound port means the server can answer.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let admin_token = settings
            .admin_token
            .as_deref()
            .map(AdminToken::parse)
            .transpose()?;
        if admin_token.is_none() {
            tracing::info!("admin writes disabled: no BREAKWATER_ADMIN_TOKEN configured");
        }
        let edge_keys = EdgeKeys::new(&settings.edge_keys)?;
        if !edge_keys.enabled() {
            tracing::warn!(
                "no BREAKWATER_EDGE_KEYS configured: Breakwater-Principal is trusted as sent, so \
                 this origin must be reachable only through the edge"
            );
        }
        let auth = Arc::new(Auth::new(
            settings.signing_key.as_deref(),
            &settings.token_issuer,
            &settings.token_audience,
        )?);
        let bulkheads = &settings.bulkheads;
        let db = Db::open(&settings.database_url, &bulkheads.writes, Connect::Now).await?;
        db.migrate().await?;
        let background =
            Db::open(&settings.database_url, &bulkheads.background, Connect::Now).await?;
        let metrics = Metrics::new();
        let (reads, monitor) = open_reads(&settings, &background, &metrics).await?;
        metrics::sources::register(&metrics, &db, &reads, &background);

        let started = Instant::now();
        let inserted = seed::seed(&db, seed::CATALOGUE_SIZE)
            .await
            .map_err(StartupError::Seed)?;
        if inserted > 0 {
            tracing::info!(
                backend = db.backend(),
                products = inserted,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "seeded the product catalogue"
            );
        }

        let bind_error = |source| StartupError::Bind {
            addr: settings.listen,
            source,
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let relay = Relay::new(background.clone(), &settings.outbox);
        let wakeup = Wakeup::new();
        // Reads spread over the primary and every replica, each with a read pool of its own.
        let request_bulkheads = RequestBulkheads::new(
            &settings.overload,
            bulkheads,
            1 + settings.replica_urls.len(),
            &metrics,
        );
        let router = routes::router(
            AppState {
                db: db.clone(),
                reads: reads.clone(),
                admin_token,
                outbox_wakeup: wakeup.clone(),
                metrics: metrics.clone(),
                auth,
                edge_keys,
            },
            &request_bulkheads,
        );
        Ok(Application {
            listener,
            local_addr,
            router,
            db,
            reads,
            background,
            monitor,
            relay,
            wakeup,
            outbox: settings.outbox,
            metrics,
        })
    }

    /// The address actually bound (the real port when the settings asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The pool of the write bulkhead, on the primary, for tests and tools that need to look
    /// underneath.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// This server's metrics registry, for whatever runs beside the router (pool waits, a
    /// replica monitor) to report into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The pool of background work (outbox workers, the replica monitor, scrape-time counts).
    pub fn background(&self) -> &Db {
        &self.background
    }

    /// Where reads go: the primary's read pool and the replicas.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// What delivers this server's outbox: tests drive it by hand (with no workers configured)
    /// or subscribe to its outcomes.
    pub fn outbox(&self) -> &Relay {
        &self.relay
    }

    /// Starts the outbox workers and serves until `shutdown` resolves. Then it stops accepting
    /// and, at the same time, tells the workers to stop; it waits for in-flight requests (each
    /// bounded by the request timeout) and for each worker to settle its batch (bounded by the
    /// lease), and closes the database pool last.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let workers = Workers::spawn(
            &self.relay,
            &self.wakeup,
            self.outbox.workers,
            self.outbox.poll_interval,
            outbox::system_clock,
        );
        let stop = workers.stopper();
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.stop();
            })
            .await;
        if let Some(monitor) = self.monitor {
            monitor.abort();
        }
        // Also when serving failed before any shutdown signal.
        workers.stop_and_join().await;
        self.db.close().await;
        self.background.close().await;
        self.reads.close().await;
        served
    }
}

/// The read side: a pool on the primary, one per replica, and the monitor that keeps the
/// replicas' state (measured once before this returns, so the first reads are already routed).
async fn open_reads(
    settings: &Settings,
    background: &Db,
    metrics: &Metrics,
) -> Result<(Reads, Option<JoinHandle<()>>), StartupError> {
    let limits = &settings.bulkheads.reads;
    let primary = Db::open(&settings.database_url, limits, Connect::Now).await?;
    if settings.replica_urls.is_empty() {
        return Ok((Reads::primary_only(primary), None));
    }
    let Db::Postgres(monitor_pool) = background else {
        return Err(StartupError::ReplicasNeedPostgres);
    };
    let mut replicas = Vec::with_capacity(settings.replica_urls.len());
    for url in &settings.replica_urls {
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return Err(StartupError::ReplicasNeedPostgres);
        }
        // Lazily: a replica that is down now only stays out of rotation until it answers.
        replicas.push(Db::open(url, limits, Connect::Lazily).await?);
    }
    let policy = settings.replica_policy;
    let first = replica::monitor::measure(
        monitor_pool,
        &replicas,
        policy.max_lag_bytes,
        FIRST_MEASUREMENT_TIMEOUT,
    )
    .await;
    for status in &first {
        match &status.problem {
            None => {
                tracing::info!(replica = %status.name, lag_bytes = status.lag_bytes, "replica in rotation")
            }
            Some(problem) => {
                tracing::warn!(replica = %status.name, %problem, "replica out of rotation")
            }
        }
    }
    replica::monitor::publish(metrics, &first);
    let (sender, receiver) = watch::channel::<Arc<[replica::ReplicaStatus]>>(first.into());
    let demand = Arc::new(replica::Demand::default());
    let reads = Reads::new(
        primary,
        replicas.clone(),
        receiver,
        demand.clone(),
        policy.read_your_writes_wait,
    );
    let monitor = tokio::spawn(replica::monitor::run(
        monitor_pool.clone(),
        replicas,
        policy,
        sender,
        demand,
        metrics.clone(),
    ));
    Ok((reads, Some(monitor)))
}

/// How long start-up waits for each replica's first measurement.
const FIRST_MEASUREMENT_TIMEOUT: Duration = Duration::from_secs(2);
