//! A user's cart: which products, how many of each, priced at today's catalogue prices.

use serde::{Deserialize, Serialize};

use crate::db::{Db, on_pool};
use crate::error::ApiError;
use crate::product::ProductId;

/// Most units of one product in a cart, as in an order.
pub const MAX_QUANTITY: i64 = crate::order::request::MAX_QUANTITY;

/// The body of `PUT /api/cart/items/{product_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantityBody {
    pub quantity: i64,
}

/// A quantity a cart line may hold: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(body: QuantityBody) -> Result<Self, ApiError> {
        if (1..=MAX_QUANTITY).contains(&body.quantity) {
            Ok(Self(body.quantity))
        } else {
            Err(ApiError::InvalidField {
                field: "quantity".into(),
                reason: format!(
                    "must be from 1 to {MAX_QUANTITY}; remove the item with DELETE instead of 0"
                ),
            })
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The cart as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cart {
    pub items: Vec<CartLine>,
    pub total_cents: i64,
    /// The currency of every line; `null` for an empty cart.
    pub currency: Option<String>,
}

/// One product in the cart, at its current price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartLine {
    pub product_id: i64,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub line_total_cents: i64,
}

/// The cart of `user_id`, in product id order.
pub async fn load(db: &Db, user_id: i64) -> Result<Cart, ApiError> {
    let sql = "SELECT p.id, p.name, p.price_cents, p.currency, c.quantity \
               FROM cart_items c JOIN products p ON p.id = c.product_id \
               WHERE c.user_id = $1 ORDER BY p.id";
    let rows = on_pool!(db, pool => {
        sqlx::query_as::<_, (i64, String, i64, String, i64)>(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await
    })?;
    let mut cart = Cart {
        items: Vec::with_capacity(rows.len()),
        total_cents: 0,
        currency: None,
    };
    for (product_id, name, unit_price_cents, currency, quantity) in rows {
        // The catalogue has one currency (a product's cannot be changed); a second one would be
        // a catalogue this code was not written for.
        if cart.currency.get_or_insert_with(|| currency.clone()) != &currency {
            tracing::error!(user_id, "a cart mixes currencies");
            return Err(ApiError::Internal);
        }
        let line_total_cents = unit_price_cents * quantity;
        cart.total_cents += line_total_cents;
        cart.items.push(CartLine {
            product_id,
            name,
            unit_price_cents,
            quantity,
            line_total_cents,
        });
    }
    Ok(cart)
}

/// Sets how many of `product` the cart holds (adding the line if needed), in one statement;
/// `false` when there is no such product.
pub async fn set(
    db: &Db,
    user_id: i64,
    product: ProductId,
    quantity: Quantity,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO cart_items (user_id, product_id, quantity) \
               SELECT $1, id, $3 FROM products WHERE id = $2 \
               ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity";
    let rows = on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(user_id)
            .bind(product.get())
            .bind(quantity.get())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(rows == 1)
}

/// Takes `product` out of the cart; removing what is not there is not an error.
pub async fn remove(db: &Db, user_id: i64, product: ProductId) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2";
    on_pool!(db, pool => {
        sqlx::query(sql)
            .bind(user_id)
            .bind(product.get())
            .execute(pool)
            .await
            .map(drop)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_1_to_100() {
        for ok in [1, 2, MAX_QUANTITY] {
            assert_eq!(
                Quantity::parse(QuantityBody { quantity: ok })
                    .unwrap()
                    .get(),
                ok
            );
        }
        for bad in [0, -1, MAX_QUANTITY + 1, i64::MAX, i64::MIN] {
            let error = Quantity::parse(QuantityBody { quantity: bad }).unwrap_err();
            assert!(error.to_string().contains("`quantity`"), "{bad}: {error}");
        }
    }
}
