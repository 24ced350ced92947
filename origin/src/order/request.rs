//! The body of `POST /api/orders`, parsed once into lines the shop accepts, then priced against
//! the catalogue inside the order's transaction.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Order, OrderLine, rfc3339};
use crate::error::ApiError;
use crate::product_patch::MAX_SAFE_INTEGER;

/// Most lines in one order: bounds the work (and the statement size) of one request.
pub const MAX_ITEMS: usize = 50;
/// Most units of one product in one order.
pub const MAX_QUANTITY: i64 = 100;

/// The body as sent: `{"items": [{"product_id": 1, "quantity": 2}, …]}`. Unknown fields and
/// `null`s are refused, so a misspelt `quantitiy` is an error rather than a silent default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    pub items: Vec<LineBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    pub product_id: i64,
    pub quantity: i64,
}

/// An order request that can be priced: 1 to [`MAX_ITEMS`] lines, each a positive product id
/// with 1 to [`MAX_QUANTITY`] units, no product twice. Lines keep the order they were sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    lines: Vec<Line>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub product_id: i64,
    pub quantity: i64,
}

/// A product's current price, as the catalogue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub cents: i64,
    pub currency: String,
}

/// An order request with prices: everything of the order but its id and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    pub currency: String,
}

impl OrderRequest {
    /// Checks the body; the first field out of range is the error, named by its path
    /// (`items[2].quantity`).
    pub fn parse(body: OrderBody) -> Result<Self, ApiError> {
        let count = body.items.len();
        if !(1..=MAX_ITEMS).contains(&count) {
            return Err(invalid(
                "items".to_owned(),
                format!("must hold from 1 to {MAX_ITEMS} items, not {count}"),
            ));
        }
        let mut first_index = HashMap::with_capacity(count);
        let mut lines = Vec::with_capacity(count);
        for (i, item) in body.items.into_iter().enumerate() {
            if item.product_id <= 0 {
                return Err(invalid(
                    format!("items[{i}].product_id"),
                    "must be a positive integer".to_owned(),
                ));
            }
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                return Err(invalid(
                    format!("items[{i}].quantity"),
                    format!("must be from 1 to {MAX_QUANTITY}"),
                ));
            }
            if let Some(first) = first_index.insert(item.product_id, i) {
                return Err(invalid(
                    format!("items[{i}].product_id"),
                    format!(
                        "repeats product {} of items[{first}]; order it once with the whole \
                         quantity",
                        item.product_id
                    ),
                ));
            }
            lines.push(Line {
                product_id: item.product_id,
                quantity: item.quantity,
            });
        }
        Ok(Self { lines })
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Prices every line from `catalogue` (product id → price). Every product must exist, all
    /// must share one currency, and the total must stay within what a JavaScript client reads
    /// exactly.
    pub fn price(&self, catalogue: &HashMap<i64, Price>) -> Result<Priced, ApiError> {
        let mut items = Vec::with_capacity(self.lines.len());
        let mut currency: Option<&str> = None;
        let mut total_cents: i64 = 0;
        for (i, line) in self.lines.iter().enumerate() {
            let field = || format!("items[{i}].product_id");
            let Some(price) = catalogue.get(&line.product_id) else {
                return Err(invalid(
                    field(),
                    format!("names product {}, which does not exist", line.product_id),
                ));
            };
            match currency {
                None => currency = Some(&price.currency),
                Some(first) if first != price.currency => {
                    return Err(invalid(
                        field(),
                        format!(
                            "is priced in {}, the order so far in {first}; one order has one \
                             currency",
                            price.currency
                        ),
                    ));
                }
                Some(_) => {}
            }
            let (line_total_cents, running_total) = price
                .cents
                .checked_mul(line.quantity)
                .and_then(|line_total| Some((line_total, total_cents.checked_add(line_total)?)))
                .filter(|&(_, running_total)| running_total <= MAX_SAFE_INTEGER)
                .ok_or_else(|| {
                    invalid(
                        "items".to_owned(),
                        format!("the order total exceeds {MAX_SAFE_INTEGER} cents"),
                    )
                })?;
            total_cents = running_total;
            items.push(OrderLine {
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price_cents: price.cents,
                line_total_cents,
            });
        }
        Ok(Priced {
            items,
            total_cents,
            currency: currency.unwrap_or_default().to_owned(),
        })
    }
}

impl Priced {
    /// The order these prices make, once stored under `id` at `created_at_ms`.
    pub fn into_order(self, id: i64, created_at_ms: i64) -> Order {
        Order {
            id,
            items: self.items,
            total_cents: self.total_cents,
            currency: self.currency,
            created_at: rfc3339(created_at_ms),
        }
    }
}

