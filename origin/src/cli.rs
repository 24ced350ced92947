//! Command-line flags and their `BREAKWATER_*` environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::db::{Bulkheads, PoolLimits};
use crate::replica::ReplicaPolicy;

use crate::startup::{DEFAULT_DATABASE_URL, DEFAULT_LISTEN, Settings};
use crate::telemetry::LogFormat;

/// Flags of the `breakwater-origin` binary. Every one has a default, so the origin runs with no
/// configuration at all.
#[derive(Clone, Parser)]
#[command(name = "breakwater-origin", version, about)]
pub struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BREAKWATER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// `sqlite://path` (created if missing) or `postgres://...`.
    #[arg(long, env = "BREAKWATER_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Log line format; the filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "BREAKWATER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Bearer token that authorises admin writes (`PUT /api/products/{id}` with
    /// `Authorization: Bearer <token>`): at least 16 characters of letters, digits and
    /// `-._~+/`, optionally ending in `=`. Unset, admin writes answer 403. Prefer the environment
    /// variable: command lines are visible to other users of the machine.
    #[arg(long, env = "BREAKWATER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A streaming replica of the Postgres primary to send reads to; repeat the flag (or
    /// comma-separate the variable) for several.
    #[arg(
        long = "replica-url",
        env = "BREAKWATER_REPLICA_URLS",
        value_delimiter = ','
    )]
    pub replica_urls: Vec<String>,

    /// A replica further behind the primary than this many bytes of WAL leaves the rotation.
    #[arg(long, env = "BREAKWATER_REPLICA_MAX_LAG_BYTES", default_value_t = ReplicaPolicy::default().max_lag_bytes)]
    pub replica_max_lag_bytes: u64,

    /// How long a read with a `Breakwater-Consistency` token waits for a replica to catch up
    /// before the primary serves it, in milliseconds.
    #[arg(long, env = "BREAKWATER_REPLICA_WAIT_MS", default_value_t = millis(ReplicaPolicy::default().read_your_writes_wait))]
    pub replica_wait_ms: u64,

    /// How often every replica's lag is measured, in milliseconds.
    #[arg(long, env = "BREAKWATER_REPLICA_CHECK_MS", default_value_t = millis(ReplicaPolicy::default().check_interval), value_parser = clap::value_parser!(u64).range(10..))]
    pub replica_check_ms: u64,

    /// Connections for request reads, per database (the primary and each replica).
    #[arg(long, env = "BREAKWATER_READ_POOL_SIZE", default_value_t = Bulkheads::default().reads.size, value_parser = clap::value_parser!(u32).range(1..))]
    pub read_pool_size: u32,

    /// Connections for request writes, on the primary.
    #[arg(long, env = "BREAKWATER_WRITE_POOL_SIZE", default_value_t = Bulkheads::default().writes.size, value_parser = clap::value_parser!(u32).range(1..))]
    pub write_pool_size: u32,

    /// Connections for background work (outbox workers, the replica monitor).
    #[arg(long, env = "BREAKWATER_BACKGROUND_POOL_SIZE", default_value_t = Bulkheads::default().background.size, value_parser = clap::value_parser!(u32).range(1..))]
    pub background_pool_size: u32,

    /// Longest a read waits for a connection before answering 503, in milliseconds.
    #[arg(long, env = "BREAKWATER_READ_WAIT_MS", default_value_t = millis(Bulkheads::default().reads.wait))]
    pub read_wait_ms: u64,

    /// Longest a write waits for a connection before answering 503, in milliseconds.
    #[arg(long, env = "BREAKWATER_WRITE_WAIT_MS", default_value_t = millis(Bulkheads::default().writes.wait))]
    pub write_wait_ms: u64,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// By hand, so that the admin token never reaches a log line.
impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cli")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field("log_format", &self.log_format)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("replica_urls", &self.replica_urls)
            .finish_non_exhaustive()
    }
}

impl Cli {
    /// The server settings these flags describe.
    pub fn settings(&self) -> Settings {
        let defaults = Bulkheads::default();
        let bulkheads = Bulkheads {
            reads: PoolLimits {
                size: self.read_pool_size,
                wait: Duration::from_millis(self.read_wait_ms),
                ..defaults.reads
            },
            writes: PoolLimits {
                size: self.write_pool_size,
                wait: Duration::from_millis(self.write_wait_ms),
                ..defaults.writes
            },
            background: PoolLimits {
                size: self.background_pool_size,
                ..defaults.background
            },
        };
        Settings {
            admin_token: self.admin_token.clone(),
            replica_urls: self.replica_urls.clone(),
            bulkheads,
            replica_policy: ReplicaPolicy {
                max_lag_bytes: self.replica_max_lag_bytes,
                check_interval: Duration::from_millis(self.replica_check_ms),
                read_your_writes_wait: Duration::from_millis(self.replica_wait_ms),
            },
            ..Settings::new(self.listen, self.database_url.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_settings() {
        let cli = Cli::try_parse_from([
            "breakwater-origin",
            "--listen",
            "0.0.0.0:9000",
            "--database-url",
            "postgres://db/shop",
            "--log-format",
            "pretty",
        ])
        .unwrap();
        let settings = cli.settings();
        assert_eq!(settings.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(settings.database_url, "postgres://db/shop");
        assert_eq!(cli.log_format, LogFormat::Pretty);
        assert_eq!(settings.admin_token, None);
    }

    #[test]
    fn the_admin_token_flag_reaches_the_settings_but_never_debug_output() {
        let token = "flag-token-0123456789";
        let cli = Cli::try_parse_from(["breakwater-origin", "--admin-token", token]).unwrap();
        let settings = cli.settings();
        assert_eq!(settings.admin_token.as_deref(), Some(token));
        for debug in [format!("{cli:?}"), format!("{settings:?}")] {
            assert!(!debug.contains(token), "{debug}");
            assert!(debug.contains("<redacted>"), "{debug}");
        }
    }

    #[test]
    fn replicas_repeat_and_pool_limits_reach_the_settings() {
        let cli = Cli::try_parse_from([
            "breakwater-origin",
            "--replica-url",
            "postgres://r1/shop",
            "--replica-url",
            "postgres://r2/shop",
            "--read-pool-size",
            "3",
            "--write-wait-ms",
            "40",
            "--replica-wait-ms",
            "7",
        ])
        .unwrap();
        let settings = cli.settings();
        assert_eq!(
            settings.replica_urls,
            ["postgres://r1/shop", "postgres://r2/shop"]
        );
        assert_eq!(settings.bulkheads.reads.size, 3);
        assert_eq!(settings.bulkheads.writes.wait, Duration::from_millis(40));
        assert_eq!(
            settings.bulkheads.writes.size,
            Bulkheads::default().writes.size
        );
        assert_eq!(
            settings.replica_policy.read_your_writes_wait,
            Duration::from_millis(7)
        );

        let defaults = Cli::try_parse_from(["breakwater-origin"])
            .unwrap()
            .settings();
        assert_eq!(defaults.bulkheads, Bulkheads::default());
        assert_eq!(defaults.replica_policy, ReplicaPolicy::default());
        assert!(Cli::try_parse_from(["breakwater-origin", "--read-pool-size", "0"]).is_err());
    }

    #[test]
    fn a_malformed_listen_address_is_refused() {
        let err = Cli::try_parse_from(["breakwater-origin", "--listen", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
    }
}
