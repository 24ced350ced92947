//! Everything the edge keeps outside the request: the Durable Object classes with one typed
//! client for them ([`durable`]), the cache tiers over isolate memory, the Cache API and KV
//! ([`tiers`]), and the queues ([`queue`]). Nothing here calls an origin or knows a stage.

pub mod control;
pub mod durable;
pub mod idempotency;
pub mod limiter;
pub mod queue;
pub mod tiers;

use std::cell::RefCell;
use worker::{Result, State};

/// A Durable Object's cached value, else its stored one, else `fresh()`.
async fn load<T: Clone + serde::de::DeserializeOwned>(
    cache: &RefCell<Option<T>>,
    state: &State,
    key: &str,
    fresh: fn() -> T,
) -> Result<T> {
    if let Some(value) = cache.borrow().clone() {
        return Ok(value);
    }
    let value = state.storage().get(key).await?.unwrap_or_else(fresh);
    cache.replace(Some(value.clone()));
    Ok(value)
}
