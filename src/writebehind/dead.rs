//! Dead letters after the queue: the dead-letter queue's consumer keeps each one in the `CONTROL`
//! Durable Object's storage ([`crate::bindings::control::dead_letters`]), and the admin
//! endpoints list them and replay them onto `EVENTS`.
//!
//! A replay sends the stored message unchanged (same event id, so the origin's per-event dedup
//! makes a replay of something already counted harmless), then removes the entry, but only if
//! it is still the one that was replayed: a message that fails again and is dead-lettered anew
//! in between keeps its new entry.

use crate::bindings::control::client as control;
use crate::bindings::control::dead_letters::MAX_PAGE;
use crate::bindings::queue::{self, Delivered, EVENTS};
use crate::runtime::{now_millis, random_u64};
use breakwater_core::writebehind::{DeadLetter, ReplayRequest, backoff};
use serde::Serialize;
use worker::{Env, Result};

/// Keeps a dead-letter queue batch in `CONTROL`, then acks it; if `CONTROL` fails, retries the
/// messages after a backoff (they stay on the dead-letter queue meanwhile).
pub async fn store(env: &Env, messages: Vec<Delivered>) {
    if messages.is_empty() {
        return;
    }
    let now = now_millis();
    let letters: Vec<DeadLetter> = messages
        .iter()
        .map(|m| DeadLetter::from_queue(&m.body, m.timestamp, now))
        .collect();
    match control::keep_dead_letters(env, &letters).await {
        Ok(()) => {
            worker::console_warn!(
                "dead letters: kept {} ({}{}); list them at /_breakwater/dead-events",
                letters.len(),
                letters.first().map_or("", |l| l.id.as_str()),
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
                message.retry(backoff(message.attempts, 1, 60, random_u64()));
            }
        }
    }
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
