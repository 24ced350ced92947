//! The database handle: a SQLite pool by default, a Postgres pool by URL.
//!
//! An enum rather than `sqlx::Any`, so each backend keeps its own types, options and migrations;
//! queries are written once with `$n` placeholders, which both backends accept, and dispatched
//! with [`on_pool!`](crate::db::on_pool).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

/// How long SQLite waits on a lock held by another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits of one pool, a bulkhead: reads, writes and background work each get their own, so
/// that one kind of work exhausting its connections leaves the others theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most connections open at once. Instances times the sum over pools must stay under the
    /// Postgres server's `max_connections`.
    pub size: u32,
    /// Longest a caller waits for a free connection. Past it the query fails with
    /// `PoolTimedOut`, which a request answers with `503` and `Retry-After` instead of queueing.
    pub wait: Duration,
    /// Server-side bound on any one Postgres statement (SQLite has none).
    pub statement_timeout: Duration,
}

/// The three bulkheads of an origin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulkheads {
    /// Request reads, on the primary and on each replica: short waits, because a read that
    /// queues is better answered `503` for the edge to serve stale.
    pub reads: PoolLimits,
    /// Request writes on the primary: a write is worth waiting a little longer for.
    pub writes: PoolLimits,
    /// Outbox workers and the replica monitor: they can wait; requests never use this pool.
    pub background: PoolLimits,
}

impl Default for Bulkheads {
    fn default() -> Self {
        Self {
            reads: PoolLimits {
                size: 16,
                wait: Duration::from_millis(250),
                statement_timeout: Duration::from_secs(2),
            },
            writes: PoolLimits {
                size: 8,
                wait: Duration::from_secs(1),
                statement_timeout: Duration::from_secs(5),
            },
            background: PoolLimits {
                size: 4,
                wait: Duration::from_secs(10),
                statement_timeout: Duration::from_secs(30),
            },
        }
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection pool to one of the supported databases. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. Each arm is type-checked on
/// its own, so the same query text serves both backends without generic trait bounds.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Whether [`Db::open`] connects before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Now,
    Lazily,
}

/// Why a database URL could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL scheme in {0:?} (expected sqlite: or postgres:)")]
    UnsupportedScheme(String),
    #[error("cannot create the directory for the SQLite file {path}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the database")]
    Connect(#[from] sqlx::Error),
}

/// How long start-up waits for a first connection. Not the pool's wait budget, which is for a
/// busy pool and can be a few milliseconds; a server just starting may take longer to accept.
const FIRST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection and closes it: the database is there and accepts these credentials.
async fn reachable<C: Connection>(
    connecting: impl Future<Output = Result<C, sqlx::Error>>,
) -> Result<(), ConnectError> {
    let connection = tokio::time::timeout(FIRST_CONNECTION_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            let waited = FIRST_CONNECTION_TIMEOUT.as_secs();
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {waited} s"),
            ))
        })??;
    connection.close().await?;
    Ok(())
}

impl Db {
    /// Opens a pool for `url` with the default limits of the write bulkhead.
    pub async fn connect(url: &str) -> Result<Db, ConnectError> {
        Self::open(url, &Bulkheads::default().writes, Connect::Now).await
    }

    /// Opens a pool for `url` (`sqlite:` or `postgres:`/`postgresql:`) within `limits`. A SQLite
    /// file and its parent directory are created when missing, so the default URL works on a
    /// fresh checkout. [`Connect::Lazily`] returns at once and connects on first use, so that a
    /// replica that is down at start-up does not stop the origin starting.
    pub async fn open(url: &str, limits: &PoolLimits, when: Connect) -> Result<Db, ConnectError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL is durable under WAL except for the last commits on power loss.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true);
            let file = options.get_filename();
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| ConnectError::CreateDir {
                    path: file.display().to_string(),
                    source,
                })?;
            }
            if when == Connect::Now {
                reachable(SqliteConnection::connect_with(&options)).await?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(limits.size)
                .acquire_timeout(limits.wait)
                .connect_lazy_with(options);
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let statement_timeout = format!("{}ms", limits.statement_timeout.as_millis());
            let options = PgConnectOptions::from_str(url)?
                .options([("statement_timeout", statement_timeout.as_str())]);
            if when == Connect::Now {
                reachable(PgConnection::connect_with(&options)).await?;
            }
            let pool = PgPoolOptions::new()
                .max_connections(limits.size)
                .acquire_timeout(limits.wait)
                .connect_lazy_with(options);
            Ok(Db::Postgres(pool))
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split(':').next().unwrap_or_default().to_owned();
            Err(ConnectError::UnsupportedScheme(scheme))
        }
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
    }

    /// A round trip to the database, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))
    }

    /// Closes the pool: waits for checked-out connections to come back, then closes them all.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// The statement that opens a transaction which reads and then writes (for
    /// `Pool::begin_with`).
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, waiting out another writer within
    /// the busy timeout. A deferred `BEGIN` would read under a snapshot and then, if another
    /// writer committed meanwhile, fail its first write with `SQLITE_BUSY` at once, without
    /// waiting: exactly what two concurrent duplicates of one write do. Postgres: a plain
    /// `BEGIN` (read committed), where a conflicting insert waits on the unique index instead.
    pub(crate) fn begin_write(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        }
    }

    /// `sqlite` or `postgres`, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_are_refused_without_echoing_credentials() {
        let err = Db::connect("mysql://root:hunter2@db/shop")
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::UnsupportedScheme(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_and_directory_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/deeper/db.sqlite");
        let db = Db::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        db.ping().await.unwrap();
        assert!(file.exists());
        db.close().await;
    }
}
