//! Command-line flags and their `BREAKWATER_*` environment variables.

use std::net::SocketAddr;

use clap::Parser;

use crate::startup::{DEFAULT_DATABASE_URL, DEFAULT_LISTEN, Settings};
use crate::telemetry::LogFormat;

/// Flags of the `breakwater-origin` binary. Every one has a default, so the origin runs with no
/// configuration at all.
#[derive(Debug, Clone, Parser)]
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
}

impl Cli {
    /// The server settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings::new(self.listen, self.database_url.clone())
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
    }

    #[test]
    fn a_malformed_listen_address_is_refused() {
        let err = Cli::try_parse_from(["breakwater-origin", "--listen", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
    }
}
