//! Breakwater's edge worker: thin adapters from the Workers runtime to `breakwater-core`
//! decisions. The request path is the ordered list of stages in [`pipeline::STAGES`].

mod admin;
mod admission;
mod assets;
mod cache;
mod control;
mod error;
mod exchange;
mod idempotency;
mod intake;
mod limiter;
mod origin;
pub mod pipeline;
mod purge;
mod respond;
mod signals;

pub use control::Control;
pub use idempotency::Idempotency;
pub use limiter::RateLimiter;
use worker::{
    Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent, event,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    pipeline::handle(req, env, ctx).await
}

/// Cron trigger: refreshes the warm set (`CACHE_WARM`) before it expires.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match pipeline::config(&env) {
        Ok(config) => cache::warm(&env, &config).await,
        Err(e) => worker::console_error!("cron {}: {e}", event.cron()),
    }
}

/// `EVENTS` queue consumer. Write-behind is not implemented yet, so every message is retried
/// rather than acknowledged: after `max_retries` the queue moves it to the dead-letter queue,
/// where it waits to be replayed. Nothing is dropped.
#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, _env: Env, _ctx: Context) -> Result<()> {
    worker::console_warn!(
        "queue {}: no consumer yet; retrying {} messages",
        batch.queue(),
        batch.raw_iter().count()
    );
    batch.retry_all();
    Ok(())
}
