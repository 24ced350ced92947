//! Command-line flags and their `BREAKWATER_*` environment variables, and the subcommands:
//! `serve` (the default) and `dead-letters`.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::db::{Bulkheads, PoolLimits};
use crate::replica::ReplicaPolicy;

use crate::auth;
use crate::outbox::command::DeadLettersCommand;
use crate::outbox::{self, OutboxSettings};
use crate::overload::{self, OverloadSettings};
use crate::startup::{DEFAULT_DATABASE_URL, DEFAULT_LISTEN, Settings};
use crate::telemetry::LogFormat;

/// Flags of the `breakwater-origin` binary. Every one has a default, so the origin runs with no
/// configuration at all. Flags are global: they may come before or after the subcommand
/// (`breakwater-origin --listen … serve` and `breakwater-origin serve --listen …` are the same).
#[derive(Clone, Parser)]
#[command(name = "breakwater-origin", version, about)]
pub struct Cli {
    /// What to do; `serve` when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BREAKWATER_LISTEN", default_value = DEFAULT_LISTEN, global = true)]
    pub listen: SocketAddr,

    /// `sqlite://path` (created if missing) or `postgres://...`.
    #[arg(long, env = "BREAKWATER_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Log line format; the filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "BREAKWATER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json, global = true)]
    pub log_format: LogFormat,

    /// Bearer token that authorises admin writes (`PUT /api/products/{id}` with
    /// `Authorization: Bearer <token>`): at least 16 characters of letters, digits and
    /// `-._~+/`, optionally ending in `=`. Unset, admin writes answer 403. Prefer the environment
    /// variable: command lines are visible to other users of the machine.
    #[arg(
        long,
        env = "BREAKWATER_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,

