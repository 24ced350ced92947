//! One delivery of a queue batch to the origin (`POST {batch_path}`), and what it means for each
//! message: [`settle`] decides ack, retry (after a [`backoff`] delay) or dead-letter.
//!
//! The origin's contract (its documents are [`super::batch`]'s): `200` with what each event did
//! (applied, duplicate or rejected, the last never to succeed); `400`/`413`/`415`/`422` when the
//! batch itself is malformed, which no retry fixes; `401`/`403` when the token is wrong, which an
//! operator fixes, so those retry like an outage; anything else, and no answer at all, retries.

use super::backoff::backoff;
use super::batch::{BatchRequest, BatchResponse, Rejected};
use super::config::WriteBehindConfig;

/// What came back from one call to the batch endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The origin answered `status` with `body`.
    Answered { status: u16, body: String },
    /// No answer: refused, reset, timed out, the breaker was open, or the call could not even be
    /// made (no `ORIGIN_TOKEN`). Always worth another try.
    Failed(String),
}

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Done (applied now, or a duplicate of what was applied before).
    Ack,
    /// Deliver again in `delay_seconds`.
    Retry { delay_seconds: u32 },
    /// Never deliverable, or out of attempts: to the dead-letter queue with `reason`, then ack.
    DeadLetter { reason: String },
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Retry { .. } => "retry",
            Self::DeadLetter { .. } => "dead-letter",
        }
    }
}

/// What the delivery came to, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The origin applied the batch.
    Applied {
        applied: u64,
        duplicates: u64,
        rejected: usize,
    },
    /// The origin refused the batch as malformed: every message is poison.
    Refused(String),
    /// No usable answer; the messages retry.
    Failed(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Refused(_) => "refused",
            Self::Failed(_) => "failed",
        }
    }
}

/// [`settle`]'s answer: the outcome, and one action per message, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub outcome: Outcome,
    pub actions: Vec<Action>,
}

/// Longest error text kept in a reason (the origin's detail can be long).
const MAX_DETAIL_CHARS: usize = 300;

/// Decides every message of a delivery of `batch`. `attempts[i]` is the delivery count of
/// message `i` including this one (the queue's `attempts`); `random` gives 64 random bits per
/// retry, for the backoff's jitter.
pub fn settle(
    batch: &BatchRequest,
    attempts: &[u32],
    delivery: &Delivery,
    config: &WriteBehindConfig,
    mut random: impl FnMut() -> u64,
) -> Settlement {
    let (outcome, rejected) = outcome(batch, delivery);
    let actions = batch
        .events
        .iter()
        .zip(attempts)
        .map(|(event, &attempts)| match &outcome {
            Outcome::Applied { .. } => {
                rejected
                    .iter()
                    .find(|r| r.id == *event.id())
                    .map_or(Action::Ack, |r| Action::DeadLetter {
                        reason: format!("rejected by the origin: {}", clip(&r.reason)),
                    })
            }
            Outcome::Refused(why) => Action::DeadLetter {
                reason: why.clone(),
            },
            Outcome::Failed(why) if attempts >= config.max_attempts => Action::DeadLetter {
                reason: format!("gave up after {attempts} attempts; last error: {why}"),
            },
            Outcome::Failed(_) => Action::Retry {
                delay_seconds: backoff(
                    attempts,
                    config.retry_base_seconds,
                    config.retry_max_seconds,
                    random(),
                ),
            },
        })
        .collect();
    Settlement { outcome, actions }
}

/// The delivery's outcome, with the events the origin rejected when it applied the batch.
fn outcome(batch: &BatchRequest, delivery: &Delivery) -> (Outcome, Vec<Rejected>) {
    let (status, body) = match delivery {
        Delivery::Failed(why) => return (Outcome::Failed(clip(why)), Vec::new()),
        Delivery::Answered { status, body } => (*status, body),
    };
    let outcome = match status {
        200 => match serde_json::from_str::<BatchResponse>(body) {
            Ok(answer) if answer.batch_id == batch.batch_id => {
                let outcome = Outcome::Applied {
                    applied: answer.applied,
                    duplicates: answer.duplicates,
                    rejected: answer.rejected.len(),
                };
                return (outcome, answer.rejected);
            }
            Ok(answer) => Outcome::Failed(format!(
                "the origin answered for batch {:?}, not {:?}",
                clip(answer.batch_id.as_str()),
                batch.batch_id
            )),
            // Perhaps applied: a redelivery is harmless, so find out by trying again.
            // Clipped: serde's message quotes the offending value, as long as the body holds it.
            Err(e) => Outcome::Failed(clip(&format!("the origin's 200 is unreadable: {e}"))),
        },
        400 | 413 | 415 | 422 => Outcome::Refused(format!(
            "the origin refused the batch as malformed ({status}): {}",
            detail(body)
        )),
        401 | 403 => Outcome::Failed(format!(
            "the origin refused ORIGIN_TOKEN ({status}): it must equal the origin's admin token"
        )),
        _ => Outcome::Failed(format!("the origin answered {status}: {}", detail(body))),
    };
    (outcome, Vec::new())
}

