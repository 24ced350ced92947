//! The queue handler of write-behind (`WRITE_BEHIND`): the `EVENTS` consumer that batches events
//! to the origin through the upstream layer ([`consumer`]), and the dead letters it gives up
//! on, kept in `CONTROL`, listed and replayed ([`dead`]). The pipeline's write-behind stage
//! queues the events; the decisions are core's ([`breakwater_core::writebehind`]).

mod consumer;
pub mod dead;

use crate::bindings::control::signals;
use crate::bindings::queue;
use crate::config;
use crate::upstream::limit;
use worker::worker_sys::MessageBatch;
use worker::{Env, Result};

/// The queue handler: a batch from the dead-letter queue is kept for listing, any other is
/// delivered as events. Errors (configuration, an unreadable batch) make the runtime retry the
/// whole batch: nothing is acked that was not handled.
pub async fn consume(batch: &MessageBatch, env: &Env) -> Result<()> {
    let config = config::load(env).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let (queue_name, messages) = queue::read(batch)?;
    if queue_name == config.write_behind.dead_letter_queue {
        dead::store(env, messages).await;
    } else {
        consumer::deliver(env, &config, messages).await;
    }
    // The consumer's origin calls count toward the breaker like requests' do; with no requests
    // arriving, nothing else would report them.
    if signals::report_due(&config) {
        limit::report(env.clone(), config.control_shards).await;
    }
    Ok(())
}
