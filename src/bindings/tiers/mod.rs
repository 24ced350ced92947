//! Reading and writing the tiers a route uses, in its order: isolate memory, the Cache API (this
//! data centre) and KV (global, eventually consistent). All hold the same value under a key: its
//! variants (`Vary`, RFC 9111 §4.1), each a [`breakwater_core::cache::Record`] with its body;
//! memory decoded, the other two as [`encode`]d bytes under the key's [`storage_key`].
//!
//! A lookup takes the first tier holding an unpurged variant that matches the request; the tiers
//! above it are filled from it (promotion). A failing lower tier reads as a miss and is logged: a
//! cache outage costs hits, never answers.

pub mod memory;

use breakwater_core::cache::{HeaderList, decode, encode, select_variant, storage_key};
use breakwater_core::policy::Tier;
use breakwater_core::purge::PurgeLog;
use memory::{Stored, Variants};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::{Cache, Env, Headers, Response};

/// The KV namespace of the global tier.
const KV_BINDING: &str = "CACHE_KV";
/// KV's shortest expiration. An entry useful for less than this is not written to KV at all:
/// KV's own propagation takes up to a minute, so it could not help.
const KV_MIN_TTL: u64 = 60;
/// KV allows one write per second per key; this isolate writes a key at most this often.
const KV_WRITE_INTERVAL_MS: f64 = 1_000.0;
/// Keys whose last KV write time this isolate remembers (bounded whatever the key count).
const KV_WRITES_REMEMBERED: usize = 1024;
/// Cache API keys are URLs; this host is never resolved, it only names the entries.
const CACHE_API_BASE: &str = "https://cache.breakwater.internal/";

thread_local! {
    static KV_WRITES: RefCell<HashMap<String, f64>> = RefCell::new(HashMap::new());
}

/// What the tiers hold for a key.
pub struct Found {
    /// The tier the variants came from.
    pub tier: Tier,
    /// Its unpurged variants, most recent first (never empty).
    pub variants: Variants,
    /// The one that matches the request, if any.
    pub stored: Option<Rc<Stored>>,
}

/// The first tier of `tiers` holding an unpurged variant for `key` that matches `request`; else
/// the first holding any (`stored` is `None` then: a variant for another request). Purged
/// variants are dropped from memory.
pub async fn find(
    env: &Env,
    tiers: &[Tier],
    key: &str,
    request: &HeaderList,
    log: &PurgeLog,
) -> Option<Found> {
    let mut other = None;
    for &tier in tiers {
        let Some(read) = read(env, tier, key).await else {
            continue;
        };
        let variants: Variants = if read.iter().any(|v| v.is_purged(log)) {
            let unpurged: Variants = read.iter().filter(|v| !v.is_purged(log)).cloned().collect();
            if tier == Tier::Memory {
                memory::replace(key, unpurged.clone());
            }
            unpurged
        } else {
            read
        };
        if variants.is_empty() {
            continue;
        }
        if let Some(stored) = select_variant(&variants, request).cloned() {
            return Some(Found {
                tier,
                variants,
                stored: Some(stored),
            });
        }
        other.get_or_insert(Found {
            tier,
            variants,
            stored: None,
        });
    }
    other
}

/// The tiers listed before `tier` in `tiers`: those a hit in `tier` is promoted into.
pub fn above(tiers: &[Tier], tier: Tier) -> Vec<Tier> {
    tiers.iter().copied().take_while(|t| *t != tier).collect()
}

async fn read(env: &Env, tier: Tier, key: &str) -> Option<Variants> {
    let bytes = match tier {
        Tier::Memory => return memory::get(key),
        Tier::CacheApi => {
            let found = Cache::default().get(cache_api_url(key), false).await;
            match found {
                Ok(Some(mut response)) => response.bytes().await.ok(),
                Ok(None) => None,
                Err(e) => warn(tier, key, &e),
            }
        }
        Tier::Kv => match env.kv(KV_BINDING) {
            Ok(kv) => kv
                .get(&storage_key(key))
                .bytes()
                .await
                .unwrap_or_else(|e| warn(tier, key, &e)),
            Err(e) => warn(tier, key, &e),
        },
    }?;
    let decoded = decode(&bytes).ok()?;
    // Another key with the same storage key: not ours.
    decoded
        .into_iter()
        .map(|(record, body)| {
            (record.key == key).then(|| {
                Rc::new(Stored {
                    record,
                    body: body.into(),
                })
            })
        })
        .collect()
}

/// Writes `variants` under `key` into each of `tiers`, to be kept `retention` seconds. Memory is
/// written at once (this call); the returned future writes the others, so the caller can run it
/// after the answer has gone (`ctx.wait_until`) or await it.
pub fn write(
    env: &Env,
    tiers: &[Tier],
    key: &str,
    variants: &Variants,
    retention: u64,
    memory_bytes: usize,
) -> impl Future<Output = ()> + 'static {
    if tiers.contains(&Tier::Memory) {
        memory::put(key, variants.clone(), memory_bytes);
    }
    let lower: Vec<Tier> = tiers
        .iter()
        .copied()
        .filter(|t| *t != Tier::Memory)
        .collect();
    let (env, key, variants) = (env.clone(), key.to_owned(), variants.clone());
    async move {
        if lower.is_empty() {
            return;
        }
        let bytes = encode(variants.iter().map(|v| (&v.record, &v.body[..])));
        let key = &key;
        for tier in lower {
            let result = match tier {
                Tier::CacheApi => put_cache_api(key, bytes.clone(), retention).await,
                Tier::Kv => put_kv(&env, key, &bytes, retention).await,
                Tier::Memory => Ok(()),
            };
            if let Err(e) = result {
                warn::<()>(tier, key, &e);
            }
        }
    }
}

fn cache_api_url(key: &str) -> String {
    format!("{CACHE_API_BASE}{}", storage_key(key))
}

async fn put_cache_api(key: &str, bytes: Vec<u8>, retention: u64) -> worker::Result<()> {
    let headers = Headers::new();
    headers.set("cache-control", &format!("public, max-age={retention}"))?;
    let response = Response::from_bytes(bytes)?.with_headers(headers);
    Cache::default().put(cache_api_url(key), response).await
}

async fn put_kv(env: &Env, key: &str, bytes: &[u8], retention: u64) -> worker::Result<()> {
    if retention < KV_MIN_TTL || !may_write_kv(key) {
        return Ok(());
    }
    env.kv(KV_BINDING)?
        .put_bytes(&storage_key(key), bytes)?
        .expiration_ttl(retention)
        .execute()
        .await?;
    Ok(())
}

/// Claims this isolate's KV write slot for `key`; false if it wrote `key` within the interval.
fn may_write_kv(key: &str) -> bool {
    let now = crate::runtime::now_ms();
    KV_WRITES.with_borrow_mut(|writes| {
        if writes
            .get(key)
            .is_some_and(|&at| now - at < KV_WRITE_INTERVAL_MS)
        {
            return false;
        }
        if writes.len() >= KV_WRITES_REMEMBERED {
            writes.retain(|_, at| now - *at < KV_WRITE_INTERVAL_MS);
        }
        writes.insert(key.to_owned(), now);
        true
    })
}

fn warn<T>(tier: Tier, key: &str, e: &dyn std::fmt::Display) -> Option<T> {
    worker::console_warn!("cache tier {} failed for {key:?}: {e}", tier.as_str());
    None
}
