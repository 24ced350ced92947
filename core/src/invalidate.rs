//! What a write makes stale: after the origin answers an unsafe request, the purge that keeps
//! the writer's next read fresh. The tags the origin names in `Cache-Tag`, and the target URI
//! with any same-origin `Location`/`Content-Location` (RFC 9111 §4.4,
//! [`invalidations`](crate::cache::invalidations)), as cache keys of the routes that cache them.

use crate::cache::{HeaderList, invalidations};
use crate::intake::split_raw_url;
use crate::policy::{CachePolicy, Mode};
use crate::purge::{MAX_ITEM_BYTES, MAX_ITEMS, PurgeRequest, parse_tags};

/// The purge after the origin answered `status` + `headers` to a `method` request for `target`
/// (an absolute URI), or `None` when it makes nothing stale: a safe method, an error status, or
/// nothing that any route caches.
///
/// Only URLs a route caches become keys: a purge record for anything else would churn the
/// bounded log (and, through its floor, purge more than needed) without invalidating anything.
/// A key longer than a purge may name ([`MAX_ITEM_BYTES`]: a long query) is purged as the prefix
/// of its first [`MAX_ITEM_BYTES`] bytes, which covers it (and, at worst, a few more entries).
/// Keys come first; tags fill what [`MAX_ITEMS`] leaves, so the request is always valid.
pub fn after_write(
    method: &str,
    status: u16,
    target: &str,
    headers: &HeaderList,
    cache: &CachePolicy,
) -> Option<PurgeRequest> {
    let uris = invalidations(method, status, target, headers);
    if uris.is_empty() {
        return None;
    }
    let (keys, long_keys): (Vec<String>, Vec<String>) = uris
        .iter()
        .map(|uri| split_raw_url(uri))
        .filter(|(path, _)| cache.route(path).is_some_and(|r| r.mode != Mode::Bypass))
        .map(|(path, query)| cache.url_key(path, query))
        .take(MAX_ITEMS)
        .partition(|key| key.len() <= MAX_ITEM_BYTES);
    let prefixes: Vec<String> = long_keys
        .iter()
        .map(|key| key[..key.floor_char_boundary(MAX_ITEM_BYTES)].to_owned())
        .collect();
    let mut tags = headers
        .get("cache-tag")
        .map(|v| parse_tags(&v))
        .unwrap_or_default();
    tags.truncate(MAX_ITEMS - keys.len() - prefixes.len());
    if tags.is_empty() && keys.is_empty() && prefixes.is_empty() {
        return None;
    }
    Some(PurgeRequest {
        tags,
        keys,
        prefixes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CachePolicy {
        CachePolicy::from_value(serde_json::json!({
            "routes": [
                { "prefix": "/api/products", "mode": "honor" },
                { "prefix": "/api/cart", "mode": "bypass" },
            ]
        }))
        .expect("a valid policy")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_write_purges_its_tags_and_its_cached_target() {
        let h = headers(&[("cache-tag", "product:5, products")]);
        let target = "https://shop.example/api/products/5";
        let purge = after_write("PUT", 200, target, &h, &policy()).expect("a purge");
        assert_eq!(purge.tags, ["product:5", "products"]);
        assert_eq!(purge.keys, [policy().url_key("/api/products/5", "")]);
        assert!(purge.validate().is_ok());
    }

    #[test]
    fn nothing_to_purge() {
        let tagged = headers(&[("cache-tag", "product:5")]);
        let p = policy();
        let products = "https://shop.example/api/products/5";
        assert_eq!(after_write("GET", 200, products, &tagged, &p), None, "safe");
        assert_eq!(
            after_write("PUT", 500, products, &tagged, &p),
            None,
            "error"
        );
        assert_eq!(
            after_write("PUT", 404, products, &tagged, &p),
            None,
            "error"
        );
        let cart = "https://shop.example/api/cart";
        assert_eq!(
            after_write("POST", 200, cart, &headers(&[]), &p),
            None,
            "a bypassed route keeps no entries and names no tags"
        );
    }

    #[test]
    fn a_keyed_or_internal_write_is_judged_by_its_answer_alone() {
        // Internal requests (the queue consumer's) use a target no route caches: only tags.
        let h = headers(&[("cache-tag", "product:7")]);
        let purge = after_write(
            "POST",
            200,
            "https://breakwater.internal/internal/events",
            &h,
            &policy(),
        )
        .expect("tags purge");
        assert_eq!(purge.tags, ["product:7"]);
        assert!(purge.keys.is_empty());
    }

    /// Found by the fuzzer (fuzz target `cache-headers`): a write whose URL made a key over
    /// [`MAX_ITEM_BYTES`] built a purge the log refuses whole, so not even its tags were purged.
    #[test]
    fn a_key_too_long_to_name_is_purged_by_its_prefix() {
        let h = headers(&[("cache-tag", "product:5")]);
        let p = policy();
        // (query length, purged as a key)
        let cases = [
            (10, true),
            (MAX_ITEM_BYTES - 20, true),
            (MAX_ITEM_BYTES, false),
            (8_000, false),
        ];
        for (len, as_key) in cases {
            let query = format!("?q={}", "é".repeat(len / 2));
            let target = format!("https://shop.example/api/products/5{query}");
            let purge = after_write("PUT", 200, &target, &h, &p).expect("a purge");
            assert_eq!(purge.validate(), Ok(()), "{len}");
            assert_eq!(purge.tags, ["product:5"], "{len}");
            assert_eq!(
                (purge.keys.len(), purge.prefixes.len()),
                if as_key { (1, 0) } else { (0, 1) }
            );
            let mut log = crate::purge::PurgeLog::default();
            log.purge(&purge);
            let key = p.url_key("/api/products/5", &query);
            assert!(
                log.is_purged(&key, [], 0),
                "{len}: the entry's own key is purged"
            );
        }
    }

    #[test]
    fn too_many_tags_are_cut_to_a_valid_request() {
        let many: Vec<String> = (0..MAX_ITEMS + 20).map(|i| format!("t{i}")).collect();
        let h = headers(&[("cache-tag", many.join(",").as_str())]);
        let purge = after_write(
            "DELETE",
            204,
            "https://shop.example/api/products/1",
            &h,
            &policy(),
        )
        .expect("a purge");
        assert_eq!(purge.tags.len() + purge.keys.len(), MAX_ITEMS);
        assert!(purge.validate().is_ok());
    }
}
