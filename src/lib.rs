//! Breakwater's edge worker: thin adapters from the Workers runtime to `breakwater-core`
//! decisions. The request path is the ordered list of stages in [`pipeline::STAGES`].

mod admin;
mod admission;
mod assets;
mod authenticate;
mod cache;
mod control;
mod error;
mod exchange;
mod health;
mod idempotency;
mod intake;
mod limiter;
mod origin;
pub mod pipeline;
mod pool;
mod purge;
mod respond;
mod signals;
mod writebehind;

pub use control::Control;
pub use idempotency::Idempotency;
pub use limiter::RateLimiter;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent, event};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    pipeline::handle(req, env, ctx).await
}

/// Cron trigger: checks the origins' health ([`health`]) and refreshes the warm set
/// (`CACHE_WARM`) before it expires.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match pipeline::config(&env) {
        Ok(config) => {
            futures_util::future::join(health::check(&env, &config), cache::warm(&env, &config))
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
