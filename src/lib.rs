//! Breakwater's edge worker: thin adapters from the Workers runtime to `breakwater-core`
//! decisions, in three layers whose imports flow downward only:
//!
//! - [`pipeline`]: the request path, one ordered list of stages ([`pipeline::STAGES`]);
//! - [`upstream`]: the only code that reaches an origin;
//! - [`bindings`]: Durable Objects, the cache tiers, the queues.
//!
//! Beside them, the queue handler ([`writebehind`]) and the cron trigger (below) are entry
//! points like the pipeline; `config`, `exchange`, `error`, `respond` and `runtime` are shared
//! by all.

// A panic aborts the wasm instance, failing every request in flight in the isolate: runtime
// values are handled, never unwrapped, and nothing is indexed or sliced unchecked (`get`,
// `first`, `split_at_checked`). The clippy gate holds the edge to it; core's parsers are
// fuzzed (`make fuzz`). Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing
    )
)]

mod bindings;
mod config;
mod error;
mod exchange;
mod incoming;
pub mod pipeline;
mod respond;
mod runtime;
mod upstream;
mod writebehind;

pub use bindings::control::Control;
pub use bindings::idempotency::Idempotency;
pub use bindings::limiter::RateLimiter;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Context, Env, Result, ScheduleContext, ScheduledEvent, event, web_sys};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Takes the runtime's request as it is, not a `worker::Request`, which would read the `cf`
/// object and more across the JS boundary on every request ([`incoming`]).
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    pipeline::handle(req, env, ctx).await
}

/// Cron trigger: checks the origins' health ([`upstream::health`]) and refreshes the warm set
/// (`CACHE_WARM`) before it expires ([`pipeline::cache::warm`]).
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match config::load(&env) {
        Ok(config) => {
            futures_util::future::join(
                upstream::health::check(&env, &config),
                pipeline::cache::warm(&env, &config),
            )
            .await;
        }
        Err(e) => worker::console_error!("cron {}: {e}", event.cron()),
    }
}

/// Queue consumer: `EVENTS` batches go to the origin, dead-letter queue batches into the
/// dead-letter list ([`writebehind`]).
///
/// Exported by hand, in the shape `#[event(queue)]` generates (the same `queue(batch, env, ctx)`
/// export the worker-build shim calls): worker 0.8.7's `MessageBatch` hides each message's
/// `attempts` (cloudflare/workers-rs#1057), which the consumer's backoff and attempt limit need,
/// so the runtime's batch object is taken as it is. An error makes the runtime retry the batch.
#[wasm_bindgen]
pub async fn queue(
    batch: worker::worker_sys::MessageBatch,
    env: Env,
    _ctx: worker::worker_sys::Context,
) -> std::result::Result<JsValue, JsValue> {
    match writebehind::consume(&batch, &env).await {
        Ok(()) => Ok(JsValue::UNDEFINED),
        Err(e) => {
            worker::console_error!("queue consumer failed; the batch will be retried: {e}");
            Err(JsValue::from_str(&e.to_string()))
        }
    }
}
