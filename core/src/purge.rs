//! Purging by tag, URL and prefix, across every tier at once, without touching the tiers.
//!
//! The `CONTROL` Durable Object keeps one [`PurgeLog`]: a purge epoch counter and, for each
//! purged tag, cache key and key prefix, the epoch of its latest purge. Every stored entry
//! carries the epoch its isolate knew when it asked the origin. An entry is purged when a purge
//! that matches it happened later than that: one bump in the log invalidates the entry in
//! isolate memory, the Cache API and KV alike, and nothing has to be enumerated or deleted.
//!
//! The direction of every race is safe. An isolate that has not yet seen purge `n` stamps what it
//! fetches with an older epoch, so once it learns of `n` that response counts as purged too: a
//! spare origin fetch, never a stale answer kept.
//!
//! The log is bounded ([`MAX_RECORDS`]). Forgetting a record raises the floor to its epoch, and
//! every entry stamped before the floor counts as purged, so forgetting can only cost hits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Records (tags + keys + prefixes) the log keeps before forgetting the oldest.
pub const MAX_RECORDS: usize = 4096;
/// Items one purge request may name, all kinds together.
pub const MAX_ITEMS: usize = 100;
/// Longest tag, key or prefix, in bytes (Cloudflare's own tag limit is 1,024).
pub const MAX_ITEM_BYTES: usize = 1024;

/// What to purge. Keys and prefixes are cache keys (paths with their normalised query).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
}

