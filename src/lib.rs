//! Breakwater's edge worker: thin adapters from the Workers runtime to `breakwater-core`
//! decisions. The request path is the ordered list of stages in [`pipeline::STAGES`].

mod assets;
mod cache;
mod error;
mod exchange;
mod intake;
mod objects;
mod origin;
pub mod pipeline;
mod respond;

pub use objects::{Control, Idempotency, RateLimiter};
use worker::{
    Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent, event,
};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    pipeline::handle(req, env).await
}

/// Cron trigger: cache warming and maintenance land here (issue: cache tiering).
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, _env: Env, _ctx: ScheduleContext) {
    worker::console_log!("cron {}: no scheduled work configured yet", event.cron());
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