    /// The key the edge signs its requests with (its `EDGE_KEY` secret), at least 32 characters;
    /// repeat the flag (or comma-separate the variable) to accept the previous key during a
    /// rotation. Unset, requests are not checked and `Breakwater-Principal` is trusted as sent,
    /// so the origin must be reachable only through the edge.
    #[arg(
        long = "edge-key",
        env = "BREAKWATER_EDGE_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        global = true
    )]
    pub edge_keys: Vec<String>,

    #[command(flatten)]
    pub outbox: OutboxArgs,

    /// A streaming replica of the Postgres primary to send reads to; repeat the flag (or
    /// comma-separate the variable) for several.
    #[arg(
        long = "replica-url",
        env = "BREAKWATER_REPLICA_URLS",
        value_delimiter = ',',
        global = true
    )]
    pub replica_urls: Vec<String>,

    /// A replica further behind the primary than this many bytes of WAL leaves the rotation.
    #[arg(long, env = "BREAKWATER_REPLICA_MAX_LAG_BYTES", global = true, default_value_t = ReplicaPolicy::default().max_lag_bytes)]
    pub replica_max_lag_bytes: u64,

    /// How long a read with a `Breakwater-Consistency` token waits for a replica to catch up
    /// before the primary serves it, in milliseconds.
    #[arg(long, env = "BREAKWATER_REPLICA_WAIT_MS", global = true, default_value_t = millis(ReplicaPolicy::default().read_your_writes_wait))]
    pub replica_wait_ms: u64,

    /// How often every replica's lag is measured, in milliseconds.
    #[arg(long, env = "BREAKWATER_REPLICA_CHECK_MS", global = true, default_value_t = millis(ReplicaPolicy::default().check_interval), value_parser = clap::value_parser!(u64).range(10..))]
    pub replica_check_ms: u64,

    /// Connections for request reads, per database (the primary and each replica).
    #[arg(long, env = "BREAKWATER_READ_POOL_SIZE", global = true, default_value_t = Bulkheads::default().reads.size, value_parser = clap::value_parser!(u32).range(1..))]
    pub read_pool_size: u32,

    /// Connections for request writes, on the primary.
    #[arg(long, env = "BREAKWATER_WRITE_POOL_SIZE", global = true, default_value_t = Bulkheads::default().writes.size, value_parser = clap::value_parser!(u32).range(1..))]
    pub write_pool_size: u32,

    /// Connections for background work (outbox workers, the replica monitor).
    #[arg(long, env = "BREAKWATER_BACKGROUND_POOL_SIZE", global = true, default_value_t = Bulkheads::default().background.size, value_parser = clap::value_parser!(u32).range(1..))]
    pub background_pool_size: u32,

    /// Longest a read waits for a connection before answering 503, in milliseconds.
    #[arg(long, env = "BREAKWATER_READ_WAIT_MS", global = true, default_value_t = millis(Bulkheads::default().reads.wait))]
    pub read_wait_ms: u64,

    /// Longest a write waits for a connection before answering 503, in milliseconds.
    #[arg(long, env = "BREAKWATER_WRITE_WAIT_MS", global = true, default_value_t = millis(Bulkheads::default().writes.wait))]
    pub write_wait_ms: u64,

    /// Requests each request bulkhead (reads, writes) runs at once; the rest queue. Unset: twice
    /// the connections its requests can use (reads: 2 × read pool size × databases, 32 with no
    /// replica; writes: 2 × write pool size, 16).
    #[arg(long, env = "BREAKWATER_OVERLOAD_MAX_IN_FLIGHT", global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub overload_max_in_flight: Option<u32>,

    /// Queueing delay a bulkhead tolerates, in milliseconds. Once requests have queued longer
    /// than this for a whole interval, any request that waits longer is answered 503
    /// `overloaded` at once, until the queue drains.
    #[arg(long, env = "BREAKWATER_OVERLOAD_TARGET_MS", global = true, default_value_t = millis(overload::DEFAULT_TARGET), value_parser = clap::value_parser!(u64).range(1..))]
    pub overload_target_ms: u64,

    /// How long, in milliseconds, requests must keep queueing longer than the target before a
    /// bulkhead sheds.
    #[arg(long, env = "BREAKWATER_OVERLOAD_INTERVAL_MS", global = true, default_value_t = millis(overload::DEFAULT_INTERVAL), value_parser = clap::value_parser!(u64).range(1..))]
    pub overload_interval_ms: u64,

    /// Longest any request queues for a slot, in milliseconds, before it is answered 503
    /// `overloaded`; keep it well under the edge's origin timeout.
    #[arg(long, env = "BREAKWATER_OVERLOAD_MAX_WAIT_MS", global = true, default_value_t = millis(overload::DEFAULT_MAX_WAIT), value_parser = clap::value_parser!(u64).range(1..))]
    pub overload_max_wait_ms: u64,

    /// Ed25519 key that signs users' access tokens: its 32-byte seed as unpadded base64url
    /// (`head -c 32 /dev/urandom | basenc --base64url | tr -d =`). Unset, a random key is made
    /// at start-up and tokens die with the process. Every instance needs the same key. Prefer
    /// the environment variable.
    #[arg(
        long,
        env = "BREAKWATER_SIGNING_KEY",
        hide_env_values = true,
        global = true
    )]
    pub signing_key: Option<String>,

    /// The `iss` claim of access tokens.
    #[arg(long, env = "BREAKWATER_TOKEN_ISSUER", default_value = auth::DEFAULT_TOKEN_ISSUER, global = true)]
    pub token_issuer: String,

    /// The `aud` claim of access tokens (what the edge expects).
    #[arg(long, env = "BREAKWATER_TOKEN_AUDIENCE", default_value = auth::DEFAULT_TOKEN_AUDIENCE, global = true)]
    pub token_audience: String,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve HTTP and run the outbox workers until SIGINT/SIGTERM (the default).
    Serve,
    /// List or replay the outbox's dead letters (uses `--database-url`).
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
}