fn invalid(field: String, reason: String) -> ApiError {
    ApiError::InvalidField {
        field: field.into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<OrderRequest, ApiError> {
        OrderRequest::parse(serde_json::from_str(json).expect("deserialises"))
    }

    fn field_of(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        match result {
            Err(ApiError::InvalidField { field, .. }) => field.into_owned(),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    fn items(n: usize) -> String {
        let items: Vec<_> = (1..=n)
            .map(|id| format!(r#"{{"product_id":{id},"quantity":1}}"#))
            .collect();
        format!(r#"{{"items":[{}]}}"#, items.join(","))
    }

    fn catalogue(entries: &[(i64, i64, &str)]) -> HashMap<i64, Price> {
        entries
            .iter()
            .map(|&(id, cents, currency)| {
                (
                    id,
                    Price {
                        cents,
                        currency: currency.to_owned(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lines_keep_their_order() {
        let request =
            parse(r#"{"items":[{"product_id":9,"quantity":100},{"product_id":2,"quantity":1}]}"#)
                .unwrap();
        let ids: Vec<_> = request.lines().iter().map(|l| l.product_id).collect();
        assert_eq!(ids, [9, 2]);
        assert_eq!(parse(&items(MAX_ITEMS)).unwrap().lines().len(), MAX_ITEMS);
    }

    #[test]
    fn each_rule_names_its_field() {
        let too_many = items(MAX_ITEMS + 1);
        #[rustfmt::skip]
        let cases = [
            (r#"{"items":[]}"#, "items"),
            (too_many.as_str(), "items"),
            (r#"{"items":[{"product_id":0,"quantity":1}]}"#, "items[0].product_id"),
            (r#"{"items":[{"product_id":1,"quantity":1},{"product_id":-3,"quantity":1}]}"#, "items[1].product_id"),
            (r#"{"items":[{"product_id":1,"quantity":0}]}"#, "items[0].quantity"),
            (r#"{"items":[{"product_id":1,"quantity":101}]}"#, "items[0].quantity"),
            (r#"{"items":[{"product_id":1,"quantity":-1}]}"#, "items[0].quantity"),
            (r#"{"items":[{"product_id":4,"quantity":1},{"product_id":5,"quantity":1},{"product_id":4,"quantity":2}]}"#, "items[2].product_id"),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(parse(json)), field, "{json}");
        }
    }

    #[test]
    fn wrong_shapes_do_not_deserialise() {
        for json in [
            r#"{}"#,
            r#"{"items":null}"#,
            r#"{"items":[{"product_id":1}]}"#,
            r#"{"items":[{"product_id":1,"quantity":1.5}]}"#,
            r#"{"items":[{"product_id":"1","quantity":1}]}"#,
            r#"{"items":[{"product_id":1,"quantity":1,"note":"x"}]}"#,
            r#"{"items":[],"coupon":"x"}"#,
        ] {
            let error = serde_json::from_str::<OrderBody>(json).unwrap_err();
            assert!(error.is_data(), "{json}: {error}");
        }
    }

    #[test]
    fn prices_lines_and_total_from_the_catalogue() {
        let request =
            parse(r#"{"items":[{"product_id":2,"quantity":3},{"product_id":1,"quantity":1}]}"#)
                .unwrap();
        let priced = request
            .price(&catalogue(&[
                (1, 500, "EUR"),
                (2, 199, "EUR"),
                (3, 1, "EUR"),
            ]))
            .unwrap();
        assert_eq!(priced.total_cents, 3 * 199 + 500);
        assert_eq!(priced.currency, "EUR");
        assert_eq!(
            priced.items,
            [
                OrderLine {
                    product_id: 2,
                    quantity: 3,
                    unit_price_cents: 199,
                    line_total_cents: 597,
                },
                OrderLine {
                    product_id: 1,
                    quantity: 1,
                    unit_price_cents: 500,
                    line_total_cents: 500,
                },
            ]
        );
        let order = priced.into_order(7, 0);
        assert_eq!(
            (order.id, order.created_at.as_str()),
            (7, "1970-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn unknown_products_mixed_currencies_and_huge_totals_are_refused() {
        let request = parse(
            r#"{"items":[{"product_id":1,"quantity":1},{"product_id":404,"quantity":1},{"product_id":2,"quantity":1}]}"#,
        )
        .unwrap();
        let known = catalogue(&[(1, 100, "EUR"), (2, 100, "EUR")]);
        assert_eq!(field_of(request.price(&known)), "items[1].product_id");

        let two =
            parse(r#"{"items":[{"product_id":1,"quantity":1},{"product_id":2,"quantity":1}]}"#)
                .unwrap();
        let mixed = catalogue(&[(1, 100, "EUR"), (2, 100, "USD")]);
        assert_eq!(field_of(two.price(&mixed)), "items[1].product_id");

        let dear = catalogue(&[(1, MAX_SAFE_INTEGER, "EUR"), (2, 1, "EUR")]);
        assert_eq!(field_of(two.price(&dear)), "items");
        let at_limit = catalogue(&[(1, MAX_SAFE_INTEGER - 1, "EUR"), (2, 1, "EUR")]);
        assert_eq!(two.price(&at_limit).unwrap().total_cents, MAX_SAFE_INTEGER);
        let overflow = parse(r#"{"items":[{"product_id":1,"quantity":100}]}"#).unwrap();
        let huge = catalogue(&[(1, i64::MAX / 2, "EUR")]);
        assert_eq!(field_of(overflow.price(&huge)), "items");
    }
}
