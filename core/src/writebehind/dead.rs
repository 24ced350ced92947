//! Dead letters: messages the consumer gave up on, with why. The consumer sends a
//! [`DeadLetterEnvelope`] to the dead-letter queue, so the reason travels with the message; the
//! dead-letter queue's consumer keeps each as a [`DeadLetter`] (in `CONTROL`), where the admin
//! endpoints list them and replay them ([`ReplayRequest`]) onto `EVENTS` unchanged.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::event::EventId;

/// The envelope format this edge writes.
pub const ENVELOPE_VERSION: u64 = 1;
/// Largest message body kept whole. A larger one (oversized poison) keeps only its start, so the
/// envelope stays inside a queue message and a stored value; it cannot be replayed.
pub const MAX_KEPT_BYTES: usize = 16 * 1024;
const PREVIEW_BYTES: usize = 1024;

/// What the consumer puts on the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterEnvelope {
    /// [`ENVELOPE_VERSION`]; also what tells an envelope from a bare message that the queue
    /// itself moved here after `max_retries`.
    pub dead_letter: u64,
    /// The message body as delivered (JSON; a string if it was not JSON or was cut short).
    pub message: Value,
    /// `message` holds only the start of the body.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    pub reason: String,
    /// Deliveries it had, the last included.
    pub attempts: u32,
    /// Unix ms when it was first queued, and when it was dead-lettered.
    pub first_seen: u64,
    pub at: u64,
}

impl DeadLetterEnvelope {
    /// An envelope for the message body `raw` (as delivered).
    pub fn new(raw: &str, reason: String, attempts: u32, first_seen: u64, at: u64) -> Self {
        let (message, truncated) = keep(raw);
        Self {
            dead_letter: ENVELOPE_VERSION,
            message,
            truncated,
            reason,
            attempts,
            first_seen,
            at,
        }
    }
}

/// One stored dead letter, as the list endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// [`dead_letter_id`]: the event id when the message has one.
    pub id: String,
    pub reason: String,
    /// `None` when the queue moved it here itself (no envelope, so no count).
    pub attempts: Option<u32>,
    pub first_seen: Option<u64>,
    /// Unix ms when it was dead-lettered.
    pub at: u64,
    pub message: Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// What the dead-letter queue's consumer records for a message whose envelope did not parse.
pub const NO_REASON: &str = "moved to the dead-letter queue by the queue itself after max_retries, \
     without a reason from the consumer";

impl DeadLetter {
    /// Reads a dead-letter queue message: `raw` is its body, `timestamp` when it was queued,
    /// `now` when it arrived. An envelope gives everything; anything else (the queue moved the
    /// message itself, or a stray) is kept whole with [`NO_REASON`].
    pub fn from_queue(raw: &str, timestamp: u64, now: u64) -> Self {
        match serde_json::from_str::<DeadLetterEnvelope>(raw) {
            Ok(envelope) if envelope.dead_letter == ENVELOPE_VERSION => Self {
                id: dead_letter_id(&envelope.message),
                reason: envelope.reason,
                attempts: Some(envelope.attempts),
                first_seen: Some(envelope.first_seen),
                at: envelope.at,
                message: envelope.message,
                truncated: envelope.truncated,
            },
            _ => {
                let (message, truncated) = keep(raw);
                Self {
                    id: dead_letter_id(&message),
                    reason: NO_REASON.to_owned(),
                    attempts: None,
                    first_seen: Some(timestamp),
                    at: now,
                    message,
                    truncated,
                }
            }
        }
    }

    /// Whether a replay can put it back: only whole messages can.
    pub fn replayable(&self) -> bool {
        !self.truncated
    }
}

