//! `Vary` (RFC 9110 §12.5.5, RFC 9111 §4.1): which request headers select a stored response,
//! and the secondary key built from their values.
//!
//! A response with `Vary` is stored together with the request's values for the listed fields,
//! its [`SecondaryKey`]; a later request is served that variant only if its own values normalise
//! to the same key (RFC 9111 §4.1), so one user's variant never reaches a request that would have
//! received another (T-CA-06) whether or not the primary cache key includes the field.
//! `Vary: *` never matches, so it is never stored.
//!
//! Normalisation is what §4.1 allows without knowing the field: field names compared
//! case-insensitively, several field lines combined into one list (RFC 9110 §5.3), whitespace
//! runs collapsed and whitespace beside commas dropped outside quoted-strings.

use serde::{Deserialize, Serialize};

use super::message::HeaderList;

/// Why a response's `Vary` keeps it out of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaryRefusal {
    /// `Vary: *`: no later request can match (RFC 9111 §4.1).
    Star,
}

impl VaryRefusal {
    /// A stable label for logs and `Cache-Status` details.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Star => "vary-star",
        }
    }
}

/// The request header names `Vary` lists (lower-case, sorted, deduplicated), or `Err(Star)`.
/// Several `Vary` lines combine as one list (RFC 9110 §5.3).
pub fn vary_fields(response: &HeaderList) -> Result<Vec<String>, VaryRefusal> {
    let mut names = Vec::new();
    for line in response.get_all("vary") {
        for name in line.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return Err(VaryRefusal::Star);
            }
            names.push(name.to_ascii_lowercase());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The request's values for the varied headers, normalised: the secondary key a stored response
/// was selected by (RFC 9111 §4.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecondaryKey(Vec<(String, Option<String>)>);

impl SecondaryKey {
    /// The key of `request` for the varied header `fields` (lower-case, sorted). An absent header
    /// is `None` and matches only another absence (§4.1), never an empty value.
    pub fn from_request(fields: &[String], request: &HeaderList) -> Self {
        Self(
            fields
                .iter()
                .map(|name| {
                    let value = request.get(name).map(|v| normalize(&v));
                    (name.clone(), value)
                })
                .collect(),
        )
    }

    /// True when nothing is varied on.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `(name, value)` pairs, sorted by name.
    pub fn fields(&self) -> &[(String, Option<String>)] {
        &self.0
    }
}

/// Normalises a field value the ways §4.1 allows without knowing the field: lines were already
/// combined; whitespace runs collapse to one space and whitespace beside commas goes, outside
/// quoted-strings only (a quoted-string's spaces are part of its value).
fn normalize(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut quoted = false;
    let mut escaped = false;
    let mut pending_space = false;
    for c in value.trim().chars() {
        if quoted {
            out.push(c);
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            ' ' | '\t' => pending_space = true,
            ',' => {
                pending_space = false;
                out.push(',');
            }
            c => {
                if pending_space && !out.ends_with(',') && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                quoted = c == '"';
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    #[test]
    fn vary_fields_table() {
        let names = |n: &[&str]| Ok(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        #[rustfmt::skip]
        let cases = [
            (h(&[]), names(&[]), "no Vary"),
            (h(&[("Vary", "Accept-Language")]), names(&["accept-language"]), "names are case-insensitive"),
            (h(&[("Vary", "accept-encoding"), ("Vary", "Accept-Language, accept-encoding")]),
                names(&["accept-encoding", "accept-language"]), "RFC 9110 §5.3: lines combine; duplicates collapse"),
            (h(&[("Vary", "*")]), Err(VaryRefusal::Star), "RFC 9111 §4.1: * never matches"),
            (h(&[("Vary", "accept-language, *")]), Err(VaryRefusal::Star), "* anywhere in the list"),
            (h(&[("Vary", "Cookie")]), names(&["cookie"]), "§4.1: any field, selected by the secondary key"),
            (h(&[("VARY", " Accept-Encoding ,\tCOOKIE")]), names(&["accept-encoding", "cookie"]), "RFC 9110 §5.1, §5.6.1: names and OWS"),
            (h(&[("Vary", " , ")]), names(&[]), "empty list elements"),
        ];
        for (headers, want, rule) in cases {
            assert_eq!(vary_fields(&headers), want, "{rule}");
        }
    }

    #[test]
    fn secondary_keys_match_per_rfc9111_4_1() {
        let fields = ["accept-language".to_owned()];
        let key = |pairs: &[(&str, &str)]| SecondaryKey::from_request(&fields, &h(pairs));
        let base = key(&[("Accept-Language", "en-GB, en;q=0.8")]);
        #[rustfmt::skip]
        let cases = [
            (key(&[("accept-language", "en-GB,en;q=0.8")]), true, "§4.1: whitespace after a comma"),
            (key(&[("Accept-Language", "  en-GB ,  en;q=0.8 ")]), true, "§4.1: whitespace runs"),
            (key(&[("Accept-Language", "en-GB"), ("Accept-Language", "en;q=0.8")]), true, "§4.1: lines combined"),
            (key(&[("ACCEPT-LANGUAGE", "en-GB"), ("accept-language", " en;q=0.8")]), true, "§4.1: names case-insensitive, lines combined"),
            (key(&[("Accept-Language", "en-GB,\ten;q=0.8")]), true, "§4.1: a tab is whitespace"),
            (key(&[("Accept-Language", "en-GB, en;q=0.8"), ("X-Other", "1")]), true, "fields not varied on do not count"),
            (key(&[("Accept-Language", "fr")]), false, "a different value"),
            (key(&[]), false, "§4.1: absent only matches absent"),
        ];
        for (other, want, rule) in cases {
            assert_eq!(base == other, want, "{rule}");
        }
        assert_ne!(key(&[]), key(&[("Accept-Language", "")]), "absent ≠ empty");
        assert_ne!(
            normalize("\"a  b\""),
            normalize("\"a b\""),
            "quoted-string spaces are significant"
        );
    }
}
