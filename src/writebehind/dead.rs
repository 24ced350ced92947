//! Dead letters after the queue: the dead-letter queue's consumer keeps each one in the `CONTROL`
//! Durable Object's storage (one key per dead letter, `dead:<id>`, the JSON of a
//! [`DeadLetter`]), and the admin endpoints list them and replay them onto `EVENTS`.
//!
//! A replay sends the stored message unchanged (same event id, so the origin's per-event dedup
//! makes a replay of something already counted harmless), then removes the entry, but only if
//! it is still the one that was replayed: a message that fails again and is dead-lettered anew
//! in between keeps its new entry.

use super::producer::EVENTS;
use super::queue::{self, Delivered};
use crate::control;
use crate::exchange::{now_ms, random};
use breakwater_core::writebehind::{DeadLetter, ReplayRequest, backoff};
use serde::{Deserialize, Serialize};
use worker::js_sys::{self, Map};
use worker::wasm_bindgen::JsValue;
use worker::{Env, ListOptions, Result, State};

const PREFIX: &str = "dead:";
/// Storage calls take at most 128 keys.
const KEYS_PER_CALL: usize = 128;
/// The most a list call (and a replay of `all`) returns.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;

/// Keeps a dead-letter queue batch in `CONTROL`, then acks it; if `CONTROL` fails, retries the
/// messages after a backoff (they stay on the dead-letter queue meanwhile).
pub async fn store(env: &Env, messages: Vec<Delivered>) {
    if messages.is_empty() {
        return;
    }
    let now = now_ms() as u64;
    let letters: Vec<DeadLetter> = messages
        .iter()
        .map(|m| DeadLetter::from_queue(&m.body, m.timestamp, now))
        .collect();
    match control::keep_dead_letters(env, &letters).await {
        Ok(()) => {
            worker::console_warn!(
                "dead letters: kept {} ({}{}); list them at /_breakwater/dead-events",
                letters.len(),
                letters[0].id,
                if letters.len() > 1 { ", ..." } else { "" }
            );
            for message in &messages {
                message.ack();
            }
        }
        Err(e) => {
            worker::console_error!(
                "dead letters: CONTROL did not keep {}, retrying: {e}",
                letters.len()
            );
            for message in &messages {
                message.retry(backoff(
                    message.attempts,
                    1,
                    60,
                    u64::from_le_bytes(random()),
                ));
            }
        }
    }
}

/// A page of the list, in id order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    pub dead_events: Vec<DeadLetter>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// What a replay did.
#[derive(Debug, Serialize)]
pub struct Replayed {
    pub replayed: usize,
    pub ids: Vec<String>,
    /// Named but not in the list.
    pub not_found: Vec<String>,
    /// In the list but kept only in part (oversized), so not replayable.
    pub skipped: Vec<String>,
    /// `all` stopped at a page: more are waiting (replay again).
    pub more: bool,
}

/// Re-sends the named (or the first [`MAX_PAGE`]) dead letters to `EVENTS` and removes them.
pub async fn replay(env: &Env, request: &ReplayRequest) -> Result<Replayed> {
    let (letters, not_found, more) = match request {
        ReplayRequest::Ids(ids) => {
            let found = control::dead_letters_by_id(env, ids).await?;
            let not_found = ids
                .iter()
                .filter(|id| !found.iter().any(|l| &l.id == *id))
                .cloned()
                .collect();
            (found, not_found, false)
        }
        ReplayRequest::All => {
            let page = control::list_dead_letters(env, None, MAX_PAGE).await?;
            (page.dead_events, Vec::new(), page.next.is_some())
        }
    };
    let (replayable, kept): (Vec<DeadLetter>, Vec<DeadLetter>) =
        letters.into_iter().partition(DeadLetter::replayable);
    let bodies: Vec<String> = replayable.iter().map(|l| l.message.to_string()).collect();
    queue::send(env, EVENTS, &bodies).await?;
    let done: Vec<(String, u64)> = replayable.iter().map(|l| (l.id.clone(), l.at)).collect();
    control::remove_dead_letters(env, &done).await?;
    Ok(Replayed {
        replayed: replayable.len(),
        ids: replayable.into_iter().map(|l| l.id).collect(),
        not_found,
        skipped: kept.into_iter().map(|l| l.id).collect(),
        more,
    })
}

/// `CONTROL`'s side: the storage operations behind its `/dead-events` endpoints.
pub struct Store<'a>(pub &'a State);

/// Which entries to remove: each only if its `at` still matches.
#[derive(Debug, Serialize, Deserialize)]
pub struct Removal {
    pub letters: Vec<(String, u64)>,
}

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
    pub async fn remove(&self, removal: &Removal) -> Result<usize> {
        let mut removed = 0;
        for chunk in removal.letters.chunks(KEYS_PER_CALL) {
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
