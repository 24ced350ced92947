//! Orders: what a caller buys, placed idempotently with a transactional outbox, and read back by
//! the caller alone.
//!
//! [`request`] parses and prices the body of `POST /api/orders`, [`store`] writes the order, its
//! items, its outbox rows and its stored answer in one transaction, [`outbox`] says what each
//! consumer is told, [`history`] lists a principal's orders.

pub mod history;
pub mod outbox;
pub mod request;
pub mod store;

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use crate::error::ApiError;

pub use request::{OrderBody, OrderRequest};
pub use store::{NewOrder, Placement, count_with_key, find, place};

/// An order, as stored and as served. The bytes of its JSON are what `POST` answers (and
/// replays) and what `GET` serves, so nothing in it may depend on when it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: i64,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    pub currency: String,
    /// RFC 3339, UTC, milliseconds.
    pub created_at: String,
}

/// One line of an order, at the price it was bought for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// An order id taken from a URL: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderId(i64);

impl OrderId {
    /// Parses the `{id}` path segment.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        crate::error::positive_id(raw).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Unix milliseconds as RFC 3339 (`2025-01-31T09:15:02.123Z`).
pub fn rfc3339(unix_ms: i64) -> String {
    DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_738_314_902_123), "2025-01-31T09:15:02.123Z");
    }

    #[test]
    fn only_positive_integers_are_order_ids() {
        assert_eq!(OrderId::parse("42").unwrap().get(), 42);
        for bad in ["0", "-1", "abc", "", "1.0", "99999999999999999999"] {
            assert!(OrderId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
