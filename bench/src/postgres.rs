//! Fresh databases on the test PostgreSQL primary and its streaming replica (`scripts/postgres.sh`
//! starts both and prints their URLs), for the origin scenario: created on the primary, waited
//! for on the replica, dropped afterwards.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use sqlx::{Connection, PgConnection};

/// The primary's maintenance database URL (`scripts/postgres.sh env` prints it).
pub const PRIMARY_VAR: &str = "BREAKWATER_TEST_POSTGRES_URL";
/// The streaming replica of that primary, same credentials.
pub const REPLICA_VAR: &str = "BREAKWATER_TEST_POSTGRES_REPLICA_URL";
/// How often a wait on the replica looks again.
const POLL: Duration = Duration::from_millis(50);

/// The two servers, by their maintenance URLs (never printed: they hold the password).
#[derive(Clone)]
pub struct Servers {
    primary: Url,
    replica: Url,
}

impl Servers {
    /// From [`PRIMARY_VAR`] and [`REPLICA_VAR`]; an error that says how to get them.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            let value = std::env::var(name).map_err(|_| {
                format!(
                    "{name} is not set: the origin scenario needs the PostgreSQL primary and \
                     replica of scripts/postgres.sh (make bench starts them; by hand: \
                     sh scripts/postgres.sh && eval \"$(sh scripts/postgres.sh env)\")"
                )
            })?;
            let url = Url::parse(&value)
                .map_err(|e| format!("{name} is not a URL ({e}); see scripts/postgres.sh env"))?;
            if !matches!(url.scheme(), "postgres" | "postgresql") {
                return Err(format!("{name} is not a postgres:// URL"));
            }
            Ok(url)
        };
        Ok(Self {
            primary: var(PRIMARY_VAR)?,
            replica: var(REPLICA_VAR)?,
        })
    }

    /// Servers that are never contacted, for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        let url = Url::parse("postgres://u:p@127.0.0.1:1/postgres").expect("a URL");
        Self {
            primary: url.clone(),
            replica: url,
        }
    }

    /// `host:port` of the primary and of the replica, for the report.
    pub fn addresses(&self) -> (String, String) {
        let address = |u: &Url| {
            format!(
                "{}:{}",
                u.host_str().unwrap_or("?"),
                u.port().unwrap_or(5432)
            )
        };
        (address(&self.primary), address(&self.replica))
    }
}

/// A database of its own on the primary, `bench_<random>`; dropped (with any connection still
/// open to it) when this is.
pub struct Database {
    pub name: String,
    /// The database on the primary.
    pub url: String,
    /// The same database on the replica (it exists there once the replica has replayed the
    /// `CREATE DATABASE`).
    pub replica_url: String,
    maintenance: String,
}

impl Database {
    pub async fn create(servers: &Servers) -> Result<Self, String> {
        let name = format!("bench_{}", random_suffix());
        let maintenance = servers.primary.to_string();
        let mut connection = PgConnection::connect(&maintenance).await.map_err(|e| {
            format!("cannot reach {PRIMARY_VAR} ({e}); is scripts/postgres.sh running?")
        })?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .map_err(|e| format!("CREATE DATABASE {name} on the primary: {e}"))?;
        connection.close().await.ok();
        Ok(Self {
            url: with_database(&servers.primary, &name),
            replica_url: with_database(&servers.replica, &name),
            name,
            maintenance,
        })
    }

    /// `ALTER DATABASE … SET synchronous_commit = on`: this database's sessions (the origin's
    /// pools) wait for their commit's WAL to be written, which also hands it to the replica at
    /// once, whatever the server's setting.
    pub async fn synchronous_commit_on(&self) -> Result<(), String> {
        let mut connection = PgConnection::connect(&self.maintenance)
            .await
            .map_err(|e| format!("cannot reach {PRIMARY_VAR} ({e})"))?;
        sqlx::raw_sql(&format!(
            "ALTER DATABASE {} SET synchronous_commit = on",
            self.name
        ))
        .execute(&mut connection)
        .await
        .map_err(|e| format!("ALTER DATABASE {} SET synchronous_commit: {e}", self.name))?;
        connection.close().await.ok();
        Ok(())
    }

