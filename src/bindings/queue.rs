//! The queues as this edge uses them: messages are JSON *text* (content type `text`), read from
//! the runtime's own batch objects.
//!
//! Text, not the `json` content type: worker's `Queue::send` converts through
//! serde-wasm-bindgen, which turns a `serde_json::Value` object into a JS `Map` (which JSON
//! drops) and refuses integers beyond 2^53; text keeps the exact bytes core wrote and read, and
//! the consumer measures a message's size on exactly those bytes.
//!
//! The batch is read through `worker_sys` because worker 0.8.7's `Message` does not expose
//! `attempts` (cloudflare/workers-rs#1057), which the backoff and the attempt limit need.

use crate::runtime::within;
use std::time::Duration;
use worker::js_sys::{self, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Message as RawMessage, MessageBatch as RawBatch};
use worker::{Env, QueueContentType, RawMessageBuilder, Result, SendMessage};

/// Longest wait for a queue to take messages before the caller treats it as unavailable.
/// The write-behind events queue.
pub const EVENTS: &str = "EVENTS";
/// Its dead-letter queue's producer binding.
pub const EVENTS_DLQ: &str = "EVENTS_DLQ";

const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// `sendBatch` takes at most 100 messages and 256 KB; stay under both.
const MAX_BATCH_MESSAGES: usize = 100;
const MAX_BATCH_BYTES: usize = 200 * 1024;

/// One delivered message.
pub struct Delivered {
    raw: RawMessage,
    /// The body as text: a text message as sent; anything else as its JSON (`""` if it has
    /// none), so it can still be classified and dead-lettered.
    pub body: String,
    /// Deliveries so far, this one included (1 on the first).
    pub attempts: u32,
    /// Unix ms when it was first queued.
    pub timestamp: u64,
}

impl Delivered {
    pub fn ack(&self) {
        if let Err(e) = self.raw.ack() {
            worker::console_error!("queue: ack failed: {e:?}");
        }
    }

    /// Asks for another delivery in `delay_seconds`.
    pub fn retry(&self, delay_seconds: u32) {
        let options = js_sys::Object::new();
        let _ = Reflect::set(
            &options,
            &"delaySeconds".into(),
            &JsValue::from(delay_seconds),
        );
        if let Err(e) = self.raw.retry(options.into()) {
            worker::console_error!("queue: retry failed: {e:?}");
        }
    }
}

/// The batch's queue name and its messages.
pub fn read(batch: &RawBatch) -> Result<(String, Vec<Delivered>)> {
    let queue: String = batch.queue()?.into();
    let messages = batch
        .messages()?
        .iter()
        .map(|value| {
            let raw: RawMessage = value.unchecked_into();
            let body = raw.body().map(|b| text(&b)).unwrap_or_default();
            let attempts = Reflect::get(&raw, &"attempts".into())
                .ok()
                .and_then(|a| a.as_f64())
                .map_or(1, |a| a.clamp(1.0, f64::from(u32::MAX)) as u32);
            let timestamp = raw.timestamp().map_or(0, |t| t.get_time().max(0.0) as u64);
            Delivered {
                raw,
                body,
                attempts,
                timestamp,
            }
        })
        .collect();
    Ok((queue, messages))
}

fn text(body: &JsValue) -> String {
    if let Some(text) = body.as_string() {
        return text;
    }
    js_sys::JSON::stringify(body)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

/// Puts `bodies` on the queue bound as `binding`, as text, in as few `sendBatch` calls as the
/// limits allow. Either every call succeeded, or the error says which did not (the earlier
/// ones stand).
pub async fn send(env: &Env, binding: &str, bodies: &[String]) -> Result<()> {
    let queue = env.queue(binding)?;
    let mut rest = bodies;
    while !rest.is_empty() {
        // As many as fit, and always at least one.
        let mut count = 0;
        let mut bytes = 0;
        for body in rest.iter().take(MAX_BATCH_MESSAGES) {
            if count > 0 && bytes + body.len() > MAX_BATCH_BYTES {
                break;
            }
            bytes += body.len();
            count += 1;
        }
        let (batch, tail) = rest.split_at_checked(count).unwrap_or((rest, &[]));
        let chunk: Vec<SendMessage<JsValue>> = batch
            .iter()
            .map(|body| {
                RawMessageBuilder::new(JsValue::from_str(body))
                    .build_with_content_type(QueueContentType::Text)
            })
            .collect();
        within(SEND_TIMEOUT, queue.send_raw_batch(chunk))
            .await
            .ok_or_else(|| {
                worker::Error::RustError(format!(
                    "{binding}: no answer within {} s",
                    SEND_TIMEOUT.as_secs()
                ))
            })??;
        rest = tail;
    }
    Ok(())
}
