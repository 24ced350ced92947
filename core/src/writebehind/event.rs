//! The event itself, in the shape the origin's batch endpoint reads: newtypes that can only hold
//! what that endpoint accepts, so a queued event is never refused for its form.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::hex;

/// What an event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A product page was viewed; the value is always 1.
    View,
    /// A vote for (1) or against (-1) a product.
    Vote,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Vote => "vote",
        }
    }

    /// Whether `value` is one this kind can carry.
    pub fn allows(self, value: i64) -> bool {
        match self {
            Self::View => value == 1,
            Self::Vote => value == 1 || value == -1,
        }
    }
}

/// Longest event id the origin accepts.
pub const MAX_EVENT_ID: usize = 64;

/// An event id: 1 to [`MAX_EVENT_ID`] characters of `[A-Za-z0-9._:-]`. The edge makes them from
/// 128 random bits ([`EventId::random`]) or, for a request with an `Idempotency-Key`, from the key
/// ([`EventId::for_key`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        check_id(raw, MAX_EVENT_ID)?;
        Ok(Self(raw.to_owned()))
    }

    /// 128 random bits as 32 hex digits.
    pub fn random(bytes: [u8; 16]) -> Self {
        Self(hex(&bytes))
    }

    /// The id of the event a request with `Idempotency-Key: key` makes: the same (principal,
    /// key, route path, value) always names the same event, so a retried request is counted once
    /// by the origin's per-event dedup. 128 bits of a SHA-256, as 32 hex digits.
    pub fn for_key(principal: &str, key: &str, path: &str, value: i64) -> Self {
        let mut hasher = Sha256::new();
        let value = value.to_string();
        for part in [
            "breakwater write-behind event v1",
            principal,
            key,
            path,
            &value,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Self(hex(digest.get(..16).unwrap_or_default()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct ProductId(i64);

impl ProductId {
    pub fn new(id: i64) -> Result<Self, String> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(format!("{id} is not a positive integer"))
        }
    }

    /// A path segment: ASCII digits only (no sign, no spaces), a positive `i64`.
    pub fn parse(segment: &str) -> Result<Self, String> {
        if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{segment:?} is not a positive integer"));
        }
        let id: i64 = segment
            .parse()
            .map_err(|_| format!("{segment:?} is too large for a product id"))?;
        Self::new(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for ProductId {
    type Error = String;
    fn try_from(id: i64) -> Result<Self, String> {
        Self::new(id)
    }
}

impl From<ProductId> for i64 {
    fn from(id: ProductId) -> i64 {
        id.0
    }
}

/// One event, exactly as the origin's batch endpoint reads it. Only [`Event::new`] (or
/// deserialising, which calls it) builds one, so `value` always suits `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEvent")]
pub struct Event {
    id: EventId,
    kind: EventKind,
    product_id: ProductId,
    value: i64,
    /// Unix milliseconds when the edge accepted it.
    at: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    id: EventId,
    kind: EventKind,
    product_id: ProductId,
    value: i64,
    at: u64,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;
    fn try_from(raw: RawEvent) -> Result<Self, String> {
        Event::new(raw.id, raw.kind, raw.product_id, raw.value, raw.at)
    }
}

impl Event {
    pub fn new(
        id: EventId,
        kind: EventKind,
        product_id: ProductId,
        value: i64,
        at: u64,
    ) -> Result<Self, String> {
        if !kind.allows(value) {
            let allowed = match kind {
                EventKind::View => "1",
                EventKind::Vote => "1 or -1",
            };
            return Err(format!(
                "value {value} is not {allowed} (a {})",
                kind.as_str()
            ));
        }
        // The origin stores `at` as a signed 64-bit integer.
        if at > i64::MAX as u64 {
            return Err(format!("at {at} is not Unix milliseconds"));
        }
        Ok(Self {
            id,
            kind,
            product_id,
            value,
            at,
        })
    }

    pub fn id(&self) -> &EventId {
        &self.id
    }

    pub fn kind(&self) -> EventKind {
        self.kind
    }

    pub fn product_id(&self) -> ProductId {
        self.product_id
    }

    pub fn value(&self) -> i64 {
        self.value
    }

    pub fn at(&self) -> u64 {
        self.at
    }
}

/// The rule for event and batch ids, which travel in logs, dead-letter listings and the origin's
/// tables: 1 to `max` characters of `[A-Za-z0-9._:-]`.
pub(super) fn check_id(raw: &str, max: usize) -> Result<(), String> {
    if raw.is_empty() || raw.len() > max {
        return Err(format!("must hold 1 to {max} characters"));
    }
    match raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        Some(bad) => Err(format!("{bad:?} is not one of A-Z a-z 0-9 . _ : -")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_ids_hold_only_what_the_origin_accepts() {
        for good in ["a", "0f.A_b:c-d", &"x".repeat(64)] {
            assert!(EventId::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["", &"x".repeat(65), "a b", "a/b", "é", "a\n"] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
        let random = EventId::random([0xab; 16]);
        assert_eq!(random.as_str(), "ab".repeat(16));
        assert!(EventId::parse(random.as_str()).is_ok());
    }

    #[test]
    fn key_derived_ids_depend_on_every_part() {
        let base = EventId::for_key("ip:1.2.3.4", "k1", "/api/products/1/votes", 1);
        assert_eq!(base.as_str().len(), 32);
        assert_eq!(
            base,
            EventId::for_key("ip:1.2.3.4", "k1", "/api/products/1/votes", 1)
        );
        for other in [
            EventId::for_key("ip:1.2.3.5", "k1", "/api/products/1/votes", 1),
            EventId::for_key("ip:1.2.3.4", "k2", "/api/products/1/votes", 1),
            EventId::for_key("ip:1.2.3.4", "k1", "/api/products/2/votes", 1),
            EventId::for_key("ip:1.2.3.4", "k1", "/api/products/1/votes", -1),
            // Length prefixes: moving a character between parts changes the id.
            EventId::for_key("ip:1.2.3.4k", "1", "/api/products/1/votes", 1),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn product_ids_are_positive_digit_strings() {
        assert_eq!(ProductId::parse("42").unwrap().get(), 42);
        assert_eq!(ProductId::parse("007").unwrap().get(), 7);
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "abc",
            "9223372036854775808",
        ] {
            assert!(ProductId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_serialise_in_the_origin_wire_format() {
        let event = Event::new(
            EventId::parse("e1").unwrap(),
            EventKind::Vote,
            ProductId::new(3).unwrap(),
            -1,
            1_700_000_000_000,
        )
        .unwrap();
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(
            wire,
            json!({"id": "e1", "kind": "vote", "product_id": 3, "value": -1, "at": 1_700_000_000_000u64})
        );
        assert_eq!(serde_json::from_value::<Event>(wire).unwrap(), event);
    }

    #[test]
    fn values_must_suit_the_kind() {
        let id = || EventId::parse("e").unwrap();
        let p = ProductId::new(1).unwrap();
        assert!(Event::new(id(), EventKind::View, p, 1, 0).is_ok());
        assert!(Event::new(id(), EventKind::View, p, -1, 0).is_err());
        assert!(Event::new(id(), EventKind::Vote, p, 2, 0).is_err());
        assert!(Event::new(id(), EventKind::Vote, p, 0, 0).is_err());
        let bad = json!({"id": "e", "kind": "view", "product_id": 1, "value": 5, "at": 0});
        assert!(serde_json::from_value::<Event>(bad).is_err());
        let extra =
            json!({"id": "e", "kind": "view", "product_id": 1, "value": 1, "at": 0, "x": 1});
        assert!(serde_json::from_value::<Event>(extra).is_err());
    }
}