    /// The settings that decide what a commit costs and when the replica sees it, as a session
    /// on this database gets them: `fsync=off, synchronous_commit=off, wal_writer_delay=200ms`.
    pub async fn commit_settings(&self) -> Result<String, String> {
        let mut connection = PgConnection::connect(&self.url)
            .await
            .map_err(|e| format!("database {} on the primary: {e}", self.name))?;
        let mut shown = Vec::new();
        for name in ["fsync", "synchronous_commit", "wal_writer_delay"] {
            let value: String = sqlx::query_scalar("SELECT current_setting($1)")
                .bind(name)
                .fetch_one(&mut connection)
                .await
                .map_err(|e| format!("current_setting('{name}'): {e}"))?;
            shown.push(format!("{name}={value}"));
        }
        connection.close().await.ok();
        Ok(shown.join(", "))
    }

    /// Waits until the replica accepts connections to this database (it has replayed the
    /// `CREATE DATABASE`); returns how long that took.
    pub async fn wait_on_replica(&self, deadline: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            match PgConnection::connect(&self.replica_url).await {
                Ok(connection) => {
                    connection.close().await.ok();
                    return Ok(started.elapsed());
                }
                Err(e) if started.elapsed() >= deadline => {
                    return Err(format!(
                        "database {} did not appear on the replica within {} s ({e}); is its \
                         replay paused or broken? (sh scripts/postgres.sh checks replication)",
                        self.name,
                        deadline.as_secs()
                    ));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Waits until the replica's copy of this database holds `products` products (the seeded
    /// catalogue, committed on the primary in one transaction); returns how long that took.
    pub async fn wait_for_catalogue_on_replica(
        &self,
        products: i64,
        deadline: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        let mut connection = PgConnection::connect(&self.replica_url)
            .await
            .map_err(|e| format!("database {} on the replica: {e}", self.name))?;
        let mut last = String::new();
        while started.elapsed() < deadline {
            // Fails until the replica has replayed the migrations that create the table.
            match sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM products")
                .fetch_one(&mut connection)
                .await
            {
                Ok(n) if n >= products => {
                    connection.close().await.ok();
                    return Ok(started.elapsed());
                }
                Ok(n) => last = format!("{n} products"),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        Err(format!(
            "the catalogue ({products} products) was not readable on the replica's copy of {} \
             within {} s (last: {last})",
            self.name,
            deadline.as_secs()
        ))
    }
}

/// Drops the database from the primary. `Drop` cannot await, so this runs on a short-lived
/// runtime on a thread of its own; a failure only leaves a stray `bench_*` database behind, so
/// it is reported, not raised.
impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.maintenance.clone(), self.name.clone());
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(&sql)
                    .execute(&mut connection)
                    .await
                    .map_err(|e| e.to_string())?;
                connection.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop database {name}: {e}"),
            Err(_) => eprintln!("warning: could not drop database {name}"),
        }
    }
}

/// `url` with its path (the database name) replaced by `database`.
fn with_database(url: &Url, database: &str) -> String {
    let mut url = url.clone();
    url.set_path(database);
    url.into()
}

/// 16 hex digits, different on every call: `RandomState` keys come from the OS's randomness.
fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_replaces_the_path_and_keeps_the_rest() {
        let url = Url::parse("postgres://u:p@127.0.0.1:55433/postgres?sslmode=disable").unwrap();
        assert_eq!(
            with_database(&url, "bench_00ff"),
            "postgres://u:p@127.0.0.1:55433/bench_00ff?sslmode=disable"
        );
    }

    #[test]
    fn names_are_fresh_and_plain() {
        let (a, b) = (random_suffix(), random_suffix());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