/// The name a dead letter is listed and replayed by: the message's event id when it has a valid
/// one (so dead-lettering the same event again replaces its entry), else `raw-` and 32 hex
/// digits of a SHA-256 of the message.
pub fn dead_letter_id(message: &Value) -> String {
    if let Some(id) = message
        .get("event")
        .and_then(|e| e.get("id"))
        .and_then(Value::as_str)
        .and_then(|id| EventId::parse(id).ok())
    {
        return id.as_str().to_owned();
    }
    let digest = Sha256::digest(message.to_string().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("raw-{hex}")
}

/// The body as JSON when it is JSON, else as a string; cut to a preview above [`MAX_KEPT_BYTES`].
fn keep(raw: &str) -> (Value, bool) {
    if raw.len() > MAX_KEPT_BYTES {
        let mut end = PREVIEW_BYTES;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        return (Value::String(raw[..end].to_owned()), true);
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    (value, false)
}

/// Most ids one replay request may name.
pub const MAX_REPLAY_IDS: usize = 1000;

/// `POST /_breakwater/dead-events/replay`: `{"ids": [...]}` or `{"all": true}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayRequest {
    Ids(Vec<String>),
    All,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplay {
    ids: Option<Vec<String>>,
    all: Option<bool>,
}

impl ReplayRequest {
    /// Parses the body; the error says what is wrong with it.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: RawReplay = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        match (raw.ids, raw.all) {
            (Some(_), Some(_)) => Err("give either \"ids\" or \"all\", not both".into()),
            (None, Some(true)) => Ok(Self::All),
            (None, _) => Err(r#"give {"ids": [...]} or {"all": true}"#.into()),
            (Some(ids), None) if ids.is_empty() => Err("\"ids\" is empty".into()),
            (Some(ids), None) if ids.len() > MAX_REPLAY_IDS => Err(format!(
                "\"ids\" names {}; at most {MAX_REPLAY_IDS} per request",
                ids.len()
            )),
            (Some(mut ids), None) => {
                ids.sort_unstable();
                ids.dedup();
                Ok(Self::Ids(ids))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event_message(id: &str) -> String {
        json!({"v": 1, "event": {"id": id, "kind": "view", "product_id": 1, "value": 1, "at": 5}})
            .to_string()
    }

    #[test]
    fn an_envelope_round_trips_into_a_dead_letter() {
        let raw = event_message("e1");
        let envelope = DeadLetterEnvelope::new(&raw, "rejected".into(), 1, 100, 200);
        let wire = serde_json::to_string(&envelope).unwrap();
        let dead = DeadLetter::from_queue(&wire, 150, 999);
        assert_eq!(dead.id, "e1");
        assert_eq!(dead.reason, "rejected");
        assert_eq!(dead.attempts, Some(1));
        assert_eq!((dead.first_seen, dead.at), (Some(100), 200));
        assert_eq!(dead.message.to_string(), raw);
        assert!(dead.replayable());
    }

    #[test]
    fn a_bare_message_moved_by_the_queue_is_kept_without_a_reason() {
        let dead = DeadLetter::from_queue(&event_message("e2"), 150, 999);
        assert_eq!(dead.id, "e2");
        assert_eq!(dead.reason, NO_REASON);
        assert_eq!(dead.attempts, None);
        assert_eq!((dead.first_seen, dead.at), (Some(150), 999));
        let stray = DeadLetter::from_queue("hello", 1, 2);
        assert_eq!(stray.message, json!("hello"));
        assert!(
            stray.id.starts_with("raw-") && stray.id.len() == 36,
            "{}",
            stray.id
        );
        assert_eq!(stray.id, DeadLetter::from_queue("hello", 3, 4).id);
        // Unknown envelope versions are strays too: nothing is lost, it is kept whole.
        let future = json!({"dead_letter": 2, "message": {}, "reason": "x", "attempts": 1,
                            "first_seen": 1, "at": 2})
        .to_string();
        assert_eq!(DeadLetter::from_queue(&future, 1, 2).reason, NO_REASON);
    }

    #[test]
    fn oversized_bodies_keep_a_preview_and_cannot_be_replayed() {
        let raw = "é".repeat(MAX_KEPT_BYTES);
        let envelope = DeadLetterEnvelope::new(&raw, "oversized".into(), 1, 1, 2);
        assert!(envelope.truncated);
        let preview = envelope.message.as_str().unwrap();
        assert!(preview.len() <= PREVIEW_BYTES);
        let dead = DeadLetter::from_queue(&serde_json::to_string(&envelope).unwrap(), 1, 2);
        assert!(!dead.replayable());
        assert!(dead.id.starts_with("raw-"));
    }

    #[test]
    fn replay_requests_name_ids_or_all() {
        assert_eq!(
            ReplayRequest::parse(br#"{"ids": ["b", "a", "b"]}"#),
            Ok(ReplayRequest::Ids(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            ReplayRequest::parse(br#"{"all": true}"#),
            Ok(ReplayRequest::All)
        );
        let too_many = json!({"ids": vec!["x"; MAX_REPLAY_IDS + 1]}).to_string();
        for bad in [
            br#"{}"#.as_slice(),
            br#"{"all": false}"#,
            br#"{"ids": []}"#,
            br#"{"ids": ["a"], "all": true}"#,
            br#"{"every": true}"#,
            b"nope",
            too_many.as_bytes(),
        ] {
            assert!(
                ReplayRequest::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
