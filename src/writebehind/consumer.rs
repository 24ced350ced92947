//! The `EVENTS` consumer. The queue batches messages (`max_batch_size`, `max_batch_timeout` in
//! `wrangler.toml`); each batch is:
//!
//! 1. classified: poison (malformed, an unknown version, oversized) goes to the dead-letter
//!    queue at once, with its reason;
//! 2. sent to the origin's batch endpoint as one batch, through the circuit breaker, under a
//!    batch id derived from the event ids (a redelivery of the same set has the same id);
//! 3. settled per message by core ([`settle`]): applied and duplicates are acked, rejected ones
//!    dead-lettered, failures retried with backoff for the message's `attempts`, and on the
//!    last attempt dead-lettered with the last error.
//!
//! Dead-lettering sends a [`DeadLetterEnvelope`] to `EVENTS_DLQ` and then acks; if that send
//! fails the message is retried instead, so nothing is acked that is not somewhere.

use crate::bindings::queue::{self, Delivered, EVENTS_DLQ};
use crate::config;
use crate::runtime::{now_millis, random_u64, within};
use crate::upstream::{self, Outbound};
use breakwater_core::config::{EdgeConfig, Secrets};
use breakwater_core::writebehind::{
    Action, BatchRequest, DeadLetterEnvelope, Delivery, EventMessage, Outcome, backoff, classify,
    settle,
};
use worker::{Env, Method};

/// Delivers one `EVENTS` batch and settles every message in it.
pub async fn deliver(env: &Env, config: &EdgeConfig, messages: Vec<Delivered>) {
    let mut events: Vec<(Delivered, EventMessage)> = Vec::new();
    let mut dead: Vec<(Delivered, String)> = Vec::new();
    for message in messages {
        match classify(&message.body, config.write_behind.max_event_bytes) {
            Ok(event) => events.push((message, event)),
            Err(poison) => dead.push((message, poison.to_string())),
        }
    }
    if !events.is_empty() {
        let batch = BatchRequest::new(events.iter().map(|(_, m)| m.event.clone()).collect());
        let attempts: Vec<u32> = events.iter().map(|(m, _)| m.attempts).collect();
        let delivery = call_origin(env, config, &batch).await;
        let settlement = settle(
            &batch,
            &attempts,
            &delivery,
            &config.write_behind,
            random_u64,
        );
        log(&batch, &settlement.outcome, &settlement.actions);
        for ((message, _), action) in events.into_iter().zip(settlement.actions) {
            match action {
                Action::Ack => message.ack(),
                Action::Retry { delay_seconds } => message.retry(delay_seconds),
                Action::DeadLetter { reason } => dead.push((message, reason)),
            }
        }
    }
    if !dead.is_empty() {
        dead_letter(env, config, dead).await;
    }
}

/// Sends each message with its reason to the dead-letter queue, then acks it; if the queue does
/// not take them, retries them with backoff (they come back, and are dead-lettered again).
async fn dead_letter(env: &Env, config: &EdgeConfig, dead: Vec<(Delivered, String)>) {
    let now = now_millis();
    let envelopes: Vec<String> = dead
        .iter()
        .map(|(message, reason)| {
            let envelope = DeadLetterEnvelope::new(
                &message.body,
                reason.clone(),
                message.attempts,
                message.timestamp,
                now,
            );
            serde_json::to_string(&envelope).unwrap_or_default()
        })
        .collect();
    match queue::send(env, EVENTS_DLQ, &envelopes).await {
        Ok(()) => {
            // One line per batch: an outage dead-letters whole batches for the same reason.
            if let Some((first, reason)) = dead.first() {
                worker::console_warn!(
                    "write-behind: dead-lettered {} message(s), the first after {} attempt(s): \
                     {reason}",
                    dead.len(),
                    first.attempts
                );
            }
            for (message, _) in &dead {
                message.ack();
            }
        }
        Err(e) => {
            worker::console_error!(
                "write-behind: {EVENTS_DLQ} refused {} dead letters, retrying them: {e}",
                dead.len()
            );
            let w = &config.write_behind;
            for (message, _) in &dead {
                let delay = backoff(
                    message.attempts,
                    w.retry_base_seconds,
                    w.retry_max_seconds,
                    random_u64(),
                );
                message.retry(delay);
            }
        }
    }
}

/// One call to the batch endpoint, with the breaker and the origin timeout (for the head and
/// again for the body).
async fn call_origin(env: &Env, config: &EdgeConfig, batch: &BatchRequest) -> Delivery {
    let Some(token) = config::secrets(env).origin_token.clone() else {
        return Delivery::Failed(format!(
            "{} is not set: the edge cannot call the origin's batch endpoint",
            Secrets::ORIGIN_TOKEN
        ));
    };
    let body = match serde_json::to_vec(batch) {
        Ok(body) => body,
        Err(e) => return Delivery::Failed(format!("could not encode the batch: {e}")),
    };
    let mut outbound = Outbound::internal(Method::Post, &config.write_behind.batch_path)
        .with_header("authorization", format!("Bearer {token}"))
        .with_header("content-type", "application/json");
    outbound.body = Some(body);
    let mut response = match upstream::send(env, config, &outbound).await {
        Ok(response) => response,
        Err(e) => return Delivery::Failed(e.to_string()),
    };
    let status = response.status_code();
    match within(config.origin_timeout, response.text()).await {
        Some(Ok(body)) => Delivery::Answered { status, body },
        Some(Err(e)) => Delivery::Failed(format!("the origin's {status} answer broke off: {e}")),
        None => Delivery::Failed(format!(
            "the origin's {status} answer did not finish within {} ms",
            config.origin_timeout.as_millis()
        )),
    }
}

fn log(batch: &BatchRequest, outcome: &Outcome, actions: &[Action]) {
    let count = |kind: &str| actions.iter().filter(|a| a.as_str() == kind).count();
    let summary = format!(
        "write-behind batch {} ({} events): {}; ack {}, retry {}, dead-letter {}",
        batch.batch_id,
        batch.events.len(),
        match outcome {
            Outcome::Applied {
                applied,
                duplicates,
                rejected,
            } => format!("applied {applied}, duplicates {duplicates}, rejected {rejected}"),
            Outcome::Refused(why) | Outcome::Failed(why) => format!("{}: {why}", outcome.as_str()),
        },
        count("ack"),
        count("retry"),
        count("dead-letter"),
    );
    match outcome {
        Outcome::Applied { .. } => worker::console_log!("{summary}"),
        Outcome::Refused(_) => worker::console_error!("{summary}"),
        Outcome::Failed(_) => worker::console_warn!("{summary}"),
    }
}
