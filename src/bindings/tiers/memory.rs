//! The isolate-memory tier: core's W-TinyLFU [`MemoryTier`] in a `thread_local!`, since an
//! isolate is single-threaded and its memory outlives requests (but not eviction or redeploys).
//! It holds each key's variant set ([`Variants`]), sized as the sum of its variants.
//!
//! Borrows never outlive a call here, so no `RefCell` borrow is ever held across an `.await`.

use breakwater_core::cache::{Entry, Record, Variant};
use breakwater_core::memtier::MemoryTier;
use breakwater_core::purge::{PurgeLog, parse_tags};
use std::cell::RefCell;
use std::rc::Rc;

/// A typical API response with its headers; sizes the admission sketch.
const TYPICAL_ENTRY: usize = 8 * 1024;

/// A stored response as every tier holds it: the record (key, purge epoch, RFC 9111 entry) and
/// the body. Memory keeps it decoded; the Cache API and KV keep it encoded.
#[derive(Debug)]
pub struct Stored {
    pub record: Record,
    pub body: Rc<[u8]>,
}

/// The responses stored under one key, most recent first (core's `cache::variants` rules).
pub type Variants = Rc<[Rc<Stored>]>;

impl Variant for Stored {
    fn entry(&self) -> &Entry {
        Stored::entry(self)
    }
}

impl Stored {
    pub fn entry(&self) -> &Entry {
        &self.record.entry
    }

    /// True when a purge recorded since this response was fetched covers it.
    pub fn is_purged(&self, log: &PurgeLog) -> bool {
        // Most hits: nothing purged since, so no tags to read.
        if !log.purged_since(self.record.epoch) {
            return false;
        }
        let tags = self
            .entry()
            .headers()
            .get("cache-tag")
            .map(|v| parse_tags(&v))
            .unwrap_or_default();
        log.is_purged(
            &self.record.key,
            tags.iter().map(String::as_str),
            self.record.epoch,
        )
    }

    /// Bytes it occupies: body, header fields and key.
    fn size(&self) -> usize {
        let headers: usize = self
            .entry()
            .headers()
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        self.body.len() + headers + self.record.key.len()
    }
}

thread_local! {
    /// Created on first store, sized by `CACHE_MEMORY_BYTES` (vars are fixed for an isolate).
    static TIER: RefCell<Option<MemoryTier<Variants>>> = const { RefCell::new(None) };
}

/// The variants stored for `key`, if any (freshness and purges are the caller's decision).
pub fn get(key: &str) -> Option<Variants> {
    TIER.with_borrow_mut(|tier| tier.as_mut()?.get(key).cloned())
}

/// Stores `variants` under `key` in a tier of `capacity` bytes (an empty set removes the key).
/// Returns whether it was kept: admission may prefer what is already there, and an oversized
/// set is refused.
pub fn put(key: &str, variants: Variants, capacity: usize) -> bool {
    if capacity == 0 {
        return false;
    }
    if variants.is_empty() {
        remove(key);
        return true;
    }
    let bytes = variants.iter().map(|v| v.size()).sum();
    TIER.with_borrow_mut(|tier| {
        tier.get_or_insert_with(|| MemoryTier::new(capacity, TYPICAL_ENTRY))
            .insert(key.to_owned(), variants, bytes)
            .is_ok()
    })
}

/// Replaces what `key` holds with `variants`, the unpurged rest of it (none: the key goes).
pub fn replace(key: &str, variants: Variants) {
    if variants.is_empty() {
        return remove(key);
    }
    let bytes = variants.iter().map(|v| v.size()).sum();
    TIER.with_borrow_mut(|tier| {
        tier.as_mut()
            .map(|t| t.insert(key.to_owned(), variants, bytes))
    });
}

/// Drops `key`.
pub fn remove(key: &str) {
    TIER.with_borrow_mut(|tier| tier.as_mut().map(|t| t.remove(key)));
}

/// Keys and bytes this isolate holds: what the dashboard shows of the memory tier.
pub fn held() -> (usize, usize) {
    TIER.with_borrow(|tier| tier.as_ref().map_or((0, 0), |t| (t.len(), t.bytes())))
}
