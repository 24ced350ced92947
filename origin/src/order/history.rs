//! A principal's orders, newest first, a page at a time (`GET /api/orders`).
//!
//! Both queries walk the index `orders_by_principal (principal, created_at, id)`: the count reads
//! the principal's entries, the page reads them backwards from the newest, with the id breaking
//! ties between orders placed in the same millisecond so that pages never overlap or skip.

use super::{Order, OrderLine, rfc3339};
use crate::db::{Db, on_pool};
use crate::principal::Principal;

/// How many orders a principal placed; bind the principal.
pub const COUNT_BY_PRINCIPAL: &str = "SELECT COUNT(*) FROM orders WHERE principal = $1";

/// One page of a principal's orders with their items, newest first; bind the principal, the page
/// size and the orders to skip. One statement, so the orders and their items come from one
/// snapshot (a second query for the items could see a page shifted by a new order). A LEFT JOIN,
/// so an order is listed even if it had no items.
pub const PAGE_BY_PRINCIPAL: &str = "SELECT o.id, o.total_cents, o.currency, o.created_at, \
            i.product_id, i.quantity, i.unit_price_cents \
     FROM (SELECT id, total_cents, currency, created_at FROM orders WHERE principal = $1 \
           ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3) AS o \
     LEFT JOIN order_items AS i ON i.order_id = o.id \
     ORDER BY o.created_at DESC, o.id DESC, i.line";

/// How many orders `principal` placed.
pub async fn count(db: &Db, principal: &Principal) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_scalar::<_, i64>(COUNT_BY_PRINCIPAL)
            .bind(principal.as_str())
            .fetch_one(pool)
            .await
    })
}

type Row = (i64, i64, String, i64, Option<i64>, Option<i64>, Option<i64>);

/// Up to `limit` of `principal`'s orders, newest first, skipping the `offset` newest.
pub async fn page(
    db: &Db,
    principal: &Principal,
    limit: i64,
    offset: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let rows = on_pool!(db, pool => {
        sqlx::query_as::<_, Row>(PAGE_BY_PRINCIPAL)
            .bind(principal.as_str())
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?
    });
    Ok(group(rows))
}

/// One order per run of rows with the same order id (the rows come sorted by order).
fn group(rows: Vec<Row>) -> Vec<Order> {
    let mut orders: Vec<Order> = Vec::new();
    for (id, total_cents, currency, created_at, product, quantity, unit_price) in rows {
        if orders.last().is_none_or(|order| order.id != id) {
            orders.push(Order {
                id,
                items: Vec::new(),
                total_cents,
                currency,
                created_at: rfc3339(created_at),
            });
        }
        if let (Some(product_id), Some(quantity), Some(unit_price_cents), Some(order)) =
            (product, quantity, unit_price, orders.last_mut())
        {
            order.items.push(OrderLine {
                product_id,
                quantity,
                unit_price_cents,
                line_total_cents: unit_price_cents * quantity,
            });
        }
    }
    orders
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, item: Option<(i64, i64, i64)>) -> Row {
        let field = |pick: fn((i64, i64, i64)) -> i64| item.map(pick);
        (
            id,
            100,
            "EUR".to_owned(),
            0,
            field(|i| i.0),
            field(|i| i.1),
            field(|i| i.2),
        )
    }

    #[test]
    fn rows_become_orders_in_their_order_with_their_lines() {
        let orders = group(vec![
            row(9, Some((3, 2, 50))),
            row(9, Some((8, 1, 20))),
            row(4, None),
            row(2, Some((1, 1, 10))),
        ]);
        let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        assert_eq!(ids, [9, 4, 2]);
        assert_eq!(orders[0].items.len(), 2);
        assert_eq!(orders[0].items[0].line_total_cents, 100);
        assert_eq!(orders[0].items[1].product_id, 8);
        assert!(orders[1].items.is_empty());
        assert_eq!(orders[2].items.len(), 1);
        assert!(group(Vec::new()).is_empty());
    }
}
