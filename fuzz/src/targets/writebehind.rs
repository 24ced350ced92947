//! `writebehind`: everything of write-behind that reads outside bytes
//! (`core/src/writebehind/`): a request on a write-behind route, the `EVENTS` queue message, the
//! origin's batch endpoint body and its answer, the dead-letter queue's messages and the replay
//! request.
//!
//! Input: the body is read as each of those in turn. `:kind` (`view`/`vote`), `:id` (the path's
//! `{id}`), `content-type` and `:max` (bytes) shape the request; `:status` and `:answer` the
//! origin's answer to a batch (`:status: failed` for none), `:attempts` each message's delivery
//! count.
//!
//! Asserts: an accepted request has a positive product id and a value its kind allows, within
//! the size limit, and a refusal is one of 400/413/415/422; an accepted queue message is within
//! its size, version 1, holds a valid event and round-trips; poison is named for what it is; an
//! accepted batch holds 1 to 500 valid events and round-trips, and its id does not depend on the
//! events' order; a settlement has one action per message, retries wait within the configured
//! delays, applied events are acked unless rejected, and a message out of attempts is
//! dead-lettered; dead letters are named by their event id or a digest, keep small bodies whole
//! and round-trip through their envelope; a replay names 1 to 1000 distinct ids.

use breakwater_core::writebehind::{
    Action, BatchId, BatchRequest, DeadLetter, DeadLetterEnvelope, Delivery, Event, EventId,
    EventKind, MAX_EVENTS, Outcome as Settled, Poison, ProductId, ReplayRequest, WriteBehindConfig,
    batch_id, classify, parse_event, settle,
};
use serde_json::json;

use super::{Outcome, Target, ensure};
use crate::draw::{self, pick};
use crate::envelope::Envelope;
use crate::rng::Rng;

pub const TARGET: Target = Target {
    name: "writebehind",
    about: "write-behind requests, EVENTS queue messages, the batch endpoint's request and \
            answer (settle), dead letters and replay requests",
    generate,
    run,
    dictionary: DICTIONARY,
    max_len: 20 * 1024,
};

const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "\"v\"",
    "\"event\"",
    "\"id\"",
    "\"kind\"",
    "\"view\"",
    "\"vote\"",
    "\"product_id\"",
    "\"value\"",
    "\"at\"",
    "\"principal\"",
    "\"batch_id\"",
    "\"events\"",
    "\"applied\"",
    "\"duplicates\"",
    "\"rejected\"",
    "\"reason\"",
    "\"dead_letter\"",
    "\"message\"",
    "\"truncated\"",
    "\"attempts\"",
    "\"first_seen\"",
    "\"ids\"",
    "\"all\"",
    "\"detail\"",
    "\"title\"",
    "b1:",
    "9223372036854775807",
    "9223372036854775808",
    "-1",
    "1.0",
    "application/json",
    ":status: ",
    ":answer: ",
    ":id: ",
];

fn event_json(rng: &mut Rng) -> serde_json::Value {
    let mut event = json!({
        "id": pick(rng, &["e1", "e2", "a.b:c-d_e", "", "x y", "é"]),
        "kind": pick(rng, &["view", "vote", "View", "click"]),
        "product_id": draw::json_number(rng),
        "value": pick(rng, &["1", "-1", "0", "2"]).parse::<i64>().unwrap_or(1),
        "at": draw::json_number(rng),
    });
    if rng.one_in(3) {
        event = json!({"id": format!("e{}", rng.below(9)), "kind": "view", "product_id": rng.range(1, 9), "value": 1, "at": 5});
    }
    event
}

fn generate(rng: &mut Rng) -> Vec<u8> {
    let body = match rng.below(6) {
        0 => {
            json!({"v": pick(rng, &["1", "2"]).parse::<u64>().unwrap_or(1), "event": event_json(rng), "principal": "ip:1.2.3.4"})
        }
        1 => {
            json!({"batch_id": pick(rng, &["b1:0f", "b", "", "bad id"]), "events": (0..rng.below(4)).map(|_| event_json(rng)).collect::<Vec<_>>()})
        }
        2 => {
            json!({"dead_letter": 1, "message": {"v": 1, "event": event_json(rng)}, "reason": "rejected", "attempts": 3, "first_seen": 1, "at": 2})
        }
        3 => {
            json!({"ids": (0..rng.below(4)).map(|_| pick(rng, &["e1", "e2", "raw-00"])).collect::<Vec<_>>(), "all": pick(rng, &["true", "false"]) == "true"})
        }
        4 => json!({"value": pick(rng, &["1", "-1", "2"]).parse::<i64>().unwrap_or(1)}),
        _ => draw::object(
            rng,
            &["v", "event", "ids", "all", "value", "batch_id", "events"],
            &["view", "e1"],
            2,
        ),
    };
    let mut e = Envelope::new()
        .field(":kind", pick(rng, &["view", "vote"]))
        .field(
            ":id",
            pick(
                rng,
                &["1", "42", "0", "-1", "007", "9223372036854775808", "x", ""],
            ),
        );
    if rng.one_in(2) {
        e = e.field(
            "content-type",
            pick(
                rng,
                &[
                    "application/json",
                    "Application/JSON; charset=utf-8",
                    "text/plain",
                    "application/jsonx",
                ],
            ),
        );
    }
    if rng.one_in(2) {
        let answer = json!({"batch_id": "b1:x", "applied": rng.range(0, 3), "duplicates": 0,
                            "rejected": [{"id": "e1", "reason": draw::noise(rng, 20)}]});
        e = e
            .field(
                ":status",
                pick(rng, &["200", "400", "401", "500", "503", "failed"]),
            )
            .field(":answer", draw::json_text(rng, &answer).replace('\n', ""));
    }
    if rng.one_in(3) {
        e = e.field(
            ":attempts",
            pick(rng, &["1", "5", "6", "100", "4294967295"]),
        );
    }
    if rng.one_in(4) {
        e = e.field(":max", pick(rng, &["256", "1024", "0", "65536"]));
    }
    e.with_body(draw::json_text(rng, &body).into_bytes())
        .to_bytes()
}