/// How the outbox is worked (see [`crate::outbox`]).
#[derive(Debug, Clone, Args)]
pub struct OutboxArgs {
    /// Outbox worker tasks in this instance; 0 runs none.
    #[arg(long, env = "BREAKWATER_OUTBOX_WORKERS", global = true,
          default_value_t = outbox::DEFAULT_WORKERS as u32,
          value_parser = clap::value_parser!(u32).range(0..=64))]
    pub outbox_workers: u32,

    /// Outbox rows a worker claims at a time.
    #[arg(long, env = "BREAKWATER_OUTBOX_BATCH_SIZE", global = true,
          default_value_t = outbox::DEFAULT_BATCH_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub outbox_batch_size: u32,

    /// Seconds a claim keeps rows from other workers, and the most one delivery may take.
    #[arg(long, env = "BREAKWATER_OUTBOX_LEASE_SECS", global = true,
          default_value_t = outbox::DEFAULT_LEASE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub outbox_lease_secs: u64,

    /// Attempts before a message becomes a dead letter.
    #[arg(long, env = "BREAKWATER_OUTBOX_MAX_ATTEMPTS", global = true,
          default_value_t = outbox::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub outbox_max_attempts: u32,

    /// Directory the confirmation consumer writes `order-<id>.json` into (created if missing).
    #[arg(long, env = "BREAKWATER_CONFIRMATION_DIR", global = true,
          default_value = outbox::DEFAULT_CONFIRMATION_DIR)]
    pub confirmation_dir: PathBuf,
}

impl OutboxArgs {
    /// The outbox settings these flags describe (ranges are checked by the parser).
    pub fn settings(&self) -> OutboxSettings {
        let defaults = OutboxSettings::default();
        OutboxSettings {
            workers: self.outbox_workers as usize,
            batch_size: NonZeroU32::new(self.outbox_batch_size).unwrap_or(defaults.batch_size),
            lease: Duration::from_secs(self.outbox_lease_secs),
            max_attempts: NonZeroU32::new(self.outbox_max_attempts)
                .unwrap_or(defaults.max_attempts),
            confirmation_dir: self.confirmation_dir.clone(),
            ..defaults
        }
    }
}

/// By hand, so that the admin token and the signing key never reach a log line.
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
            .field("edge_keys", &format!("<{} redacted>", self.edge_keys.len()))
            .field("command", &self.command)
            .field("outbox", &self.outbox)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
            .finish_non_exhaustive()
    }
}

