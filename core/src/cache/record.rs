//! The one format every tier stores: under a cache key, its variants ([`super::variants`]), each
//! a [`Record`] (the cache key, the purge epoch the response was fetched under, the RFC 9111
//! [`Entry`]) with its body bytes.
//!
//! Memory holds them decoded; the Cache API and KV hold [`encode`]'s bytes under
//! [`storage_key`]. The full cache key travels inside, so a storage-key collision decodes to
//! records for another key, which the reader treats as a miss.

use serde::{Deserialize, Serialize};

use super::date::Timestamp;
use super::entry::Entry;
use super::lookup::stale_if_error_window;
use super::message::RequestHead;
use super::options::CacheOptions;

/// Marks the format; a different version reads as a miss, never as garbage.
const MAGIC: &[u8; 4] = b"BWR2";

/// A stored response's metadata, as every tier keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The full cache key ([`crate::policy::KeyRules::key`]).
    pub key: String,
    /// The purge epoch known when the response was fetched ([`crate::purge::PurgeLog`]).
    pub epoch: u64,
    pub entry: Entry,
}

/// Why stored bytes could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a cache record (bad magic or truncated)")]
    Format,
    #[error("cache record metadata is not valid JSON")]
    Metadata,
}

/// The variants stored under one key ([`super::variants`]), most recent first: `MAGIC`, their
/// count, then for each the metadata length, the metadata as JSON, the body length, the body
/// (lengths u32, big-endian).
pub fn encode<'a>(variants: impl IntoIterator<Item = (&'a Record, &'a [u8])>) -> Vec<u8> {
    let parts: Vec<(Vec<u8>, &[u8])> = variants
        .into_iter()
        .map(|(record, body)| (serde_json::to_vec(record).unwrap_or_default(), body))
        .collect();
    let size: usize = parts.iter().map(|(m, b)| 8 + m.len() + b.len()).sum();
    let mut out = Vec::with_capacity(8 + size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    for (meta, body) in &parts {
        out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        out.extend_from_slice(meta);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// The variants [`encode`] wrote, each record with its body.
pub fn decode(bytes: &[u8]) -> Result<Vec<(Record, &[u8])>, DecodeError> {
    fn chunk<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or(DecodeError::Format)?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(DecodeError::Format);
        }
        let (part, tail) = tail.split_at(len);
        *rest = tail;
        Ok(part)
    }
    let mut rest = bytes.strip_prefix(MAGIC).ok_or(DecodeError::Format)?;
    let (count, tail) = rest.split_first_chunk::<4>().ok_or(DecodeError::Format)?;
    rest = tail;
    let count = u32::from_be_bytes(*count) as usize;
    let mut out = Vec::with_capacity(count.min(super::variants::MAX_VARIANTS));
    for _ in 0..count {
        let meta = chunk(&mut rest)?;
        let body = chunk(&mut rest)?;
        let record = serde_json::from_slice(meta).map_err(|_| DecodeError::Metadata)?;
        out.push((record, body));
    }
    if !rest.is_empty() {
        return Err(DecodeError::Format);
    }
    Ok(out)
}

/// A fixed-length name for `key` in the Cache API and KV (KV keys are limited to 512 bytes).
pub fn storage_key(key: &str) -> String {
    crate::hash::fnv1a_128_hex(key)
}

/// How long a lower tier should keep `entry` from `now`, in seconds: the rest of its freshness
/// plus the longer of its stale windows (after that it can only be revalidated, which needs the
/// origin anyway). At least one second.
pub fn retention(entry: &Entry, now: Timestamp, opts: &CacheOptions<'_>) -> u64 {
    let fresh_left = entry
        .lifetime(opts)
        .seconds
        .saturating_sub(entry.current_age(now));
    let headers = super::message::HeaderList::new();
    let request = RequestHead::new("GET", &headers);
    let directives = entry.directives(opts);
    let swr = directives
        .stale_while_revalidate
        .and_then(|d| d.seconds())
        .unwrap_or(0)
        .max(opts.stale_while_revalidate);
    let stale = swr.max(stale_if_error_window(entry, &request, opts));
    fresh_left.saturating_add(stale).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::HeaderList;

    fn entry(cache_control: &str) -> Entry {
        let at = Timestamp::from_secs(1_796_083_200);
        let mut headers = HeaderList::new();
        headers.push("Cache-Control", cache_control);
        headers.push("Date", crate::cache::format_http_date(at));
        let request_headers = HeaderList::new();
        Entry::store(
            &RequestHead::new("GET", &request_headers),
            200,
            &headers,
            at,
            at,
            &CacheOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_record_round_trips_with_its_body() {
        let record = Record {
            key: "/api/products/1".into(),
            epoch: 7,
            entry: entry("public, max-age=60"),
        };
        let other = Record {
            epoch: 8,
            ..record.clone()
        };
        let bytes = encode([(&record, &b"{\"id\":1}"[..]), (&other, &b""[..])]);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, [(record, &b"{\"id\":1}"[..]), (other, &b""[..])]);
        assert_eq!(decode(&encode([])).unwrap(), []);
    }

    #[test]
    fn foreign_or_truncated_bytes_are_refused() {
        assert_eq!(decode(b"hello").unwrap_err(), DecodeError::Format);
        let record = Record {
            key: "/k".into(),
            epoch: 0,
            entry: entry("max-age=1"),
        };
        let bytes = encode([(&record, &b""[..])]);
        assert_eq!(
            decode(&bytes[..bytes.len() - 2]).unwrap_err(),
            DecodeError::Format
        );
        let mut corrupt = bytes.clone();
        corrupt[13] = b'!';
        assert_eq!(decode(&corrupt).unwrap_err(), DecodeError::Metadata);
    }

    #[test]
    fn storage_keys_are_fixed_length_and_distinct() {
        let a = storage_key("/api/products/1");
        let b = storage_key("/api/products/2");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(a, storage_key("/api/products/1"));
        assert_eq!(storage_key(&"x".repeat(10_000)).len(), 32);
    }

    #[test]
    fn retention_covers_freshness_and_the_longest_stale_window() {
        let opts = CacheOptions::default();
        let e = entry("max-age=60, stale-while-revalidate=30, stale-if-error=600");
        let at = e.response_time();
        assert_eq!(retention(&e, at, &opts), 660);
        assert_eq!(retention(&e, at.plus(50), &opts), 610);
        let granted = CacheOptions {
            stale_while_revalidate: 1000,
            ..opts
        };
        assert_eq!(retention(&e, at, &granted), 1060);
        assert_eq!(retention(&entry("max-age=0"), at, &opts), 1);
    }
}
