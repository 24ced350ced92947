//! The rankings: products by units sold (the analytics consumer's `product_sales`), by views or
//! by net votes (the write-behind events' `product_stats`), chosen with `?by=`, and the `?limit=`
//! that bounds one read.

use std::num::NonZeroU32;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;

use crate::db::{Db, on_pool};
use crate::error::ApiError;

/// Products ranked when the client does not say.
pub const DEFAULT_LIMIT: u32 = 10;
/// Most products one request may ask for.
pub const MAX_LIMIT: u32 = 100;

/// One ranked product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    /// 1 for the best seller.
    pub rank: i64,
    /// The product's id.
    pub id: i64,
    pub name: String,
    /// Units sold.
    pub units: i64,
    /// Orders that included the product.
    pub orders: i64,
    /// Product page views.
    pub views: i64,
    /// Votes for minus votes against.
    pub votes: i64,
}

/// What products are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum By {
    /// Units sold (the default).
    #[default]
    Sales,
    Views,
    /// Net votes.
    Votes,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sales => "sales",
            Self::Views => "views",
            Self::Votes => "votes",
        }
    }

    /// `?by=`; absent means sales, anything else unknown or repeated is an error naming it.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut by = None;
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if name != "by" {
                continue;
            }
            let invalid = |reason: &str| ApiError::InvalidQuery {
                parameter: "by",
                reason: reason.to_owned(),
            };
            if by.is_some() {
                return Err(invalid("is given more than once"));
            }
            by = Some(match value.as_ref() {
                "sales" => Self::Sales,
                "views" => Self::Views,
                "votes" => Self::Votes,
                _ => return Err(invalid("must be sales, views or votes")),
            });
        }
        Ok(by.unwrap_or_default())
    }

    /// The ranking query: the table holding the measure drives it, through its ranking index;
    /// the other measures are joined in.
    pub const fn sql(self) -> &'static str {
        match self {
            Self::Sales => {
                "SELECT p.id, p.name, s.units, s.orders, COALESCE(t.views, 0), COALESCE(t.score, 0) \
                 FROM product_sales s JOIN products p ON p.id = s.product_id \
                 LEFT JOIN product_stats t ON t.product_id = s.product_id \
                 ORDER BY s.units DESC, s.product_id LIMIT $1"
            }
            Self::Views => {
                "SELECT p.id, p.name, COALESCE(s.units, 0), COALESCE(s.orders, 0), t.views, t.score \
                 FROM product_stats t JOIN products p ON p.id = t.product_id \
                 LEFT JOIN product_sales s ON s.product_id = t.product_id \
                 WHERE t.views > 0 ORDER BY t.views DESC, t.product_id LIMIT $1"
            }
            Self::Votes => {
                "SELECT p.id, p.name, COALESCE(s.units, 0), COALESCE(s.orders, 0), t.views, t.score \
                 FROM product_stats t JOIN products p ON p.id = t.product_id \
                 LEFT JOIN product_sales s ON s.product_id = t.product_id \
                 WHERE t.upvotes + t.downvotes > 0 ORDER BY t.score DESC, t.product_id LIMIT $1"
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for By {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query())
    }
}

/// `?limit=`, in `1..=MAX_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(NonZeroU32);

impl Default for Limit {
    fn default() -> Self {
        Self(NonZeroU32::new(DEFAULT_LIMIT).unwrap_or(NonZeroU32::MIN))
    }
}

impl Limit {
    /// Parses a raw query string. Other parameters are ignored (cache busters); `limit` empty,
    /// malformed, out of range or repeated is an error naming it.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut limit = None;
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if name != "limit" {
                continue;
            }
            let invalid = |reason: String| ApiError::InvalidQuery {
                parameter: "limit",
                reason,
            };
            if limit.is_some() {
                return Err(invalid("is given more than once".to_owned()));
            }
            let parsed = value
                .parse::<NonZeroU32>()
                .ok()
                .filter(|n| n.get() <= MAX_LIMIT)
                .ok_or_else(|| invalid(format!("must be an integer from 1 to {MAX_LIMIT}")))?;
            limit = Some(Self(parsed));
        }
        Ok(limit.unwrap_or_default())
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Limit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query())
    }
}

/// The `limit` best products by `by`: highest first, ties by product id, products still in the
/// catalogue only. The ranking indexes yield them in order.
pub async fn top(db: &Db, by: By, limit: Limit) -> Result<Vec<Ranked>, sqlx::Error> {
    let rows: Vec<(i64, String, i64, i64, i64, i64)> = on_pool!(db, pool => {
        sqlx::query_as(by.sql())
            .bind(i64::from(limit.get()))
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .zip(1..)
        .map(|((id, name, units, orders, views, votes), rank)| Ranked {
            rank,
            id,
            name,
            units,
            orders,
            views,
            votes,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_defaults_to_sales_and_names_itself_in_errors() {
        assert_eq!(By::from_query(None).unwrap(), By::Sales);
        assert_eq!(By::from_query(Some("limit=3")).unwrap(), By::Sales);
        for by in [By::Sales, By::Views, By::Votes] {
            let query = format!("by={}", by.as_str());
            assert_eq!(By::from_query(Some(&query)).unwrap(), by);
        }
        for bad in ["by=", "by=price", "by=views&by=votes"] {
            match By::from_query(Some(bad)) {
                Err(ApiError::InvalidQuery { parameter, .. }) => assert_eq!(parameter, "by"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn limit_defaults_bounds_and_errors() {
        assert_eq!(Limit::from_query(None).unwrap().get(), DEFAULT_LIMIT);
        assert_eq!(Limit::from_query(Some("x=1")).unwrap().get(), DEFAULT_LIMIT);
        assert_eq!(Limit::from_query(Some("limit=1")).unwrap().get(), 1);
        assert_eq!(Limit::from_query(Some("limit=100")).unwrap().get(), 100);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=",
            "limit=-1",
            "limit=ten",
            "limit=1&limit=2",
        ] {
            match Limit::from_query(Some(bad)) {
                Err(ApiError::InvalidQuery { parameter, .. }) => assert_eq!(parameter, "limit"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
