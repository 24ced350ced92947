//! The edge's configuration and secrets, loaded and validated once per isolate: vars cannot
//! change without a new deployment, and a new deployment is a new isolate. Parsing is core's
//! ([`EdgeConfig::load`], [`Secrets::parse`]); this only reads the worker's environment.

use breakwater_core::config::{ConfigError, EdgeConfig, Secrets, Vars};
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

thread_local! {
    static CONFIG: RefCell<Option<Rc<EdgeConfig>>> = const { RefCell::new(None) };
    static SECRETS: RefCell<Option<Rc<Secrets>>> = const { RefCell::new(None) };
}

/// The validated configuration, parsed on the isolate's first call.
pub fn load(env: &Env) -> Result<Rc<EdgeConfig>, ConfigError> {
    if let Some(config) = CONFIG.with_borrow(Clone::clone) {
        return Ok(config);
    }
    let config = EdgeConfig::load(&EnvVars(env))?;
    if config.access_tokens.is_none() {
        worker::console_log!(
            "ACCESS_TOKENS names no keys: bearer tokens are not verified at the edge, and their \
             requests are anonymous (by address) here"
        );
    }
    let config = Rc::new(config);
    CONFIG.set(Some(config.clone()));
    Ok(config)
}

/// The secrets, read on the isolate's first call; a malformed one is logged once.
pub fn secrets(env: &Env) -> Rc<Secrets> {
    if let Some(secrets) = SECRETS.with_borrow(Clone::clone) {
        return secrets;
    }
    let (secrets, warnings) = Secrets::parse(|name| env.secret(name).ok().map(|s| s.to_string()));
    for warning in warnings {
        worker::console_error!("{warning}");
    }
    let secrets = Rc::new(secrets);
    SECRETS.set(Some(secrets.clone()));
    secrets
}

struct EnvVars<'a>(&'a Env);

impl Vars for EnvVars<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0.var(name).ok().map(|v| v.to_string())
    }

    /// A table in `wrangler.toml` arrives as an object, `--var NAME:<json>` as a string holding
    /// JSON.
    fn json(&self, name: &'static str) -> Result<Option<serde_json::Value>, ConfigError> {
        match self.0.var(name) {
            Ok(json) => serde_json::from_str(&json.to_string())
                .map(Some)
                .map_err(|e| ConfigError {
                    field: name,
                    reason: format!("is not valid JSON: {e}"),
                }),
            Err(_) => Ok(self.0.object_var::<serde_json::Value>(name).ok()),
        }
    }
}