/// A problem+json body's `detail` (else `title`), else the start of the body.
fn detail(body: &str) -> String {
    let problem: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        problem
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let text = field("detail")
        .or_else(|| field("title"))
        .unwrap_or_else(|| body.trim().to_owned());
    if text.is_empty() {
        "no detail".into()
    } else {
        clip(&text)
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writebehind::{Event, EventId, EventKind, ProductId};
    use serde_json::json;

    fn event(id: &str) -> Event {
        Event::new(
            EventId::parse(id).unwrap(),
            EventKind::View,
            ProductId::new(1).unwrap(),
            1,
            10,
        )
        .unwrap()
    }

    fn batch(ids: &[&str]) -> BatchRequest {
        BatchRequest::new(ids.iter().map(|id| event(id)).collect())
    }

    fn config() -> WriteBehindConfig {
        WriteBehindConfig {
            max_attempts: 3,
            retry_base_seconds: 2,
            retry_max_seconds: 60,
            ..WriteBehindConfig::default()
        }
    }

    fn answered(status: u16, body: serde_json::Value) -> Delivery {
        Delivery::Answered {
            status,
            body: body.to_string(),
        }
    }

    #[test]
    fn applied_and_duplicates_are_acked_and_rejected_dead_lettered() {
        let b = batch(&["e1", "e2", "e3"]);
        let delivery = answered(
            200,
            json!({"batch_id": b.batch_id, "applied": 1, "duplicates": 1,
                   "rejected": [{"id": "e3", "reason": "product 1 does not exist"}]}),
        );
        let s = settle(&b, &[1, 1, 1], &delivery, &config(), || 0);
        assert_eq!(s.outcome.as_str(), "applied");
        assert_eq!(s.actions[0], Action::Ack);
        assert_eq!(s.actions[1], Action::Ack);
        assert_eq!(
            s.actions[2],
            Action::DeadLetter {
                reason: "rejected by the origin: product 1 does not exist".into()
            }
        );
    }

    #[test]
    fn a_malformed_batch_is_poison_at_once() {
        let b = batch(&["e1", "e2"]);
        for status in [400, 413, 415, 422] {
            let delivery = answered(status, json!({"title": "Bad", "detail": "events[1].value"}));
            let s = settle(&b, &[1, 1], &delivery, &config(), || 0);
            assert_eq!(s.outcome.as_str(), "refused");
            for action in &s.actions {
                let Action::DeadLetter { reason } = action else {
                    panic!("{status}: {action:?}");
                };
                assert!(reason.contains(&status.to_string()), "{reason}");
                assert!(reason.contains("events[1].value"), "{reason}");
            }
        }
    }

    #[test]
    fn failures_retry_with_backoff_until_the_last_attempt() {
        let b = batch(&["e1", "e2", "e3"]);
        let failures = [
            Delivery::Failed("connection refused".into()),
            answered(503, json!({"title": "Unavailable"})),
            answered(500, json!("boom")),
            answered(401, json!({"title": "Unauthorized"})),
            answered(403, json!({})),
            answered(404, json!({})),
            answered(429, json!({})),
            answered(200, json!({"unexpected": true})),
            answered(
                200,
                json!({"batch_id": "other", "applied": 3, "duplicates": 0}),
            ),
        ];
        for delivery in failures {
            let s = settle(&b, &[1, 2, 3], &delivery, &config(), || 0);
            assert_eq!(s.outcome.as_str(), "failed", "{delivery:?}");
            assert_eq!(s.actions[0], Action::Retry { delay_seconds: 2 });
            assert_eq!(s.actions[1], Action::Retry { delay_seconds: 4 });
            let Action::DeadLetter { reason } = &s.actions[2] else {
                panic!("{delivery:?}: {:?}", s.actions[2]);
            };
            assert!(
                reason.starts_with("gave up after 3 attempts; last error: "),
                "{reason}"
            );
        }
    }

    #[test]
    fn a_wrong_token_says_so() {
        let b = batch(&["e1"]);
        let s = settle(&b, &[1], &answered(401, json!({})), &config(), || 0);
        let Outcome::Failed(why) = s.outcome else {
            panic!()
        };
        assert!(why.contains("ORIGIN_TOKEN"), "{why}");
    }

    #[test]
    fn long_details_are_clipped() {
        let b = batch(&["e1"]);
        let long = "x".repeat(5000);
        // The last row was found by the fuzzer (fuzz target `writebehind`): serde's message for
        // an unreadable 200 quoted the whole offending string into the dead letter's reason.
        let deliveries = [
            answered(422, json!({"detail": long})),
            Delivery::Failed(long.clone()),
            answered(500, json!(long)),
            answered(
                200,
                json!({"batch_id": b.batch_id, "applied": 1, "duplicates": 0,
                                 "rejected": [{"id": "e1", "reason": long}]}),
            ),
            answered(
                200,
                json!({"batch_id": b.batch_id, "applied": 0, "duplicates": 0,
                                 "rejected": [long]}),
            ),
        ];
        for delivery in deliveries {
            let s = settle(&b, &[3], &delivery, &config(), || 0);
            let Action::DeadLetter { reason } = &s.actions[0] else {
                panic!("{:?}", s.actions[0])
            };
            assert!(reason.chars().count() < 400, "{}: {reason}", reason.len());
        }
    }
}
