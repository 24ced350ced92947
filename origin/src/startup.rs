//! Building the server: settings in, a bound listener with a migrated, seeded database out.
//! `main` and the tests both go through [`Application::build`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use tokio::net::TcpListener;

use crate::admin::{AdminToken, InvalidAdminToken};
use crate::auth::{self, Auth, AuthSetupError};
use crate::db::{self, Db};
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
    /// The Ed25519 seed access tokens are signed with, 32 bytes as unpadded base64url; `None`
    /// signs with a random key made at start-up (see [`Auth::new`]).
    pub signing_key: Option<String>,
    /// The `iss` of access tokens.
    pub token_issuer: String,
    /// The `aud` of access tokens.
    pub token_audience: String,
}

impl Settings {
    /// Settings with admin writes disabled and a random signing key.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            admin_token: None,
            signing_key: None,
            token_issuer: auth::DEFAULT_TOKEN_ISSUER.to_owned(),
            token_audience: auth::DEFAULT_TOKEN_AUDIENCE.to_owned(),
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
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
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
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    Connect(#[from] db::ConnectError),
    #[error("cannot apply database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot seed the product catalogue")]
    Seed(#[source] sqlx::Error),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A server ready to accept connections: database migrated and seeded, listener bound.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    db: Db,
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
        let auth = Arc::new(Auth::new(
            settings.signing_key.as_deref(),
            &settings.token_issuer,
            &settings.token_audience,
        )?);
        let db = Db::connect(&settings.database_url).await?;
        db.migrate().await?;

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
        let router = routes::router(AppState {
            db: db.clone(),
            admin_token,
            auth,
        });
        Ok(Application {
            listener,
            local_addr,
            router,
            db,
        })
    }

    /// The address actually bound (the real port when the settings asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The database pool the server uses, for tests and tools that need to look underneath.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (each is bounded by the request timeout) and closes the database pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.db.close().await;
        served
    }
}
