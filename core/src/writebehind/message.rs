//! The `EVENTS` queue message, and the consumer's first look at one: an event it can deliver, or
//! poison that no retry can fix (dead-lettered at once, with the reason).

use super::event::Event;
use serde::{Deserialize, Serialize};

/// The message format this edge writes and reads. A consumer meeting a newer version (a
/// deployment rolled back while messages were queued) dead-letters it rather than guess; the
/// replay endpoint puts it back once a consumer that reads it runs.
pub const MESSAGE_VERSION: u64 = 1;

/// One queued event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMessage {
    /// [`MESSAGE_VERSION`].
    pub v: u64,
    pub event: Event,
    /// Who sent it (`Principal::key`: an address or an API key's hash, never the key): shown
    /// with a dead letter, never sent to the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl EventMessage {
    pub fn new(event: Event, principal: Option<String>) -> Self {
        Self {
            v: MESSAGE_VERSION,
            event,
            principal,
        }
    }
}

/// A message no delivery can succeed with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Poison {
    #[error("oversized: the message has {bytes} bytes; an event message has at most {max}")]
    Oversized { bytes: usize, max: usize },
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("unknown version: {0} (this consumer reads version {MESSAGE_VERSION})")]
    UnknownVersion(String),
}

impl Poison {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "oversized",
            Self::Malformed(_) => "malformed",
            Self::UnknownVersion(_) => "unknown-version",
        }
    }
}

/// Reads a message body (`json`, as the queue delivered it). Size first, so an oversized body
/// is never parsed; then the version, so a future format is named as such and not as "malformed".
pub fn classify(json: &str, max_bytes: usize) -> Result<EventMessage, Poison> {
    if json.len() > max_bytes {
        return Err(Poison::Oversized {
            bytes: json.len(),
            max: max_bytes,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Poison::Malformed(format!("not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(Poison::Malformed("not a JSON object".into()));
    };
    match object.get("v") {
        None => return Err(Poison::Malformed("no version field \"v\"".into())),
        Some(v) if v.as_u64() == Some(MESSAGE_VERSION) => {}
        Some(v) => return Err(Poison::UnknownVersion(v.to_string())),
    }
    serde_json::from_value(value).map_err(|e| Poison::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writebehind::{EventId, EventKind, ProductId};
    use serde_json::json;

    fn message(id: &str) -> EventMessage {
        let event = Event::new(
            EventId::parse(id).unwrap(),
            EventKind::Vote,
            ProductId::new(i64::MAX).unwrap(),
            -1,
            i64::MAX as u64,
        )
        .unwrap();
        EventMessage::new(event, Some(format!("key:{}", "f".repeat(32))))
    }

    #[test]
    fn a_written_message_reads_back() {
        let m = message("e1");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(classify(&json, 1024).unwrap(), m);
    }

    #[test]
    fn the_largest_message_fits_the_smallest_limit() {
        let json = serde_json::to_string(&message(&"x".repeat(64))).unwrap();
        assert!(json.len() <= 256, "{} bytes: {json}", json.len());
    }

    #[test]
    fn poison_is_named() {
        let event = json!({"id": "e", "kind": "view", "product_id": 1, "value": 1, "at": 5});
        let cases = [
            ("x".repeat(2000), "oversized"),
            ("not json".into(), "malformed"),
            ("[1]".into(), "malformed"),
            (json!({"event": event}).to_string(), "malformed"),
            (json!({"v": 2, "event": event}).to_string(), "unknown-version"),
            (json!({"v": "1", "event": event}).to_string(), "unknown-version"),
            (json!({"v": 1, "event": event, "extra": true}).to_string(), "malformed"),
            (
                json!({"v": 1, "event": {"id": "e", "kind": "view", "product_id": 0, "value": 1, "at": 5}})
                    .to_string(),
                "malformed",
            ),
            (
                json!({"v": 1, "event": {"id": "e", "kind": "vote", "product_id": 1, "value": 3, "at": 5}})
                    .to_string(),
                "malformed",
            ),
        ];
        for (json, kind) in cases {
            let poison = classify(&json, 1024).unwrap_err();
            assert_eq!(poison.as_str(), kind, "{json}: {poison}");
            assert!(
                poison
                    .to_string()
                    .starts_with(kind.replace('-', " ").as_str())
            );
        }
        assert!(classify(&json!({"v": 1, "event": event}).to_string(), 1024).is_ok());
    }
}