/// Why a purge request was refused; names the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("a purge must name at least one tag, key or prefix")]
    Empty,
    #[error("a purge may name at most {MAX_ITEMS} items; this one names {0}")]
    TooMany(usize),
    #[error("{kind} {value:?}: {reason}")]
    Invalid {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl PurgeRequest {
    /// Checks sizes and shapes; a valid request changes the log, an invalid one changes nothing.
    pub fn validate(&self) -> Result<(), PurgeError> {
        let count = self.tags.len() + self.keys.len() + self.prefixes.len();
        if count == 0 {
            return Err(PurgeError::Empty);
        }
        if count > MAX_ITEMS {
            return Err(PurgeError::TooMany(count));
        }
        let invalid = |kind, value: &String, reason| PurgeError::Invalid {
            kind,
            value: value.clone(),
            reason,
        };
        for tag in &self.tags {
            if tag.is_empty() || tag.len() > MAX_ITEM_BYTES {
                return Err(invalid("tag", tag, "must be 1 to 1024 bytes"));
            }
            if !tag.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(invalid("tag", tag, "must be visible ASCII without commas"));
            }
        }
        for (kind, values) in [("key", &self.keys), ("prefix", &self.prefixes)] {
            for value in values {
                if !value.starts_with('/') || value.len() > MAX_ITEM_BYTES {
                    return Err(invalid(
                        kind,
                        value,
                        "must be a path starting with / (max 1024 bytes)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The valid tags a response names in `Cache-Tag` ([`crate::headers::CACHE_TAG`]:
/// comma-separated, as Cloudflare reads it); malformed ones are skipped, so what comes back always
/// passes [`PurgeRequest::validate`].
pub fn parse_tags(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_ITEM_BYTES)
        .filter(|t| t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .collect()
}

/// The `Cache-Tag` value naming `tags`, which [`parse_tags`] reads back unchanged as long as each
/// tag is one a purge accepts (1 to 1024 bytes of visible ASCII, no comma).
pub fn format_tags(tags: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut value = String::new();
    for tag in tags {
        if !value.is_empty() {
            value.push_str(", ");
        }
        value.push_str(tag.as_ref());
    }
    value
}

/// One record of the purge log: a tag, a URL's cache key or a key prefix, and the epoch of its
/// last purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeRecord {
    pub kind: PurgeKind,
    pub item: String,
    pub epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PurgeKind {
    Tag,
    Url,
    Prefix,
}

/// The purge registry. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeLog {
    /// The epoch of the latest purge; entries fetched now are stamped with it.
    epoch: u64,
    /// Entries stamped before this epoch count as purged (records were forgotten).
    floor: u64,
    tags: BTreeMap<String, u64>,
    keys: BTreeMap<String, u64>,
    prefixes: BTreeMap<String, u64>,
}

impl PurgeLog {
    /// The current epoch: what an entry fetched now is stamped with.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records `request` (already validated) as one new epoch, and returns it.
    pub fn purge(&mut self, request: &PurgeRequest) -> u64 {
        self.epoch += 1;
        let epoch = self.epoch;
        for (map, items) in [
            (&mut self.tags, &request.tags),
            (&mut self.keys, &request.keys),
            (&mut self.prefixes, &request.prefixes),
        ] {
            for item in items {
                map.insert(item.clone(), epoch);
            }
        }
        self.forget_oldest();
        epoch
    }

    /// True when an entry for `key`, tagged `tags` and stamped `stamped`, was purged since.
    pub fn is_purged<'a>(
        &self,
        key: &str,
        tags: impl IntoIterator<Item = &'a str>,
        stamped: u64,
    ) -> bool {
        let later = |epoch: Option<&u64>| epoch.is_some_and(|&e| e > stamped);
        // A URL purge names the key without its keyed-header lines: it covers every variant.
        let url = key.split('\n').next().unwrap_or(key);
        stamped < self.floor
            || later(self.keys.get(url))
            || tags.into_iter().any(|t| later(self.tags.get(t)))
            || self
                .prefixes
                .iter()
                .any(|(prefix, &e)| e > stamped && key.starts_with(prefix.as_str()))
    }

    /// Whether anything was purged after epoch `stamped`: when not, [`PurgeLog::is_purged`] is
    /// false for every entry stamped so, and a hit need not read its tags.
    pub fn purged_since(&self, stamped: u64) -> bool {
        stamped < self.epoch || stamped < self.floor
    }

    /// The `n` latest records, latest first: what the dashboard lists.
    pub fn recent(&self, n: usize) -> Vec<PurgeRecord> {
        let mut all: Vec<PurgeRecord> = [
            (PurgeKind::Tag, &self.tags),
            (PurgeKind::Url, &self.keys),
            (PurgeKind::Prefix, &self.prefixes),
        ]
        .into_iter()
        .flat_map(|(kind, map)| {
            map.iter().map(move |(item, &epoch)| PurgeRecord {
                kind,
                item: item.clone(),
                epoch,
            })
        })
        .collect();
        all.sort_by(|a, b| b.epoch.cmp(&a.epoch).then_with(|| a.item.cmp(&b.item)));
        all.truncate(n);
        all
    }

    /// Number of records kept.
    pub fn len(&self) -> usize {
        self.tags.len() + self.keys.len() + self.prefixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn forget_oldest(&mut self) {
        while self.len() > MAX_RECORDS {
            let oldest = [&self.tags, &self.keys, &self.prefixes]
                .into_iter()
                .enumerate()
                .filter_map(|(i, map)| {
                    map.iter()
                        .min_by_key(|(_, e)| **e)
                        .map(|(k, e)| (*e, i, k.clone()))
                })
                .min();
            let Some((epoch, which, item)) = oldest else {
                return;
            };
            if let Some(map) = [&mut self.tags, &mut self.keys, &mut self.prefixes].get_mut(which) {
                map.remove(&item);
            }
            // Entries stamped before the forgotten purge may have been hit by it.
            self.floor = self.floor.max(epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    fn request(tags: &[&str], keys: &[&str], prefixes: &[&str]) -> PurgeRequest {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        PurgeRequest {
            tags: own(tags),
            keys: own(keys),
            prefixes: own(prefixes),
        }
    }

    #[test]
    fn a_tag_purge_hits_entries_stamped_before_it_and_not_after() {
        let mut log = PurgeLog::default();
        let before = log.epoch();
        let epoch = log.purge(&request(&["product:7"], &[], &[]));
        assert_eq!(epoch, before + 1);
        assert!(log.is_purged("/api/products/7", ["product:7"], before));
        assert!(!log.is_purged("/api/products/7", ["product:7"], epoch));
        assert!(!log.is_purged("/api/products/8", ["product:8"], before));
        assert!(
            !log.is_purged("/api/products/7", [], before),
            "untagged entry"
        );
    }

    #[test]
    fn a_key_purge_is_exact_and_a_prefix_purge_covers_the_subtree() {
        let mut log = PurgeLog::default();
        log.purge(&request(&[], &["/api/products?page=2"], &[]));
        assert!(log.is_purged("/api/products?page=2", [], 0));
        assert!(!log.is_purged("/api/products?page=20", [], 0));
        assert!(log.is_purged("/api/products?page=2\naccept-language: de", [], 0));
        log.purge(&request(&[], &[], &["/api/products/"]));
        assert!(log.is_purged("/api/products/99", [], 1));
        assert!(!log.is_purged("/api/products", [], 1));
    }

    #[test]
    fn recent_lists_the_latest_records_first() {
        let mut log = PurgeLog::default();
        log.purge(&request(&["a"], &["/k"], &[]));
        log.purge(&request(&[], &[], &["/p/"]));
        log.purge(&request(&["a"], &[], &[]));
        let recent = log.recent(2);
        let seen: Vec<(PurgeKind, &str, u64)> = recent
            .iter()
            .map(|r| (r.kind, r.item.as_str(), r.epoch))
            .collect();
        assert_eq!(
            seen,
            [(PurgeKind::Tag, "a", 3), (PurgeKind::Prefix, "/p/", 2)]
        );
        assert_eq!(log.recent(10).len(), 3);
    }

    #[test]
    fn a_later_purge_of_the_same_tag_moves_its_epoch() {
        let mut log = PurgeLog::default();
        log.purge(&request(&["a"], &[], &[]));
        let stamped = log.epoch();
        assert!(!log.is_purged("/k", ["a"], stamped));
        log.purge(&request(&["a"], &[], &[]));
        assert!(log.is_purged("/k", ["a"], stamped));
    }

    #[test]
    fn the_log_stays_bounded_and_forgetting_only_purges_more() {
        let mut log = PurgeLog::default();
        for i in 0..MAX_RECORDS + 10 {
            log.purge(&request(&[&format!("t{i}")], &[], &[]));
        }
        assert_eq!(log.len(), MAX_RECORDS);
        // t0 was forgotten, but an entry stamped before its purge still counts as purged.
        assert!(log.is_purged("/k", ["t0"], 0));
        // An entry stamped after the forgotten purges, with an unpurged tag, survives.
        assert!(!log.is_purged("/k", ["other"], log.epoch()));
    }

    #[test]
    fn requests_are_validated_before_they_change_anything() {
        assert_eq!(PurgeRequest::default().validate(), Err(PurgeError::Empty));
        let many: Vec<String> = (0..=MAX_ITEMS).map(|i| format!("t{i}")).collect();
        let too_many = PurgeRequest {
            tags: many,
            ..Default::default()
        };
        assert_eq!(too_many.validate(), Err(PurgeError::TooMany(MAX_ITEMS + 1)));
        let err = request(&["a,b"], &[], &[]).validate().unwrap_err();
        assert!(err.to_string().contains("\"a,b\""), "{err}");
        let err = request(&[], &["api/x"], &[]).validate().unwrap_err();
        assert!(err.to_string().starts_with("key \"api/x\""), "{err}");
        assert!(
            request(&["product:1"], &["/a"], &["/b/"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn tags_parse_from_a_comma_separated_header() {
        assert_eq!(
            parse_tags("products, product:1,,product:2 "),
            ["products", "product:1", "product:2"]
        );
        assert!(parse_tags("").is_empty());
    }

    #[test]
    fn formatted_tags_parse_back() {
        assert_eq!(
            format_tags(["product:1", "products"]),
            "product:1, products"
        );
        assert_eq!(format_tags(Vec::<String>::new()), "");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
            ..ProptestConfig::default()
        })]

        /// The edge skips reading a hit's tags when nothing was purged since it was stamped:
        /// that shortcut never keeps a purged entry, whatever the purges and the entry.
        #[test]
        fn nothing_purged_since_means_nothing_is_purged(
            purges in vec((vec("[a-c]", 0..3), vec("/[a-c]{0,2}", 0..3), vec("/[a-c]?", 0..2)), 0..40),
            key in "/[a-c]{0,3}",
            tags in vec("[a-c]", 0..3),
            stamped in 0u64..45,
        ) {
            let mut log = PurgeLog::default();
            for (tags, keys, prefixes) in purges {
                log.purge(&PurgeRequest { tags, keys, prefixes });
            }
            if !log.purged_since(stamped) {
                prop_assert!(!log.is_purged(&key, tags.iter().map(String::as_str), stamped));
            }
            // And it is not a shortcut that never applies.
            prop_assert!(!log.purged_since(log.epoch()));
        }

        /// The origin writes `Cache-Tag` with [`format_tags`] and the edge reads it with
        /// [`parse_tags`]: every tag a purge accepts crosses unchanged.
        #[test]
        fn valid_tags_cross_the_header_unchanged(tags in vec(r"[!-+\--~]{1,40}", 1..8)) {
            let request = PurgeRequest { tags: tags.clone(), ..Default::default() };
            prop_assert!(request.validate().is_ok());
            prop_assert_eq!(parse_tags(&format_tags(&tags)), tags);
        }
    }

    #[test]
    fn the_log_round_trips_through_json() {
        let mut log = PurgeLog::default();
        log.purge(&request(&["a"], &["/k"], &["/p/"]));
        let json = serde_json::to_string(&log).unwrap();
        assert_eq!(serde_json::from_str::<PurgeLog>(&json).unwrap(), log);
    }
}
