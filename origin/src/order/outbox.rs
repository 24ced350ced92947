//! The transactional outbox of an order: one row per consumer, written in the order's own
//! transaction, so a consumer hears of exactly the orders that were committed. The workers that
//! claim and deliver the rows are in [`crate::outbox`].

use serde_json::{Value, json};

use super::Order;
use crate::db::{Db, on_pool};
use crate::principal::Principal;

/// The pending scan: how many rows still wait for delivery (dead letters are counted apart). It
/// reads only the partial index `outbox_pending`, so it costs the backlog, never the delivered
/// history.
pub const PENDING_COUNT: &str =
    "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL";

/// How many outbox rows are not delivered yet ([`PENDING_COUNT`]), for `/metrics`.
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar::<_, i64>(PENDING_COUNT).fetch_one(pool).await)
}

/// A consumer of order events; its row's `topic` column is [`Topic::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Tells the buyer the order was placed.
    Confirmation,
    /// Takes the ordered units out of stock.
    Inventory,
    /// Counts sales.
    Analytics,
}

impl Topic {
    /// Every consumer: each order writes one row for each.
    pub const ALL: [Topic; 3] = [Topic::Confirmation, Topic::Inventory, Topic::Analytics];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Inventory => "inventory",
            Self::Analytics => "analytics",
        }
    }

    /// The topic a row's `topic` column names, if it is one of ours.
    pub fn parse(raw: &str) -> Option<Topic> {
        Self::ALL.into_iter().find(|topic| topic.as_str() == raw)
    }

    /// What this consumer is told about `order`: what it needs and no more (only the
    /// confirmation learns who ordered). Each payload carries the order id, which with the
    /// topic identifies the message, so a consumer can ignore a redelivery.
    pub fn payload(self, order: &Order, principal: &Principal) -> Value {
        match self {
            Self::Confirmation => json!({
                "order_id": order.id,
                "principal": principal.as_str(),
                "total_cents": order.total_cents,
                "currency": order.currency,
            }),
            Self::Inventory => json!({
                "order_id": order.id,
                "items": order
                    .items
                    .iter()
                    .map(|item| json!({"product_id": item.product_id, "quantity": item.quantity}))
                    .collect::<Vec<_>>(),
            }),
            // `items` feeds the rankings; rows written before it existed lack it.
            Self::Analytics => json!({
                "order_id": order.id,
                "items": order
                    .items
                    .iter()
                    .map(|item| json!({
                        "product_id": item.product_id,
                        "quantity": item.quantity,
                        "line_total_cents": item.line_total_cents,
                    }))
                    .collect::<Vec<_>>(),
                "item_count": order.items.len(),
                "units": order.items.iter().map(|item| item.quantity).sum::<i64>(),
                "total_cents": order.total_cents,
                "currency": order.currency,
                "created_at": order.created_at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::OrderLine;

    #[test]
    fn every_payload_names_the_order_and_only_the_confirmation_the_buyer() {
        let order = Order {
            id: 7,
            items: vec![OrderLine {
                product_id: 3,
                quantity: 2,
                unit_price_cents: 150,
                line_total_cents: 300,
            }],
            total_cents: 300,
            currency: "EUR".into(),
            created_at: "1970-01-01T00:00:00.000Z".into(),
        };
        let principal = Principal::parse("ip:203.0.113.7").unwrap();
        for topic in Topic::ALL {
            let payload = topic.payload(&order, &principal);
            assert_eq!(payload["order_id"], 7, "{}", topic.as_str());
            assert_eq!(
                payload.get("principal").is_some(),
                topic == Topic::Confirmation,
                "{}",
                topic.as_str()
            );
        }
        assert_eq!(
            Topic::Inventory.payload(&order, &principal)["items"],
            json!([{"product_id": 3, "quantity": 2}])
        );
        assert_eq!(
            Topic::Analytics.payload(&order, &principal)["items"],
            json!([{"product_id": 3, "quantity": 2, "line_total_cents": 300}])
        );
    }

    #[test]
    fn topics_parse_from_their_column_value_only() {
        for topic in Topic::ALL {
            assert_eq!(Topic::parse(topic.as_str()), Some(topic));
        }
        for bad in ["", "Inventory", "inventory ", "refunds"] {
            assert_eq!(Topic::parse(bad), None, "{bad:?}");
        }
    }
}
