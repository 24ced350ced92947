//! Property tests of the idempotency lifecycle (T-ID-02, T-ID-06, T-ID-07): clients sharing one
//! key send begin, answer, no-answer, alarm and clock steps through a model of the Durable Object,
//! which applies them one at a time. Failures persist to `properties.regressions` beside this file
//! (check it in).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::*;

const LEASE: u64 = 1_000;
const RETENTION: u64 = 5_000;
const MAX_BODY: usize = 8;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

fn policy() -> Policy {
    Policy {
        lease_ms: LEASE,
        retention_ms: RETENTION,
        max_body_bytes: MAX_BODY,
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Client `n` sends its request.
    Begin(usize),
    /// A running attempt (picked by index) gets an answer: a status and a body length.
    Answer(usize, u16, usize),
    /// A running attempt gets no answer; `true` if it was sent (lost), `false` if never sent.
    NoAnswer(usize, bool),
    Tick(u64),
    /// The alarm deletes the record if it expired.
    Alarm,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0usize..3).prop_map(Step::Begin),
        3 => (
            any::<usize>(),
            prop::sample::select(vec![200u16, 201, 303, 409, 429, 500]),
            prop::sample::select(vec![0usize, 3, MAX_BODY, MAX_BODY + 1]),
        )
            .prop_map(|(i, status, len)| Step::Answer(i, status, len)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, lost)| Step::NoAnswer(i, lost)),
        3 => prop::sample::select(vec![0, 1, LEASE / 3, LEASE - 1, LEASE, RETENTION / 2, RETENTION])
            .prop_map(Step::Tick),
        1 => Just(Step::Alarm),
    ];
    prop::collection::vec(step, 1..80)
}

/// An attempt the origin may be running: until it answers, or forever if its answer was lost.
struct Attempt {
    claim: Claim,
    /// Distinguishes the attempts' answers, so a replaced response would show.
    id: u8,
}

/// What the model knows was kept: the answer as the origin sent it, and until when.
struct Kept {
    fingerprint: Fingerprint,
    status: u16,
    body: Vec<u8>,
    content_type: String,
    expires_ms: u64,
}

