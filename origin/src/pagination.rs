//! `?page=&per_page=` parsed once at the boundary into values that are always in range.

use std::num::NonZeroU32;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;

/// Items per page when the client does not say.
pub const DEFAULT_PER_PAGE: u32 = 24;
/// Largest page a client may ask for; bounds the work and the response size of one request.
pub const MAX_PER_PAGE: u32 = 100;

/// A 1-based page number and a page size in `1..=MAX_PER_PAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    page: NonZeroU32,
    per_page: NonZeroU32,
}

impl Default for Pagination {
    fn default() -> Self {
        Self {
            page: NonZeroU32::MIN,
            per_page: NonZeroU32::new(DEFAULT_PER_PAGE).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl Pagination {
    /// Parses a raw query string. Unknown parameters are ignored (cache busters, tracking tags);
    /// a known one that is empty, malformed, out of range or repeated is an error naming it.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut page = None;
        let mut per_page = None;
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let (slot, parameter, max) = match name.as_ref() {
                "page" => (&mut page, "page", u32::MAX),
                "per_page" => (&mut per_page, "per_page", MAX_PER_PAGE),
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::InvalidQuery {
                    parameter,
                    reason: "is given more than once".to_owned(),
                });
            }
            let parsed = value
                .parse::<NonZeroU32>()
                .ok()
                .filter(|n| n.get() <= max)
                .ok_or_else(|| ApiError::InvalidQuery {
                    parameter,
                    reason: format!("must be an integer from 1 to {max}"),
                })?;
            *slot = Some(parsed);
        }
        let default = Self::default();
        Ok(Self {
            page: page.unwrap_or(default.page),
            per_page: per_page.unwrap_or(default.per_page),
        })
    }

    pub fn page(&self) -> u32 {
        self.page.get()
    }

    pub fn per_page(&self) -> u32 {
        self.per_page.get()
    }

    /// Rows to skip; cannot overflow (at most `u32::MAX * 100`).
    pub fn offset(&self) -> i64 {
        i64::from(self.page.get() - 1) * i64::from(self.per_page.get())
    }

    /// Pages needed for `total` items (0 for an empty catalogue).
    pub fn total_pages(&self, total: i64) -> i64 {
        let per_page = i64::from(self.per_page.get());
        (total.max(0) + per_page - 1) / per_page
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter_of(query: &str) -> &'static str {
        match Pagination::from_query(Some(query)) {
            Err(ApiError::InvalidQuery { parameter, .. }) => parameter,
            other => panic!("{query:?} gave {other:?}"),
        }
    }

    #[test]
    fn absent_parameters_take_defaults_and_unknown_ones_are_ignored() {
        for query in [None, Some(""), Some("utm_source=x&sort=")] {
            assert_eq!(
                Pagination::from_query(query).unwrap(),
                Pagination::default()
            );
        }
        let p = Pagination::from_query(Some("per_page=100&page=3")).unwrap();
        assert_eq!((p.page(), p.per_page(), p.offset()), (3, 100, 200));
    }

    #[test]
    fn malformed_values_name_their_parameter() {
        for bad in [
            "page=0",
            "page=-1",
            "page=abc",
            "page=",
            "page=1.5",
            "page=4294967296",
        ] {
            assert_eq!(parameter_of(bad), "page", "{bad}");
        }
        for bad in [
            "per_page=0",
            "per_page=101",
            "per_page=x",
            "page=2&per_page=2&per_page=3",
        ] {
            assert_eq!(parameter_of(bad), "per_page", "{bad}");
        }
        assert_eq!(parameter_of("page=1&page=1"), "page");
    }

    #[test]
    fn the_offset_of_the_last_possible_page_does_not_overflow() {
        let p = Pagination::from_query(Some("page=4294967295&per_page=100")).unwrap();
        assert_eq!(p.offset(), (i64::from(u32::MAX) - 1) * 100);
    }

    #[test]
    fn total_pages_rounds_up() {
        let p = Pagination::from_query(Some("per_page=24")).unwrap();
        assert_eq!(
            [0, 1, 24, 25, 10_000].map(|t| p.total_pages(t)),
            [0, 1, 1, 2, 417]
        );
    }
}