fn run(input: &[u8]) -> Result<Outcome, String> {
    let e = Envelope::parse(input);
    let mut out = Outcome::default();
    let text = e.body_text();
    let max = e.number(":max", 1024) as usize;

    check_request(&e, max, &mut out)?;

    let message = classify(&text, max);
    match &message {
        Ok(m) => {
            out.note("message");
            ensure!(
                text.len() <= max && m.v == 1,
                "message: within its size, version 1"
            );
            check_event(&m.event)?;
            let again = serde_json::to_string(m).unwrap_or_default();
            ensure!(
                classify(&again, usize::MAX).as_ref() == Ok(m),
                "message: a message round-trips",
                "{again}"
            );
        }
        Err(poison) => {
            out.note(poison.as_str());
            ensure!(
                matches!(poison, Poison::Oversized { .. }) == (text.len() > max),
                "message: oversized exactly when over the limit"
            );
        }
    }

    let batch = match serde_json::from_str::<BatchRequest>(&text) {
        Ok(batch) => {
            out.note("batch");
            ensure!(
                (1..=MAX_EVENTS).contains(&batch.events.len()),
                "batch: 1 to 500 events",
                "{}",
                batch.events.len()
            );
            for event in &batch.events {
                check_event(event)?;
            }
            let again = serde_json::to_string(&batch).unwrap_or_default();
            ensure!(
                serde_json::from_str::<BatchRequest>(&again).ok().as_ref() == Some(&batch),
                "batch: round-trips"
            );
            let id = batch_id(batch.events.iter().map(Event::id));
            ensure!(
                BatchId::parse(&id).is_ok(),
                "batch: a derived id is a valid batch id",
                "{id}"
            );
            ensure!(
                batch_id(batch.events.iter().rev().map(Event::id)) == id,
                "batch: the id does not depend on the order"
            );
            Some(batch)
        }
        Err(_) => None,
    };
    // What the consumer sends: the queued event, or a fixed pair.
    let batch = match (&message, batch) {
        (Ok(m), _) => BatchRequest::new(vec![m.event.clone()]),
        (Err(_), Some(b)) => BatchRequest::new(b.events),
        (Err(_), None) => BatchRequest::new(fixed_events()),
    };
    check_settle(&e, &batch, &mut out)?;
    check_dead_letters(&e, &text, &mut out)?;

    match ReplayRequest::parse(&e.body) {
        Ok(ReplayRequest::Ids(ids)) => {
            out.note("replay-ids");
            ensure!(
                (1..=1000).contains(&ids.len()) && ids.windows(2).all(|w| w[0] < w[1]),
                "replay: 1 to 1000 distinct ids, sorted"
            );
        }
        Ok(ReplayRequest::All) => out.note("replay-all"),
        Err(_) => {}
    }
    Ok(out)
}

/// Two plain view events, for a settlement when the input holds neither a message nor a batch.
fn fixed_events() -> Vec<Event> {
    serde_json::from_value(json!([
        {"id": "e1", "kind": "view", "product_id": 1, "value": 1, "at": 10},
        {"id": "e2", "kind": "view", "product_id": 2, "value": 1, "at": 10}
    ]))
    .unwrap_or_default()
}

fn check_event(event: &Event) -> Result<(), String> {
    ensure!(
        event.kind().allows(event.value())
            && event.product_id().get() > 0
            && event.at() <= i64::MAX as u64
            && EventId::parse(event.id().as_str()).as_ref() == Ok(event.id()),
        "event: a valid id, a positive product, a value its kind allows",
        "{event:?}"
    );
    Ok(())
}