proptest! {
    #![proptest_config(config())]

    /// (a) A claim is granted only when every attempt that may still be running has an expired
    /// lease, and only the latest claim completes. (b) A kept answer stays exactly as kept until it
    /// expires. (c) A replay is byte-identical to the answer the origin sent (allowed headers,
    /// status, body), and a body too large to keep is replayed by the origin. (d) 409s report the
    /// exact lease left, 422s only come from a live record of another request, and an expired
    /// record decides exactly as no record.
    #[test]
    fn one_key_many_clients(
        same_request in prop::collection::vec(prop::bool::weighted(0.75), 3),
        start in 0u64..1_000_000_000,
        steps in steps(),
    ) {
        let request = |same: bool| {
            fingerprint("POST", "/api/orders", if same { b"a" } else { b"b" })
        };
        let clients: Vec<Fingerprint> = same_request.iter().map(|&same| request(same)).collect();
        let policy = policy();
        let mut now = start;
        let mut record: Option<Record> = None;
        let mut running: Vec<Attempt> = Vec::new();
        // Lost attempts stay "running" (the origin may still be at it) but never answer.
        let mut lost: Vec<Attempt> = Vec::new();
        let mut latest: Option<Claim> = None;
        let mut kept: Option<Kept> = None;
        let mut next_id = 0u8;

        for step in steps {
            match step {
                Step::Begin(client) => {
                    let fp = clients[client];
                    let decision = begin(record.as_ref(), &fp, now, &policy);
                    if let Some(r) = record.as_ref().filter(|r| is_expired(r, now)) {
                        let fresh = begin(None, &fp, now, &policy);
                        let (Begin::Proceed(got), Begin::Proceed(want)) = (&decision, &fresh) else {
                            panic!("an expired record must decide as none: {decision:?}");
                        };
                        prop_assert_eq!(Claim { attempt: 1, ..*got }, *want);
                        let takeover = matches!(r, Record::InFlight(c) if c.fingerprint == fp);
                        prop_assert_eq!(got.attempt > 1, takeover);
                    }
                    match decision {
                        Begin::Proceed(claim) => {
                            for attempt in running.iter().chain(&lost) {
                                let lease_until = attempt.claim.lease_until_ms;
                                prop_assert!(lease_until <= now, "two live attempts");
                            }
                            prop_assert!(kept.as_ref().is_none_or(|k| k.expires_ms <= now));
                            prop_assert_eq!(claim.lease_until_ms, now + LEASE);
                            record = Some(Record::InFlight(claim));
                            latest = Some(claim);
                            running.push(Attempt { claim, id: next_id });
                            next_id = next_id.wrapping_add(1);
                        }
                        Begin::Replay(response) => {
                            let k = kept.as_ref().expect("a replay needs a kept answer");
                            prop_assert!(now < k.expires_ms && k.fingerprint == fp);
                            prop_assert_eq!(response.status, k.status);
                            prop_assert_eq!(response.body.as_deref(), Some(&k.body[..]));
                            prop_assert_eq!(
                                response.headers,
                                vec![("content-type".to_string(), k.content_type.clone())]
                            );
                        }
                        Begin::ReplayFromOrigin => {
                            let k = kept.as_ref().expect("a replay needs a kept answer");
                            prop_assert!(now < k.expires_ms && k.fingerprint == fp);
                            prop_assert!(k.body.len() > MAX_BODY);
                        }
                        Begin::InFlight { retry_after_ms } => {
                            let Some(Record::InFlight(held)) = &record else {
                                panic!("409 without an in-flight record");
                            };
                            prop_assert_eq!(held.fingerprint, fp);
                            prop_assert!(retry_after_ms > 0);
                            prop_assert_eq!(retry_after_ms, held.lease_until_ms - now);
                        }
                        Begin::Mismatch => {
                            let r = record.as_ref().expect("422 without a record");
                            prop_assert!(!is_expired(r, now) && *r.fingerprint() != fp);
                        }
                    }
                }
                Step::Answer(pick, status, len) if !running.is_empty() => {
                    let attempt = running.remove(pick % running.len());
                    let body = vec![attempt.id; len];
                    let content_type = format!("application/x-{}", attempt.id);
                    let headers = [
                        ("Content-Type".to_string(), content_type.clone()),
                        ("Set-Cookie".to_string(), format!("s={}", attempt.id)),
                    ];
                    let answer = Answer { status, headers: &headers, body: &body };
                    match complete(record.as_ref(), &attempt.claim, &answer, now, &policy) {
                        Ok(done) => {
                            prop_assert_eq!(Some(attempt.claim), latest);
                            prop_assert!(is_replayable(status));
                            prop_assert_eq!(expires_at(&done), now + RETENTION);
                            kept = Some(Kept {
                                fingerprint: attempt.claim.fingerprint,
                                status,
                                body,
                                content_type,
                                expires_ms: now + RETENTION,
                            });
                            record = Some(done);
                        }
                        Err(_) if release(record.as_ref(), &attempt.claim) => {
                            prop_assert!(!is_replayable(status));
                            prop_assert_eq!(Some(attempt.claim), latest);
                            record = None;
                        }
                        Err(_) => {}
                    }
                }
                Step::NoAnswer(pick, was_sent) if !running.is_empty() => {
                    let attempt = running.remove(pick % running.len());
                    let cause = if was_sent { NoAnswer::Lost } else { NoAnswer::NotSent };
                    let keep = should_keep_on_no_answer(cause);
                    if !keep && release(record.as_ref(), &attempt.claim) {
                        record = None;
                    }
                    if was_sent {
                        lost.push(attempt);
                    }
                }
                Step::Tick(ms) => now += ms,
                Step::Alarm => {
                    if record.as_ref().is_some_and(|r| is_expired(r, now)) {
                        record = None;
                    }
                }
                Step::Answer(..) | Step::NoAnswer(..) => {}
            }

            // (b) A kept answer is the record, unchanged, until it expires.
            if let Some(k) = kept.as_ref().filter(|k| now < k.expires_ms) {
                let Some(Record::Completed { fingerprint, response, expires_ms }) = &record else {
                    panic!("a kept answer vanished before it expired");
                };
                prop_assert_eq!((*fingerprint, *expires_ms), (k.fingerprint, k.expires_ms));
                prop_assert_eq!(response.status, k.status);
                prop_assert_eq!(response.body_len, k.body.len() as u64);
            }
        }
    }
}
