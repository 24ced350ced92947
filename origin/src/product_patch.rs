//! The body of `PUT /api/products/{id}`: a partial update, parsed once into values the catalogue
//! accepts.
//!
//! Editable: `name`, `description`, `price_cents`, `stock`. Not editable: `id` and `sku` (the
//! product's identity), `currency` (changing it alone would silently reprice), and `category`
//! (a fixed taxonomy, see [`crate::seed::CATEGORIES`]).

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;
use crate::product::Product;

/// Longest name, in characters: what a product card and a page title can show.
pub const MAX_NAME_CHARS: usize = 120;
/// Longest description, in characters: bounds what one product adds to a listing page.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Largest price or stock: 2^53 − 1, the largest integer a JavaScript client (the shop front)
/// reads exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The fields as sent. Absent means "leave as is"; `null` is refused rather than read as absent,
/// and so is an unknown field, so that a misspelt `prise_cents` is an error and not a silent
/// no-op.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchBody {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub price_cents: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub stock: Option<i64>,
}

/// A present field must hold a `T`: `null` is a type error, not `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A partial update that can be applied: at least one field, every field within the rules
/// above, text trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPatch {
    name: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
    stock: Option<i64>,
}

impl ProductPatch {
    /// Checks every field; the first one out of range is the error, named.
    pub fn parse(body: ProductPatchBody) -> Result<Self, ApiError> {
        let ProductPatchBody {
            name,
            description,
            price_cents,
            stock,
        } = body;
        if name.is_none() && description.is_none() && price_cents.is_none() && stock.is_none() {
            return Err(ApiError::InvalidBody(
                "the body must set at least one of `name`, `description`, `price_cents`, `stock`"
                    .to_owned(),
            ));
        }
        Ok(Self {
            name: name
                .map(|v| text("name", &v, MAX_NAME_CHARS, false))
                .transpose()?,
            description: description
                .map(|v| text("description", &v, MAX_DESCRIPTION_CHARS, true))
                .transpose()?,
            price_cents: price_cents.map(|v| amount("price_cents", v)).transpose()?,
            stock: stock.map(|v| amount("stock", v)).transpose()?,
        })
    }

    /// `product` with this patch's fields replaced.
    pub fn apply(&self, product: Product) -> Product {
        Product {
            name: self.name.clone().unwrap_or(product.name),
            description: self.description.clone().unwrap_or(product.description),
            price_cents: self.price_cents.unwrap_or(product.price_cents),
            stock: self.stock.unwrap_or(product.stock),
            ..product
        }
    }
}

/// Non-blank after trimming, at most `max` characters, no control characters (line breaks only
/// where `multiline`).
fn text(field: &'static str, value: &str, max: usize, multiline: bool) -> Result<String, ApiError> {
    let invalid = |reason: String| ApiError::InvalidField {
        field: field.into(),
        reason,
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid("must not be empty".to_owned()));
    }
    if value.chars().count() > max {
        return Err(invalid(format!("must be at most {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && c == '\n'))
    {
        let allowed = if multiline {
            " other than line feeds"
        } else {
            ""
        };
        return Err(invalid(format!(
            "must not contain control characters{allowed}"
        )));
    }
    Ok(value.to_owned())
}

/// A whole number from 0 to [`MAX_SAFE_INTEGER`].
fn amount(field: &'static str, value: i64) -> Result<i64, ApiError> {
    if (0..=MAX_SAFE_INTEGER).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::InvalidField {
            field: field.into(),
            reason: format!("must be from 0 to {MAX_SAFE_INTEGER}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ProductPatch, ApiError> {
        ProductPatch::parse(serde_json::from_str(json).expect("deserialises"))
    }

    fn field_of(json: &str) -> String {
        match parse(json) {
            Err(ApiError::InvalidField { field, .. }) => field.into_owned(),
            other => panic!("{json} gave {other:?}"),
        }
    }

    fn product() -> Product {
        Product {
            id: 7,
            sku: "BW-000007".into(),
            name: "Calm Kettle".into(),
            description: "Boils.".into(),
            category: "Kitchen".into(),
            price_cents: 1999,
            currency: "EUR".into(),
            stock: 3,
        }
    }

    #[test]
    fn only_the_given_fields_change_and_text_is_trimmed() {
        let patch = parse(r#"{"name": "  Bold Kettle ", "stock": 0}"#).unwrap();
        let updated = patch.apply(product());
        assert_eq!(
            updated,
            Product {
                name: "Bold Kettle".into(),
                stock: 0,
                ..product()
            }
        );
        let all = parse(
            r#"{"name":"N","description":"line one\nline two","price_cents":0,"stock":9007199254740991}"#,
        )
        .unwrap()
        .apply(product());
        assert_eq!(all.description, "line one\nline two");
        assert_eq!((all.price_cents, all.stock), (0, MAX_SAFE_INTEGER));
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let long_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(MAX_NAME_CHARS + 1));
        let long_description = format!(
            r#"{{"description": "{}"}}"#,
            "é".repeat(MAX_DESCRIPTION_CHARS + 1)
        );
        #[rustfmt::skip]
        let cases = [
            (r#"{"name": ""}"#, "name"),
            (r#"{"name": "   "}"#, "name"),
            (r#"{"name": "two\nlines"}"#, "name"),
            (long_name.as_str(), "name"),
            (r#"{"description": "\t"}"#, "description"),
            (r#"{"description": "bell\u0007"}"#, "description"),
            (long_description.as_str(), "description"),
            (r#"{"price_cents": -1}"#, "price_cents"),
            (r#"{"price_cents": 9007199254740992}"#, "price_cents"),
            (r#"{"stock": -5}"#, "stock"),
            (r#"{"name": "ok", "stock": -1}"#, "stock"),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(json), field, "{json}");
        }
        // Exactly at the limits is fine, counted in characters rather than bytes.
        let at_limit = format!(r#"{{"name": "{}"}}"#, "é".repeat(MAX_NAME_CHARS));
        assert!(parse(&at_limit).is_ok());
    }

    #[test]
    fn an_empty_patch_is_refused() {
        assert!(matches!(parse("{}"), Err(ApiError::InvalidBody(_))));
    }

    #[test]
    fn null_unknown_and_mistyped_fields_do_not_deserialise() {
        for json in [
            r#"{"name": null}"#,
            r#"{"prise_cents": 5}"#,
            r#"{"sku": "X"}"#,
            r#"{"price_cents": "5"}"#,
            r#"{"price_cents": 1.5}"#,
        ] {
            let error = serde_json::from_str::<ProductPatchBody>(json).unwrap_err();
            assert!(error.is_data(), "{json}: {error}");
        }
    }
}
