//! Loading the whole edge configuration in one call, from wherever the vars come from: the
//! worker's environment at the edge, `wrangler.toml` in the configuration test. Both go through
//! [`EdgeConfig::load`], so the test checks exactly what a deployment parses.

use super::{ConfigError, EdgeConfig};
use crate::signing::MIN_KEY_LEN;
use std::collections::BTreeMap;

/// A source of `[vars]`.
pub trait Vars {
    /// A plain string var (`ORIGIN_URL = "..."`).
    fn text(&self, name: &str) -> Option<String>;
    /// A structured var (a `wrangler.toml` table, or a string holding JSON), as JSON; an
    /// unparseable value is an error naming `name`.
    fn json(&self, name: &'static str) -> Result<Option<serde_json::Value>, ConfigError>;
}

impl EdgeConfig {
    /// Every var, parsed and validated: the plain ones, then each policy table.
    pub fn load(vars: &impl Vars) -> Result<Self, ConfigError> {
        Self::from_vars(|name| vars.text(name))?
            .with_cache_policy(vars.json("CACHE_POLICY")?)?
            .with_idempotency(vars.json("IDEMPOTENCY_POLICY")?)?
            .with_admission(
                vars.json("ADMISSION")?,
                vars.json("SLO")?,
                vars.json("BREAKER")?,
            )?
            .with_origins(vars.json("ORIGINS")?)?
            .with_concurrency(vars.json("CONCURRENCY")?)?
            .with_write_behind(vars.json("WRITE_BEHIND")?)?
            .with_access_tokens(vars.json("ACCESS_TOKENS")?)
    }
}

/// The least length of `ADMIN_TOKEN`, in characters: 32 random hex digits are 128 bits, beyond
/// guessing however many tries an attacker gets. A shorter one leaves the admin endpoints closed.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// The secrets the edge reads (`wrangler secret put`, or `.dev.vars` locally). Each is optional:
/// without it the feature it opens stays closed, and [`Secrets::parse`] says so.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    /// `ADMIN_TOKEN`: opens the `/_breakwater/` endpoints (absent, or shorter than
    /// [`MIN_ADMIN_TOKEN_LEN`]: they answer `403`).
    pub admin_token: Option<String>,
    /// `API_KEYS`: API key → plan name (absent or malformed: no keys are recognised).
    pub api_keys: BTreeMap<String, String>,
    /// `ORIGIN_TOKEN`: what the queue consumer presents to the origin's batch endpoint (absent:
    /// write-behind batches cannot be delivered).
    pub origin_token: Option<String>,
    /// `EDGE_KEY`: signs every request to the origin ([`crate::signing`]; absent, or shorter
    /// than [`crate::signing::MIN_KEY_LEN`]: requests go unsigned, and an origin that checks
    /// signatures treats every caller as nobody).
    pub edge_key: Option<String>,
}

impl Secrets {
    pub const ADMIN_TOKEN: &'static str = "ADMIN_TOKEN";
    pub const API_KEYS: &'static str = "API_KEYS";
    pub const ORIGIN_TOKEN: &'static str = "ORIGIN_TOKEN";
    pub const EDGE_KEY: &'static str = "EDGE_KEY";

    /// Reads each secret through `secret`, with a warning for each one that is malformed. A bad
    /// secret never stops the edge: only the feature it opens stays closed.
    pub fn parse(secret: impl Fn(&str) -> Option<String>) -> (Self, Vec<String>) {
        let present = |name| secret(name).filter(|v: &String| !v.is_empty());
        let mut warnings = Vec::new();
        let api_keys = match present(Self::API_KEYS) {
            None => BTreeMap::new(),
            Some(raw) => serde_json::from_str(&raw).unwrap_or_else(|e| {
                warnings.push(format!(
                    "{} is not a JSON object of key → plan ({e}); no API keys are recognised",
                    Self::API_KEYS
                ));
                BTreeMap::new()
            }),
        };
        let admin_token = present(Self::ADMIN_TOKEN).filter(|token| {
            let long_enough = token.chars().count() >= MIN_ADMIN_TOKEN_LEN;
            if !long_enough {
                warnings.push(format!(
                    "{} is shorter than {MIN_ADMIN_TOKEN_LEN} characters; the admin endpoints \
                     stay closed",
                    Self::ADMIN_TOKEN
                ));
            }
            long_enough
        });
        let edge_key = present(Self::EDGE_KEY).filter(|key| {
            let long_enough = key.len() >= MIN_KEY_LEN;
            if !long_enough {
                warnings.push(format!(
                    "{} is shorter than {MIN_KEY_LEN} characters; requests to the origin go \
                     unsigned",
                    Self::EDGE_KEY
                ));
            }
            long_enough
        });
        let secrets = Self {
            admin_token,
            api_keys,
            origin_token: present(Self::ORIGIN_TOKEN),
            edge_key,
        };
        (secrets, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> (Secrets, Vec<String>) {
        Secrets::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn absent_and_empty_secrets_are_none() {
        let (s, warnings) = secrets(&[("ADMIN_TOKEN", "")]);
        assert_eq!(s, Secrets::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn api_keys_map_keys_to_plans() {
        let (s, warnings) = secrets(&[
            ("API_KEYS", r#"{"k-1": "pro"}"#),
            ("ADMIN_TOKEN", LONG_ENOUGH),
            ("ORIGIN_TOKEN", "o"),
        ]);
        assert_eq!(s.api_keys.get("k-1").map(String::as_str), Some("pro"));
        assert_eq!(s.admin_token.as_deref(), Some(LONG_ENOUGH));
        assert_eq!(s.origin_token.as_deref(), Some("o"));
        assert!(warnings.is_empty());
    }

    const LONG_ENOUGH: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_short_admin_token_warns_and_keeps_the_endpoints_closed() {
        // (token, accepted): the length counts characters, not bytes.
        let cases = [
            (LONG_ENOUGH, true),
            (&LONG_ENOUGH[1..], false),
            ("t", false),
            ("ééééééééééééééééééééééééééééééé", false),
            ("éééééééééééééééééééééééééééééééé", true),
        ];
        for (token, accepted) in cases {
            let (s, warnings) = secrets(&[("ADMIN_TOKEN", token)]);
            assert_eq!(s.admin_token.is_some(), accepted, "{token}");
            assert_eq!(
                warnings.len(),
                usize::from(!accepted),
                "{token}: {warnings:?}"
            );
            if !accepted {
                assert!(
                    warnings[0].starts_with("ADMIN_TOKEN is shorter than 32"),
                    "{warnings:?}"
                );
            }
        }
    }

    #[test]
    fn a_short_edge_key_warns_and_signs_nothing() {
        let (s, warnings) = secrets(&[("EDGE_KEY", LONG_ENOUGH)]);
        assert_eq!(s.edge_key.as_deref(), Some(LONG_ENOUGH));
        assert!(warnings.is_empty());
        let (s, warnings) = secrets(&[("EDGE_KEY", &LONG_ENOUGH[1..])]);
        assert_eq!(s.edge_key, None);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("EDGE_KEY is shorter than 32"),
            "{warnings:?}"
        );
    }

    #[test]
    fn malformed_api_keys_warn_and_recognise_none() {
        let (s, warnings) = secrets(&[("API_KEYS", "[1, 2]")]);
        assert!(s.api_keys.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("API_KEYS"), "{warnings:?}");
    }
}
