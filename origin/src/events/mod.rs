//! Write-behind events: product views and votes that the edge accepted with a `202`, queued, and
//! now delivers in batches (`POST /internal/events/batch`, see [`crate::routes::events`]).
//!
//! The batch's JSON, and every rule its fields obey, are core's ([`BatchRequest`], answered with
//! a [`BatchResponse`](breakwater_core::writebehind::BatchResponse)): the edge writes what the
//! origin reads from one declaration, and a batch that deserialises is one [`store::apply`] can
//! apply. That applies it in one transaction and records every event id, so a redelivered event
//! (the queue delivers at least once) changes nothing. The synchronous twins
//! (`POST /api/products/{id}/views|votes`) apply a batch of one ([`single`]).

pub mod store;

use breakwater_core::writebehind::{BatchId, BatchRequest, Event};

/// A batch of the one event `event` (the synchronous routes), under a batch id of its own:
/// `sync:` and the event id, which no queued batch (`b1:…`) can have. The error is a reason.
pub fn single(event: Event) -> Result<BatchRequest, String> {
    let batch_id = BatchId::parse(&format!("sync:{}", event.id()))?;
    Ok(BatchRequest {
        batch_id,
        events: vec![event],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakwater_core::writebehind::{EventId, EventKind, ProductId};

    #[test]
    fn a_single_event_is_a_batch_of_its_own() {
        let event = Event::new(
            EventId::random([0xab; 16]),
            EventKind::View,
            ProductId::new(7).unwrap(),
            1,
            0,
        )
        .unwrap();
        let batch = single(event.clone()).unwrap();
        assert_eq!(batch.batch_id.as_str(), format!("sync:{}", "ab".repeat(16)));
        assert_eq!(batch.events, [event]);
    }
}
