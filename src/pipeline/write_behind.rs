//! The write-behind stage: a request on a `WRITE_BEHIND` route is checked, becomes an event on
//! the `EVENTS` queue, and is answered `202 {"event_id": ..., "status": "queued"}` at once. The
//! origin's synchronous route of the same path is never called.
//!
//! An `Idempotency-Key` makes the event id a function of (principal, key, path, value), so a
//! retried request queues the same event again and the origin counts it once.

use crate::bindings::queue::{self, EVENTS};
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::runtime::{now_millis, random};
use breakwater_core::idempotency::HEADER as IDEMPOTENCY_KEY;
use breakwater_core::intake::Principal;
use breakwater_core::writebehind::{Event, EventId, EventMessage, parse_event};
use worker::Response;

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    let config = ex.config.clone();
    let settings = &config.write_behind;
    let method = ex.head.method.clone();
    let Some((route, id)) = settings.route(method.as_ref(), &ex.path) else {
        return Ok(Flow::Next);
    };
    let id = id.to_owned();
    let content_type = ex.head.header("content-type");
    let body = ex.body(settings.max_event_bytes as u64).await?;
    let input = parse_event(
        route.kind,
        &id,
        content_type.as_deref(),
        &body,
        settings.max_event_bytes,
    )
    .map_err(EdgeError::InvalidEvent)?;

    let principal = ex.principal.key();
    let event_id = match ex.head.header(IDEMPOTENCY_KEY) {
        Some(raw) => {
            let key = config
                .idempotency
                .key(&raw)
                .map_err(|e| EdgeError::IdempotencyKeyInvalid(e.to_string()))?;
            EventId::for_key(&principal, key.as_str(), &ex.path, input.value)
        }
        None => EventId::random(random()),
    };
    let event = Event::new(
        event_id,
        input.kind,
        input.product_id,
        input.value,
        now_millis(),
    )
    .map_err(EdgeError::Internal)?;
    let message = EventMessage::new(
        event,
        (ex.principal != Principal::Anonymous).then_some(principal),
    );
    let json = serde_json::to_string(&message).map_err(|e| EdgeError::Internal(e.to_string()))?;
    queue::send(&ex.env, EVENTS, &[json])
        .await
        .map_err(|e| EdgeError::QueueUnavailable(e.to_string()))?;

    let mut response = Response::from_json(&serde_json::json!({
        "event_id": message.event.id(),
        "status": "queued",
    }))?
    .with_status(202);
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(Flow::Respond(response))
}
