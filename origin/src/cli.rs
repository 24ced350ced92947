//! Command-line flags and their `BREAKWATER_*` environment variables.

use std::fmt;
use std::net::SocketAddr;

use clap::Parser;

use crate::auth;
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

    /// Ed25519 key that signs users' access tokens: its 32-byte seed as unpadded base64url
    /// (`head -c 32 /dev/urandom | basenc --base64url | tr -d =`). Unset, a random key is made
    /// at start-up and tokens die with the process. Every instance needs the same key. Prefer
    /// the environment variable.
    #[arg(long, env = "BREAKWATER_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,

    /// The `iss` claim of access tokens.
    #[arg(long, env = "BREAKWATER_TOKEN_ISSUER", default_value = auth::DEFAULT_TOKEN_ISSUER)]
    pub token_issuer: String,

    /// The `aud` claim of access tokens (what the edge expects).
    #[arg(long, env = "BREAKWATER_TOKEN_AUDIENCE", default_value = auth::DEFAULT_TOKEN_AUDIENCE)]
    pub token_audience: String,
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
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
            .finish()
    }
}

impl Cli {
    /// The server settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings {
            admin_token: self.admin_token.clone(),
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
