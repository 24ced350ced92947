//! Write-behind dead letters in the `CONTROL` Durable Object's storage: one key per dead letter,
//! `dead:<id>`, the JSON of a [`DeadLetter`]; listed in id order, a page at a time.

use breakwater_core::control::Page;
use breakwater_core::writebehind::DeadLetter;
use worker::js_sys::{self, Map};
use worker::wasm_bindgen::JsValue;
use worker::{ListOptions, Result, State};

const PREFIX: &str = "dead:";
/// Storage calls take at most 128 keys.
const KEYS_PER_CALL: usize = 128;
/// The most a list call (and a replay of `all`) returns.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;

/// The storage operations behind `CONTROL`'s dead-letter commands.
pub struct Store<'a>(pub &'a State);

impl Store<'_> {
    /// Keeps `letters`, replacing entries with the same id.
    pub async fn keep(&self, letters: &[DeadLetter]) -> Result<()> {
        for chunk in letters.chunks(KEYS_PER_CALL) {
            let values = js_sys::Object::new();
            for letter in chunk {
                let json = serde_json::to_string(letter)
                    .map_err(|e| worker::Error::RustError(e.to_string()))?;
                js_sys::Reflect::set(
                    &values,
                    &JsValue::from_str(&key(&letter.id)),
                    &JsValue::from_str(&json),
                )?;
            }
            self.0.storage().put_multiple_raw(values).await?;
        }
        Ok(())
    }

    /// Up to `limit` entries after the id `after`, in id order.
    pub async fn list(&self, after: Option<&str>, limit: usize) -> Result<Page> {
        let start = after.map(|id| format!("{}\u{0}", key(id)));
        let mut options = ListOptions::new().prefix(PREFIX).limit(limit);
        if let Some(start) = &start {
            options = options.start(start);
        }
        let dead_events = letters(&self.0.storage().list_with_options(options).await?);
        let next = (dead_events.len() == limit)
            .then(|| dead_events.last().map(|l| l.id.clone()))
            .flatten();
        Ok(Page { dead_events, next })
    }

    pub async fn by_id(&self, ids: &[String]) -> Result<Vec<DeadLetter>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(KEYS_PER_CALL) {
            let keys: Vec<String> = chunk.iter().map(|id| key(id)).collect();
            found.extend(letters(&self.0.storage().get_multiple(keys).await?));
        }
        Ok(found)
    }

    /// Removes the entries whose `at` still matches; returns how many.
    pub async fn remove(&self, letters: &[(String, u64)]) -> Result<usize> {
        let mut removed = 0;
        for chunk in letters.chunks(KEYS_PER_CALL) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let current = self.by_id(&ids).await?;
            let keys: Vec<String> = current
                .iter()
                .filter(|l| chunk.iter().any(|(id, at)| *id == l.id && *at == l.at))
                .map(|l| key(&l.id))
                .collect();
            if !keys.is_empty() {
                removed += self.0.storage().delete_multiple(keys).await?;
            }
        }
        Ok(removed)
    }
}

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The dead letters in a storage result (key → JSON text); unreadable entries are logged and
/// left out rather than failing the whole list.
fn letters(map: &Map) -> Vec<DeadLetter> {
    let mut out = Vec::new();
    map.for_each(&mut |value, key| match value
        .as_string()
        .map(|json| serde_json::from_str::<DeadLetter>(&json))
    {
        Some(Ok(letter)) => out.push(letter),
        _ => worker::console_error!("dead letters: entry {key:?} is unreadable"),
    });
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}
