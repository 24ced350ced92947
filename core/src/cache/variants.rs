//! Several stored responses for one URL, told apart by `Vary` (RFC 9111 §4.1): the set every tier
//! keeps under a cache key, and the rules for choosing from it and adding to it.
//!
//! - **Choosing**: the most recently stored variant whose secondary key matches the request
//!   ([`Entry::matches`]); §4.1 lets a cache use the most recent of several that match.
//! - **Adding**: a new response replaces every variant the same request would have selected
//!   (they are older answers to the same question) and goes first. A response without `Vary`
//!   matches every request, so it replaces the whole set.
//! - **Bound**: at most [`MAX_VARIANTS`] per key; past that the least recently stored goes. A
//!   header with unbounded values (`Vary: User-Agent`, `Vary: Cookie`) therefore costs at most
//!   that many copies of one URL, never an unbounded number.

use super::entry::Entry;
use super::message::HeaderList;
use super::vary::vary_fields;

/// Most variants kept per cache key.
pub const MAX_VARIANTS: usize = 8;

/// Anything that carries a stored [`Entry`] (the edge's tier values do, with their bodies).
pub trait Variant {
    fn entry(&self) -> &Entry;
}

impl Variant for Entry {
    fn entry(&self) -> &Entry {
        self
    }
}

impl<T: Variant> Variant for std::rc::Rc<T> {
    fn entry(&self) -> &Entry {
        T::entry(self)
    }
}

/// The variant of `variants` (most recent first) that may answer a request with `request`
/// headers: the first whose secondary key matches.
pub fn select<'a, T: Variant>(variants: &'a [T], request: &HeaderList) -> Option<&'a T> {
    variants.iter().find(|v| v.entry().matches(request))
}

/// Adds `new`, the response to a request with `request` headers, to `variants` (most recent
/// first), by the rules in the module doc.
pub fn insert<T: Variant>(variants: &mut Vec<T>, new: T, request: &HeaderList) {
    let varies = vary_fields(new.entry().headers()).is_ok_and(|fields| !fields.is_empty());
    if varies {
        variants.retain(|v| !v.entry().matches(request));
    } else {
        variants.clear();
    }
    variants.insert(0, new);
    variants.truncate(MAX_VARIANTS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheOptions, RequestHead, Timestamp};

    fn h(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    /// A response stored for a request with `request` headers, marked by `X-Id`.
    fn stored(id: &str, vary: Option<&str>, request: &HeaderList) -> Entry {
        let mut response = h(&[("Cache-Control", "max-age=60"), ("X-Id", id)]);
        if let Some(vary) = vary {
            response.push("Vary", vary);
        }
        let t = Timestamp::from_secs(1_000);
        let opts = CacheOptions::default();
        Entry::store(
            &RequestHead::new("GET", request),
            200,
            &response,
            t,
            t,
            &opts,
        )
        .unwrap()
    }

    fn id(entry: Option<&Entry>) -> Option<String> {
        entry.and_then(|e| e.headers().get("x-id").map(|v| v.into_owned()))
    }

    #[test]
    fn variants_sit_side_by_side_and_each_request_gets_its_own() {
        let en = h(&[("Accept-Language", "en")]);
        let fr = h(&[("Accept-Language", "fr")]);
        let none = h(&[]);
        let mut set = Vec::new();
        insert(&mut set, stored("en", Some("accept-language"), &en), &en);
        insert(&mut set, stored("fr", Some("Accept-Language"), &fr), &fr);
        assert_eq!(set.len(), 2, "§4.1: two variants kept");
        assert_eq!(id(select(&set, &en)).as_deref(), Some("en"));
        assert_eq!(id(select(&set, &fr)).as_deref(), Some("fr"));
        assert_eq!(
            id(select(&set, &none)),
            None,
            "§4.1: absent matches only absent"
        );
        let en_again = h(&[("accept-language", " en ")]);
        insert(
            &mut set,
            stored("en2", Some("accept-language"), &en_again),
            &en_again,
        );
        assert_eq!(set.len(), 2, "the newer en replaced the older");
        assert_eq!(id(select(&set, &en)).as_deref(), Some("en2"));
    }

    #[test]
    fn a_response_without_vary_replaces_the_set() {
        let en = h(&[("Accept-Language", "en")]);
        let fr = h(&[("Accept-Language", "fr")]);
        let mut set = Vec::new();
        insert(&mut set, stored("en", Some("accept-language"), &en), &en);
        insert(&mut set, stored("plain", None, &fr), &fr);
        assert_eq!(set.len(), 1);
        assert_eq!(id(select(&set, &en)).as_deref(), Some("plain"));
    }

    #[test]
    fn the_set_is_bounded_and_drops_the_least_recently_stored() {
        let mut set = Vec::new();
        for n in 0..MAX_VARIANTS + 3 {
            let request = h(&[("User-Agent", &format!("ua-{n}"))]);
            insert(
                &mut set,
                stored(&n.to_string(), Some("user-agent"), &request),
                &request,
            );
        }
        assert_eq!(set.len(), MAX_VARIANTS);
        let oldest_kept = h(&[("User-Agent", &format!("ua-{}", 3))]);
        let dropped = h(&[("User-Agent", "ua-2")]);
        assert_eq!(id(select(&set, &oldest_kept)).as_deref(), Some("3"));
        assert_eq!(id(select(&set, &dropped)), None);
    }
}
