//! The origin's batch endpoint (`POST {batch_path}`, `/internal/events/batch` by default): the
//! one declaration of its JSON, which the edge's queue consumer writes and reads and the origin
//! reads and writes. The tests below pin the exact documents, so neither end can drift alone.
//!
//! Request: `{"batch_id", "events": [{"id", "kind", "product_id", "value", "at"}]}` (the events
//! as [`Event`] serialises them). Answer (`200`): `{"batch_id", "applied", "duplicates",
//! "rejected": [{"id", "reason"}]}`. Deserialising a request checks everything the endpoint
//! requires, so a [`BatchRequest`] the origin holds is one it can apply.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::{Event, EventId, check_id};

/// Most events in one batch. The edge's queue hands its consumer at most 100; the bound keeps a
/// batch inside the origin's body limit and its transaction short.
pub const MAX_EVENTS: usize = 500;
/// Longest batch id.
pub const MAX_BATCH_ID: usize = 128;

/// A batch id: 1 to [`MAX_BATCH_ID`] characters of `[A-Za-z0-9._:-]`, the rule event ids follow
/// too. The edge's are [`batch_id`]s (`b1:` and 64 hex
/// digits); the origin's synchronous routes name their batches of one themselves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BatchId(String);

impl BatchId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        check_id(raw, MAX_BATCH_ID)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BatchId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<BatchId> for String {
    fn from(id: BatchId) -> String {
        id.0
    }
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a batch of these events: a SHA-256 over the sorted ids, so the same set (a
/// redelivery, in whatever order the queue hands it back) always has the same id, and any other
/// set another. `b1:` and 64 hex digits: always a valid [`BatchId`].
pub fn batch_id<'a>(ids: impl IntoIterator<Item = &'a EventId>) -> String {
    let mut ids: Vec<&str> = ids.into_iter().map(EventId::as_str).collect();
    ids.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(b"breakwater event batch v1");
    for id in ids {
        hasher.update((id.len() as u64).to_be_bytes());
        hasher.update(id.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("b1:{hex}")
}

/// The batch endpoint's body. Deserialising it refuses an empty batch and one of more than
/// [`MAX_EVENTS`] events; every event was checked by [`Event`]'s own deserialiser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawBatchRequest")]
pub struct BatchRequest {
    pub batch_id: BatchId,
    pub events: Vec<Event>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatchRequest {
    batch_id: BatchId,
    events: Vec<Event>,
}

impl TryFrom<RawBatchRequest> for BatchRequest {
    type Error = String;
    fn try_from(raw: RawBatchRequest) -> Result<Self, String> {
        if raw.events.is_empty() || raw.events.len() > MAX_EVENTS {
            return Err(format!(
                "events: must hold 1 to {MAX_EVENTS} events, not {}",
                raw.events.len()
            ));
        }
        Ok(Self {
            batch_id: raw.batch_id,
            events: raw.events,
        })
    }
}

impl BatchRequest {
    /// A batch of `events` (1 to [`MAX_EVENTS`]: a queue batch always is) under their
    /// [`batch_id`].
    pub fn new(events: Vec<Event>) -> Self {
        Self {
            batch_id: BatchId(batch_id(events.iter().map(Event::id))),
            events,
        }
    }
}

/// The batch endpoint's `200` body: what this delivery of the batch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub batch_id: BatchId,
    /// Events counted by this delivery.
    pub applied: u64,
    /// Events recorded by an earlier delivery (or earlier in this batch): counted nothing now.
    pub duplicates: u64,
    /// Events that can never apply, with why; the edge dead-letters them. Always sent; a
    /// missing list reads as empty.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

/// An event the origin will never apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub id: EventId,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writebehind::{EventKind, ProductId};
    use serde_json::json;

    fn event(id: &str) -> Event {
        Event::new(
            EventId::parse(id).unwrap(),
            EventKind::View,
            ProductId::new(1).unwrap(),
            1,
            10,
        )
        .unwrap()
    }

    fn batch(ids: &[&str]) -> BatchRequest {
        BatchRequest::new(ids.iter().map(|id| event(id)).collect())
    }

    /// Parses `json` as `T` and serialises it back: the bytes must come out as they went in.
    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(json: &str) -> T {
        let parsed: T = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        parsed
    }

    #[test]
    fn the_request_document_is_pinned() {
        let json = concat!(
            r#"{"batch_id":"b1:0f","events":["#,
            r#"{"id":"e1","kind":"view","product_id":5,"value":1,"at":1700000000000},"#,
            r#"{"id":"e2","kind":"vote","product_id":6,"value":-1,"at":1700000000001}"#,
            r#"]}"#
        );
        let request: BatchRequest = round_trip(json);
        assert_eq!(request.batch_id.as_str(), "b1:0f");
        assert_eq!(request.events.len(), 2);
        assert_eq!(request.events[1].kind(), EventKind::Vote);
        assert_eq!(request.events[1].value(), -1);
        assert_eq!(request.events[1].at(), 1_700_000_000_001);
    }

    #[test]
    fn the_response_document_is_pinned() {
        let json = concat!(
            r#"{"batch_id":"batch-1","applied":1,"duplicates":2,"#,
            r#""rejected":[{"id":"poison","reason":"product 99999999 does not exist"}]}"#
        );
        let response: BatchResponse = round_trip(json);
        assert_eq!(response.rejected[0].id.as_str(), "poison");
        // Nothing rejected is still an empty list on the wire; reading, it may be left out.
        round_trip::<BatchResponse>(r#"{"batch_id":"b","applied":6,"duplicates":0,"rejected":[]}"#);
        let terse: BatchResponse =
            serde_json::from_str(r#"{"batch_id":"b","applied":0,"duplicates":0}"#).unwrap();
        assert!(terse.rejected.is_empty());
    }

    #[test]
    fn requests_the_endpoint_would_refuse_do_not_parse_and_say_why() {
        fn event(kind: &str, value: i64, at: i64) -> serde_json::Value {
            json!({"id": "e", "kind": kind, "product_id": 1, "value": value, "at": at})
        }
        let ok = event("view", 1, 0);
        let cases = [
            (
                json!({"batch_id": "b", "events": []}),
                "events: must hold 1 to 500",
            ),
            (
                json!({"batch_id": "b", "events": vec![ok.clone(); MAX_EVENTS + 1]}),
                "events: must hold 1 to 500 events, not 501",
            ),
            (
                json!({"batch_id": "", "events": [ok]}),
                "1 to 128 characters",
            ),
            (
                json!({"batch_id": "a b", "events": [ok]}),
                "' ' is not one of",
            ),
            (
                json!({"batch_id": "b", "events": [ok], "extra": 1}),
                "unknown field `extra`",
            ),
            (json!({"events": [ok]}), "missing field `batch_id`"),
            (
                json!({"batch_id": "b", "events": [event("vote", 2, 0)]}),
                "value 2 is not 1 or -1 (a vote)",
            ),
            (
                json!({"batch_id": "b", "events": [event("view", 1, -1)]}),
                "expected u64",
            ),
        ];
        for (body, reason) in cases {
            let error = serde_json::from_value::<BatchRequest>(body.clone()).unwrap_err();
            assert!(error.to_string().contains(reason), "{body}: {error}");
        }
        let most = json!({"batch_id": "b", "events": vec![ok; MAX_EVENTS]});
        assert_eq!(
            serde_json::from_value::<BatchRequest>(most)
                .unwrap()
                .events
                .len(),
            MAX_EVENTS
        );
    }

    #[test]
    fn the_batch_id_names_the_set_of_events() {
        let a = batch(&["e1", "e2", "e3"]);
        assert_eq!(a.batch_id, batch(&["e3", "e1", "e2"]).batch_id);
        assert_ne!(a.batch_id, batch(&["e1", "e2"]).batch_id);
        // Length prefixes: ["ab", "c"] is not ["a", "bc"].
        assert_ne!(batch(&["ab", "c"]).batch_id, batch(&["a", "bc"]).batch_id);
        assert_eq!(a.batch_id.as_str().len(), 67);
        assert_eq!(BatchId::parse(a.batch_id.as_str()), Ok(a.batch_id.clone()));
        let wire = serde_json::to_value(&a).unwrap();
        assert_eq!(wire["events"][0]["id"], "e1");
        assert_eq!(wire["batch_id"], json!(a.batch_id.as_str()));
    }
}
