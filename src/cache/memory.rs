//! The isolate-memory tier: core's W-TinyLFU [`MemoryTier`] in a `thread_local!`, since an
//! isolate is single-threaded and its memory outlives requests (but not eviction or redeploys).
//!
//! Borrows never outlive a call here, so no `RefCell` borrow is ever held across an `.await`.

use breakwater_core::cache::Entry;
use breakwater_core::memtier::MemoryTier;
use std::cell::RefCell;
use std::rc::Rc;

/// Bytes the tier may hold. Isolates get 128 MiB in all; a quarter of that leaves room for
/// requests in flight and the wasm heap's own overhead.
const CAPACITY: usize = 32 * 1024 * 1024;
/// A typical API response with its headers; sizes the admission sketch.
const TYPICAL_ENTRY: usize = 8 * 1024;

/// A stored response: its RFC 9111 entry (status, headers, times) and the body.
#[derive(Debug)]
pub struct Stored {
    pub entry: Entry,
    pub body: Rc<[u8]>,
}

thread_local! {
    static TIER: RefCell<MemoryTier<Rc<Stored>>> =
        RefCell::new(MemoryTier::new(CAPACITY, TYPICAL_ENTRY));
}

/// The stored response for `key`, if any (freshness is the caller's decision).
pub fn get(key: &str) -> Option<Rc<Stored>> {
    TIER.with_borrow_mut(|tier| tier.get(key).cloned())
}

/// Stores `stored` under `key`, sized as body plus header bytes. Returns whether it was kept:
/// an entry over the tier's per-entry limit is refused.
pub fn put(key: &str, stored: Rc<Stored>) -> bool {
    let headers: usize = stored
        .entry
        .headers()
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    let bytes = stored.body.len() + headers + key.len();
    TIER.with_borrow_mut(|tier| tier.insert(key.to_owned(), stored, bytes).is_ok())
}
