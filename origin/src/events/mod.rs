//! Write-behind events: product views and votes that the edge accepted with a `202`, queued, and
//! now delivers in batches (`POST /internal/events/batch`, see [`crate::routes::events`]).
//!
//! [`Batch::parse`] checks a batch as it arrives; [`store::apply`] applies it in one transaction
//! and records every event id, so a redelivered event (the queue delivers at least once) changes
//! nothing. The synchronous twins (`POST /api/products/{id}/views|votes`) apply a batch of one.

pub mod store;

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::ApiError;

/// Most events in one batch: the edge's queue batches at most 100; the bound keeps a batch inside
/// the body limit and one transaction short.
pub const MAX_EVENTS: usize = 500;
/// Longest event id (the edge's are 32 hex digits).
pub const MAX_EVENT_ID: usize = 64;
/// Longest batch id.
pub const MAX_BATCH_ID: usize = 128;

/// What an event counts: the edge's own type, so both ends agree on the kinds and their values.
pub use breakwater_core::writebehind::EventKind as Kind;

/// A batch as the edge sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub batch_id: String,
    pub events: Vec<EventBody>,
}

/// One event as the edge sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    pub id: String,
    pub kind: Kind,
    pub product_id: i64,
    pub value: i64,
    /// Unix milliseconds when the edge accepted it.
    pub at: i64,
}

/// A checked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: Kind,
    pub product_id: i64,
    pub value: i64,
    pub at: i64,
}

/// A checked batch: an id and 1 to [`MAX_EVENTS`] events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub events: Vec<Event>,
}

impl Batch {
    /// Checks `body`; the error names the first offending field (`events[3].value`).
    pub fn parse(body: BatchBody) -> Result<Batch, ApiError> {
        check_id("batch_id".into(), &body.batch_id, MAX_BATCH_ID)?;
        if body.events.is_empty() || body.events.len() > MAX_EVENTS {
            return Err(invalid(
                "events".into(),
                format!("must hold 1 to {MAX_EVENTS} events"),
            ));
        }
        let events = body
            .events
            .into_iter()
            .enumerate()
            .map(|(index, event)| Event::parse(index, event))
            .collect::<Result<_, _>>()?;
        Ok(Batch {
            id: body.batch_id,
            events,
        })
    }

    /// A batch of the one event `id` (the synchronous routes), under its own batch id.
    pub fn single(id: String, kind: Kind, product_id: i64, value: i64, at: i64) -> Batch {
        Batch {
            id: format!("sync:{id}"),
            events: vec![Event {
                id,
                kind,
                product_id,
                value,
                at,
            }],
        }
    }
}

impl Event {
    fn parse(index: usize, body: EventBody) -> Result<Event, ApiError> {
        let field = |name: &str| Cow::Owned(format!("events[{index}].{name}"));
        check_id(field("id"), &body.id, MAX_EVENT_ID)?;
        if body.product_id <= 0 {
            return Err(invalid(
                field("product_id"),
                "must be a positive integer".into(),
            ));
        }
        if !body.kind.allows(body.value) {
            let allowed = match body.kind {
                Kind::View => "1",
                Kind::Vote => "1 or -1",
            };
            return Err(invalid(
                field("value"),
                format!("must be {allowed} for a {}", body.kind.as_str()),
            ));
        }
        if body.at < 0 {
            return Err(invalid(field("at"), "must be Unix milliseconds".into()));
        }
        Ok(Event {
            id: body.id,
            kind: body.kind,
            product_id: body.product_id,
            value: body.value,
            at: body.at,
        })
    }
}

/// Ids travel in logs and the edge's dead-letter list: 1 to `max` of `[A-Za-z0-9._:-]`.
fn check_id(field: Cow<'static, str>, id: &str, max: usize) -> Result<(), ApiError> {
    let valid = (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be 1 to {max} characters of letters, digits and . _ : -"),
        ))
    }
}

fn invalid(field: Cow<'static, str>, reason: String) -> ApiError {
    ApiError::InvalidField { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(events: Vec<EventBody>) -> BatchBody {
        BatchBody {
            batch_id: "b-1".into(),
            events,
        }
    }

    fn event(kind: Kind, value: i64) -> EventBody {
        EventBody {
            id: "e:1".into(),
            kind,
            product_id: 7,
            value,
            at: 1,
        }
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::InvalidField { field, .. } => field.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn views_count_one_and_votes_one_either_way() {
        for (kind, value) in [(Kind::View, 1), (Kind::Vote, 1), (Kind::Vote, -1)] {
            let batch = Batch::parse(body(vec![event(kind, value)])).unwrap();
            assert_eq!(batch.events[0].value, value);
        }
        for (kind, value) in [
            (Kind::View, 2),
            (Kind::View, -1),
            (Kind::Vote, 0),
            (Kind::Vote, 2),
        ] {
            let error = Batch::parse(body(vec![event(kind, value)])).unwrap_err();
            assert_eq!(field_of(error), "events[0].value");
        }
    }

    #[test]
    fn the_first_bad_field_is_named() {
        let mut bad = event(Kind::View, 1);
        bad.product_id = 0;
        let error = Batch::parse(body(vec![event(Kind::View, 1), bad])).unwrap_err();
        assert_eq!(field_of(error), "events[1].product_id");

        let mut bad = event(Kind::View, 1);
        bad.id = "has space".into();
        assert_eq!(
            field_of(Batch::parse(body(vec![bad])).unwrap_err()),
            "events[0].id"
        );

        let mut batch = body(vec![event(Kind::View, 1)]);
        batch.batch_id = "x".repeat(MAX_BATCH_ID + 1);
        assert_eq!(field_of(Batch::parse(batch).unwrap_err()), "batch_id");
    }

    #[test]
    fn a_batch_holds_one_to_the_maximum() {
        assert_eq!(field_of(Batch::parse(body(vec![])).unwrap_err()), "events");
        let many = (0..=MAX_EVENTS).map(|_| event(Kind::View, 1)).collect();
        assert_eq!(field_of(Batch::parse(body(many)).unwrap_err()), "events");
        let most = (0..MAX_EVENTS).map(|_| event(Kind::View, 1)).collect();
        assert_eq!(Batch::parse(body(most)).unwrap().events.len(), MAX_EVENTS);
    }
}
