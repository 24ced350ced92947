//! The parts of an HTTP message the cache semantics read: a header list the edge fills from JS
//! `Headers` (or the origin from `http::HeaderMap`), and the request's method with its headers.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Header fields in arrival order, with case-insensitive lookup (RFC 9110 §5.1).
///
/// Repeated field lines are kept as sent; [`HeaderList::get`] combines them with `", "` as RFC 9110
/// §5.3 allows for list-based fields. (`Set-Cookie` is the known exception to combining; the cache
/// only ever asks whether it is present.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a field line, keeping any earlier lines of the same name.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replaces every line named `name` with one line holding `value`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.push(name, value);
    }

    /// Removes every line named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.trim().eq_ignore_ascii_case(name));
    }

    /// The field value: one line as is, several lines joined with `", "`; `None` when absent.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut lines = self
            .0
            .iter()
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim());
        let first = lines.next()?;
        match lines.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first}, {second}");
                for line in lines {
                    joined.push_str(", ");
                    joined.push_str(line);
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    /// Every line named `name`, trimmed, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// True when at least one line is named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get_all(name).next().is_some()
    }

    /// Every line as `(name, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of field lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no field lines.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for HeaderList {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

/// What the cache reads from a request: its method and header fields.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method token, case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
    pub method: &'a str,
    /// The request's header fields.
    pub headers: &'a HeaderList,
}

impl<'a> RequestHead<'a> {
    /// A request with `method` and `headers`.
    pub fn new(method: &'a str, headers: &'a HeaderList) -> Self {
        Self { method, headers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_combines_lines() {
        let h: HeaderList = [
            ("Cache-Control", "max-age=5"),
            ("Vary", "accept"),
            ("cache-control", " private "),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            h.get("CACHE-CONTROL").as_deref(),
            Some("max-age=5, private")
        );
        assert_eq!(h.get("vary").as_deref(), Some("accept"));
        assert_eq!(h.get("expires"), None);
        assert_eq!(h.get_all("cache-control").count(), 2);
    }

    #[test]
    fn set_and_remove_touch_every_line() {
        let mut h: HeaderList = [("Age", "1"), ("age", "2"), ("Date", "x")]
            .into_iter()
            .collect();
        h.set("AGE", "3");
        assert_eq!(h.get("age").as_deref(), Some("3"));
        h.remove("date");
        assert!(!h.contains("Date"));
        assert_eq!(h.len(), 1);
    }
}
