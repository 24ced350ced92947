//! Reading and writing the tiers a route uses, in its order: isolate memory, the Cache API (this
//! data centre) and KV (global, eventually consistent). All hold the same record
//! ([`breakwater_core::cache::Record`]); memory decoded, the other two as [`encode`]d bytes under
//! the key's [`storage_key`].
//!
//! A lookup takes the first tier whose record is for this key and not purged; the tiers above it
//! that missed are filled from it (promotion). A failing lower tier reads as a miss and is
//! logged: a cache outage costs hits, never answers.

pub mod memory;

use breakwater_core::cache::{decode, encode, storage_key};
use breakwater_core::policy::Tier;
use breakwater_core::purge::PurgeLog;
use memory::Stored;
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

/// A stored response and the tier it came from.
pub struct Found {
    pub tier: Tier,
    pub stored: Rc<Stored>,
}

/// The first unpurged record for `key` in `tiers`, or `None`. A purged memory entry is dropped.
pub async fn find(env: &Env, tiers: &[Tier], key: &str, log: &PurgeLog) -> Option<Found> {
    for &tier in tiers {
        let Some(stored) = read(env, tier, key).await else {
            continue;
        };
        if stored.is_purged(log) {
            if tier == Tier::Memory {
                memory::remove(key);
            }
            continue;
        }
        return Some(Found { tier, stored });
    }
    None
}

/// The tiers listed before `tier` in `tiers`: those a hit in `tier` is promoted into.
pub fn above(tiers: &[Tier], tier: Tier) -> Vec<Tier> {
    tiers.iter().copied().take_while(|t| *t != tier).collect()
}

async fn read(env: &Env, tier: Tier, key: &str) -> Option<Rc<Stored>> {
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
    let (record, body) = decode(&bytes).ok()?;
    // Another key with the same storage key: not ours.
    (record.key == key).then(|| {
        Rc::new(Stored {
            record,
            body: body.into(),
        })
    })
}

/// Writes `stored` into each of `tiers`, to be kept `retention` seconds. Memory is written at
/// once (this call); the returned future writes the others, so the caller can run it after the
/// answer has gone (`ctx.wait_until`) or await it.
pub fn write(
    env: &Env,
    tiers: &[Tier],
    stored: &Rc<Stored>,
    retention: u64,
    memory_bytes: usize,
) -> impl Future<Output = ()> + 'static {
    if tiers.contains(&Tier::Memory) {
        memory::put(stored.clone(), memory_bytes);
    }
    let lower: Vec<Tier> = tiers
        .iter()
        .copied()
        .filter(|t| *t != Tier::Memory)
        .collect();
    let (env, stored) = (env.clone(), stored.clone());
    async move {
        if lower.is_empty() {
            return;
        }
        let bytes = encode(&stored.record, &stored.body);
        let key = &stored.record.key;
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