impl Cli {
    /// What to run: the subcommand given, else `serve`.
    pub fn command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }

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
            edge_keys: self.edge_keys.clone(),
            bulkheads,
            overload: OverloadSettings {
                max_in_flight: self.overload_max_in_flight.and_then(NonZeroU32::new),
                target: Duration::from_millis(self.overload_target_ms),
                interval: Duration::from_millis(self.overload_interval_ms),
                max_wait: Duration::from_millis(self.overload_max_wait_ms),
            },
            replica_policy: ReplicaPolicy {
                max_lag_bytes: self.replica_max_lag_bytes,
                check_interval: Duration::from_millis(self.replica_check_ms),
                read_your_writes_wait: Duration::from_millis(self.replica_wait_ms),
            },
            outbox: self.outbox.settings(),
            signing_key: self.signing_key.clone(),
            token_issuer: self.token_issuer.clone(),
            token_audience: self.token_audience.clone(),
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
    fn overload_flags_become_overload_settings() {
        let defaults = Cli::try_parse_from(["breakwater-origin"])
            .unwrap()
            .settings();
        assert_eq!(defaults.overload, OverloadSettings::default());
        assert_eq!(defaults.overload.max_in_flight, None);
        let cli = Cli::try_parse_from([
            "breakwater-origin",
            "--overload-max-in-flight",
            "12",
            "--overload-target-ms",
            "7",
            "--overload-interval-ms",
            "250",
            "--overload-max-wait-ms",
            "900",
        ])
        .unwrap();
        let overload = cli.settings().overload;
        assert_eq!(overload.max_in_flight, NonZeroU32::new(12));
        assert_eq!(overload.target, Duration::from_millis(7));
        assert_eq!(overload.interval, Duration::from_millis(250));
        assert_eq!(overload.max_wait, Duration::from_millis(900));
        for flag in [
            "--overload-max-in-flight",
            "--overload-target-ms",
            "--overload-interval-ms",
            "--overload-max-wait-ms",
        ] {
            let err = Cli::try_parse_from(["breakwater-origin", flag, "0"]).unwrap_err();
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn serve_is_the_default_and_flags_go_before_or_after_it() {
        let bare = Cli::try_parse_from(["breakwater-origin", "--listen", "0.0.0.0:9000"]).unwrap();
        assert_eq!(bare.command(), Command::Serve);
        let before =
            Cli::try_parse_from(["breakwater-origin", "--listen", "0.0.0.0:9000", "serve"])
                .unwrap();
        let after = Cli::try_parse_from(["breakwater-origin", "serve", "--listen", "0.0.0.0:9000"])
            .unwrap();
        for cli in [&bare, &before, &after] {
            assert_eq!(cli.settings(), bare.settings());
        }
        assert_eq!(after.command(), Command::Serve);
    }

    #[test]
    fn outbox_flags_become_outbox_settings() {
        let defaults = Cli::try_parse_from(["breakwater-origin"])
            .unwrap()
            .settings();
        assert_eq!(defaults.outbox, OutboxSettings::default());
        let cli = Cli::try_parse_from([
            "breakwater-origin",
            "--outbox-workers",
            "0",
            "--outbox-batch-size",
            "5",
            "--outbox-lease-secs",
            "7",
            "--outbox-max-attempts",
            "3",
            "--confirmation-dir",
            "/tmp/sink",
        ])
        .unwrap();
        let outbox = cli.settings().outbox;
        assert_eq!(outbox.workers, 0);
        assert_eq!(outbox.batch_size.get(), 5);
        assert_eq!(outbox.lease, Duration::from_secs(7));
        assert_eq!(outbox.max_attempts.get(), 3);
        assert_eq!(outbox.confirmation_dir, PathBuf::from("/tmp/sink"));
        for (flag, bad) in [
            ("--outbox-max-attempts", "0"),
            ("--outbox-batch-size", "0"),
            ("--outbox-lease-secs", "0"),
            ("--outbox-workers", "65"),
        ] {
            let err = Cli::try_parse_from(["breakwater-origin", flag, bad]).unwrap_err();
            assert!(err.to_string().contains(flag), "{flag} {bad}: {err}");
        }
    }

    #[test]
    fn dead_letter_commands_take_ids_or_all_and_the_database_url() {
        use crate::outbox::command::ReplayArgs;
        let cli = Cli::try_parse_from([
            "breakwater-origin",
            "dead-letters",
            "replay",
            "--id",
            "3",
            "--id",
            "5",
            "--database-url",
            "postgres://db/shop",
        ])
        .unwrap();
        assert_eq!(cli.database_url, "postgres://db/shop");
        assert_eq!(
            cli.command(),
            Command::DeadLetters(DeadLettersCommand::Replay(ReplayArgs {
                ids: vec![3, 5],
                all: false
            }))
        );
        let list = Cli::try_parse_from(["breakwater-origin", "dead-letters", "list"]).unwrap();
        assert_eq!(
            list.command(),
            Command::DeadLetters(DeadLettersCommand::List {
                include_replayed: false
            })
        );
        for args in [
            &["dead-letters", "replay"][..],
            &["dead-letters", "replay", "--all", "--id", "3"],
            &["dead-letters", "replay", "--id", "0"],
            &["dead-letters"],
        ] {
            let argv = std::iter::once("breakwater-origin").chain(args.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }

    #[test]
    fn token_flags_reach_the_settings_and_the_signing_key_never_debug_output() {
        let key = "c2lnbmluZy1rZXktc2lnbmluZy1rZXktc2lnbmluZy0";
        let defaults = Cli::try_parse_from(["breakwater-origin"])
            .unwrap()
            .settings();
        assert_eq!(defaults.signing_key, None);
        assert_eq!(defaults.token_issuer, "breakwater-origin");
        assert_eq!(defaults.token_audience, "breakwater");
        let cli = Cli::try_parse_from([
            "breakwater-origin",
            "--signing-key",
            key,
            "--token-issuer",
            "https://shop.example",
            "--token-audience",
            "shop",
        ])
        .unwrap();
        let settings = cli.settings();
        assert_eq!(settings.signing_key.as_deref(), Some(key));
        assert_eq!(settings.token_issuer, "https://shop.example");
        assert_eq!(settings.token_audience, "shop");
        for debug in [format!("{cli:?}"), format!("{settings:?}")] {
            assert!(!debug.contains(key), "{debug}");
            assert!(debug.contains("https://shop.example"), "{debug}");
        }
    }

    #[test]
    fn a_malformed_listen_address_is_refused() {
        let err = Cli::try_parse_from(["breakwater-origin", "--listen", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
    }
}