fn check_request(e: &Envelope, max: usize, out: &mut Outcome) -> Result<(), String> {
    let kind = if e.get(":kind") == Some("vote") {
        EventKind::Vote
    } else {
        EventKind::View
    };
    let id = e.get(":id").unwrap_or("1");
    let content_type = e.get("content-type");
    match parse_event(kind, id, content_type, &e.body, max) {
        Ok(input) => {
            out.note("request-accepted");
            ensure!(
                input.product_id.get() > 0
                    && ProductId::parse(id) == Ok(input.product_id)
                    && kind.allows(input.value)
                    && input.kind == kind
                    && e.body.len() <= max,
                "request: a positive product, a value its kind allows, within the size",
                "{input:?}"
            );
        }
        Err(error) => {
            out.note(error.as_str());
            ensure!(
                [400, 413, 415, 422].contains(&error.status()),
                "request: a documented status",
                "{}",
                error.status()
            );
            if ProductId::parse(id).is_err() {
                ensure!(
                    error.status() == 400,
                    "request: the path's id is checked first"
                );
            }
        }
    }
    Ok(())
}

fn check_settle(e: &Envelope, batch: &BatchRequest, out: &mut Outcome) -> Result<(), String> {
    let config = WriteBehindConfig::default();
    let delivery = match e.get(":status") {
        None | Some("failed") => Delivery::Failed(e.get(":answer").unwrap_or("refused").to_owned()),
        Some(status) => Delivery::Answered {
            status: status.trim().parse().unwrap_or(200),
            body: e
                .get(":answer")
                .map_or_else(|| e.body_text(), str::to_owned),
        },
    };
    let attempts_each = u32::try_from(e.number(":attempts", 1)).unwrap_or(u32::MAX);
    let attempts = vec![attempts_each; batch.events.len()];
    let mut draws = 0u64;
    let settlement = settle(batch, &attempts, &delivery, &config, || {
        draws = draws
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        draws
    });
    out.note(settlement.outcome.as_str());
    ensure!(
        settlement.actions.len() == batch.events.len(),
        "settle: one action per message"
    );
    for (event, action) in batch.events.iter().zip(&settlement.actions) {
        out.note(action.as_str());
        match action {
            Action::Retry { delay_seconds } => ensure!(
                (1..=config.retry_max_seconds).contains(delay_seconds)
                    && attempts_each < config.max_attempts,
                "settle: a retry waits 1 s to retry_max_seconds, only with attempts left",
                "{delay_seconds}"
            ),
            Action::DeadLetter { reason } => ensure!(
                !reason.is_empty() && reason.chars().count() < 400,
                "settle: a dead letter says why, briefly",
                "{} chars",
                reason.chars().count()
            ),
            Action::Ack => {}
        }
        if let Settled::Applied { .. } = settlement.outcome {
            ensure!(
                !matches!(action, Action::Retry { .. }),
                "settle: an applied batch retries nothing",
                "{event:?}"
            );
        }
        if matches!(settlement.outcome, Settled::Failed(_)) && attempts_each >= config.max_attempts
        {
            ensure!(
                matches!(action, Action::DeadLetter { .. }),
                "settle: a message out of attempts is dead-lettered"
            );
        }
    }
    Ok(())
}

fn check_dead_letters(e: &Envelope, text: &str, out: &mut Outcome) -> Result<(), String> {
    let now = e.number(":now", 2_000);
    let dead = DeadLetter::from_queue(text, 1_000, now);
    out.note(if dead.attempts.is_some() {
        "envelope"
    } else {
        "bare"
    });
    let digest = dead
        .id
        .strip_prefix("raw-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    ensure!(
        EventId::parse(&dead.id).is_ok() || digest,
        "dead letter: named by its event id or a digest",
        "{:?}",
        dead.id
    );
    ensure!(
        dead.replayable() != dead.truncated,
        "dead letter: replayable iff whole"
    );
    if dead.attempts.is_none() && text.len() <= 16 * 1024 {
        ensure!(
            !dead.truncated,
            "dead letter: a small message is kept whole"
        );
    }
    let envelope = DeadLetterEnvelope::new(text, "poison".to_owned(), 2, 100, 200);
    let wire = serde_json::to_string(&envelope).unwrap_or_default();
    let back = DeadLetter::from_queue(&wire, 0, 0);
    // serde_json reads a fraction to within one unit in the last place, not exactly, so only a
    // message of integers and strings comes back bit for bit (an event has no fractions).
    ensure!(
        (back.message == envelope.message || has_fraction(&envelope.message))
            && back.attempts == Some(2)
            && back.reason == "poison"
            && back.truncated == envelope.truncated,
        "dead letter: an envelope round-trips",
        "{wire}"
    );
    Ok(())
}

/// True when `value` holds a number that is not an integer.
fn has_fraction(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_fraction),
        serde_json::Value::Object(map) => map.values().any(has_fraction),
        _ => false,
    }
}
