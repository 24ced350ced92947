//! Property tests of write-behind: the backoff stays in its bounds, a batch id names a set of
//! events, a delivery never loses or prematurely dead-letters a message, and request and message
//! parsing never accept what the origin would refuse. Failures persist to
//! `properties.regressions` beside this file (check it in).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::backoff::ceiling;
use super::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

fn event_id() -> impl Strategy<Value = EventId> {
    "[A-Za-z0-9._:-]{1,64}".prop_map(|s| EventId::parse(&s).unwrap())
}

fn event() -> impl Strategy<Value = Event> {
    (
        event_id(),
        prop_oneof![Just(EventKind::View), Just(EventKind::Vote)],
        1..=i64::MAX,
        any::<bool>(),
        0..=(i64::MAX as u64),
    )
        .prop_map(|(id, kind, product, up, at)| {
            let value = if kind == EventKind::Vote && !up {
                -1
            } else {
                1
            };
            Event::new(id, kind, ProductId::new(product).unwrap(), value, at).unwrap()
        })
}

fn write_behind(max_attempts: u32, base: u32, max: u32) -> WriteBehindConfig {
    WriteBehindConfig {
        max_attempts,
        retry_base_seconds: base,
        retry_max_seconds: max.max(base),
        ..WriteBehindConfig::default()
    }
}

/// Any answer the origin (or the network) might give, well-formed or not.
fn delivery(batch_id: BatchId, ids: Vec<String>) -> impl Strategy<Value = Delivery> {
    let applied = proptest::sample::subsequence(ids.clone(), 0..=ids.len()).prop_map(
        move |rejected| Delivery::Answered {
            status: 200,
            body: serde_json::json!({
                "batch_id": batch_id,
                "applied": 0,
                "duplicates": 0,
                "rejected": rejected.iter().map(|id| serde_json::json!({"id": id, "reason": "no"})).collect::<Vec<_>>(),
            })
            .to_string(),
        },
    );
    prop_oneof![
        applied,
        (100u16..600, ".{0,40}").prop_map(|(status, body)| Delivery::Answered { status, body }),
        ".{0,40}".prop_map(Delivery::Failed),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn backoff_stays_in_its_bounds(
        attempt in 0u32..200,
        base in 1u32..=MAX_DELAY_SECONDS,
        max in 1u32..=MAX_DELAY_SECONDS,
        random in any::<u64>(),
    ) {
        let max = max.max(base);
        let cap = ceiling(attempt, base, max);
        let delay = backoff(attempt, base, max, random);
        prop_assert!(delay >= 1);
        prop_assert!(delay <= max.min(MAX_DELAY_SECONDS));
        prop_assert!(delay <= cap && delay >= cap.div_ceil(2), "{delay} vs ceiling {cap}");
        prop_assert!(ceiling(attempt + 1, base, max) >= cap, "the ceiling never shrinks");
    }

    #[test]
    fn a_batch_id_names_the_set_not_the_order(
        events in proptest::collection::vec(event(), 1..20),
        seed in any::<u64>(),
    ) {
        let mut shuffled = events.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in 0..n {
            let j = (seed.rotate_left(i as u32) as usize) % n;
            shuffled.swap(i, j);
        }
        let a = BatchRequest::new(events.clone());
        prop_assert_eq!(&a.batch_id, &BatchRequest::new(shuffled).batch_id);
        prop_assert_eq!(BatchId::parse(a.batch_id.as_str()), Ok(a.batch_id.clone()));
        if events.len() > 1 {
            let fewer = BatchRequest::new(events[1..].to_vec());
            let same_set = events[1..].iter().any(|e| e.id() == events[0].id());
            prop_assert!(same_set || fewer.batch_id != a.batch_id);
        }
    }

    #[test]
    fn every_batch_the_edge_sends_is_one_the_origin_reads(
        events in proptest::collection::vec(event(), 1..20),
    ) {
        let batch = BatchRequest::new(events);
        let json = serde_json::to_string(&batch).unwrap();
        prop_assert_eq!(serde_json::from_str::<BatchRequest>(&json).unwrap(), batch);
    }

    #[test]
    fn a_delivery_settles_every_message_and_never_gives_up_early(
        (batch, attempts, delivery) in proptest::collection::vec(event(), 1..12)
            .prop_flat_map(|events| {
                let batch = BatchRequest::new(events);
                let ids: Vec<String> = batch.events.iter().map(|e| e.id().as_str().to_owned()).collect();
                let n = ids.len();
                (
                    Just(batch.clone()),
                    proptest::collection::vec(1u32..10, n),
                    delivery(batch.batch_id.clone(), ids),
                )
            }),
        max_attempts in 1u32..8,
        base in 1u32..100,
        max in 1u32..1000,
    ) {
        let config = write_behind(max_attempts, base, max);
        let mut bits = 0u64;
        let s = settle(&batch, &attempts, &delivery, &config, || { bits = bits.wrapping_add(0x9e37_79b9_7f4a_7c15); bits });
        prop_assert_eq!(s.actions.len(), batch.events.len());
        for (action, &n) in s.actions.iter().zip(&attempts) {
            match (&s.outcome, action) {
                // Only an applied batch acks, and only a failed one retries.
                (Outcome::Applied { .. }, Action::Ack) => {}
                (Outcome::Failed(_), Action::Retry { delay_seconds }) => {
                    prop_assert!(n < max_attempts, "retried at attempt {n} of {max_attempts}");
                    prop_assert!(*delay_seconds >= 1 && *delay_seconds <= config.retry_max_seconds);
                }
                (Outcome::Failed(_), Action::DeadLetter { reason }) => {
                    prop_assert!(n >= max_attempts, "dead-lettered at attempt {n} of {max_attempts}");
                    prop_assert!(reason.contains("last error"));
                }
                (Outcome::Applied { .. } | Outcome::Refused(_), Action::DeadLetter { reason }) => {
                    prop_assert!(!reason.is_empty());
                }
                (outcome, action) => prop_assert!(false, "{outcome:?} led to {action:?}"),
            }
        }
        // A wrong token or an outage never dead-letters a message with attempts left.
        if let Delivery::Answered { status: 401 | 403 | 500..=599, .. } | Delivery::Failed(_) = delivery {
            prop_assert_eq!(s.outcome.as_str(), "failed");
        }
    }

    #[test]
    fn accepted_requests_are_events_the_origin_takes(
        kind in prop_oneof![Just(EventKind::View), Just(EventKind::Vote)],
        id in prop_oneof!["[0-9]{1,20}", ".{0,8}"],
        content_type in proptest::option::of(prop_oneof![Just("application/json".to_owned()), ".{0,20}"]),
        body in prop_oneof![
            Just(String::new()),
            Just("{}".to_owned()),
            (-3i64..4).prop_map(|v| format!(r#"{{"value": {v}}}"#)),
            ".{0,40}",
        ],
        max in 8usize..64,
    ) {
        match parse_event(kind, &id, content_type.as_deref(), body.as_bytes(), max) {
            Ok(input) => {
                prop_assert!(input.product_id.get() > 0);
                prop_assert!(kind.allows(input.value));
                prop_assert!(body.len() <= max);
                prop_assert!(Event::new(EventId::random([7; 16]), kind, input.product_id, input.value, 0).is_ok());
            }
            Err(e) => {
                prop_assert!([400, 413, 415, 422].contains(&e.status()));
                if body.len() > max && ProductId::parse(&id).is_ok() {
                    prop_assert_eq!(e.status(), 413);
                }
            }
        }
    }

    #[test]
    fn written_messages_classify_back_and_anything_else_is_named_poison(
        event in event(),
        principal in proptest::option::of("[a-z0-9:.]{1,40}"),
        junk in ".{0,300}",
    ) {
        let message = EventMessage::new(event, principal);
        let json = serde_json::to_string(&message).unwrap();
        prop_assert_eq!(classify(&json, 1024), Ok(message));
        if let Err(poison) = classify(&junk, 256) {
            prop_assert!(["malformed", "unknown-version", "oversized"].contains(&poison.as_str()));
        }
    }

    #[test]
    fn random_ids_are_valid_event_ids(bytes in any::<[u8; 16]>()) {
        let id = EventId::random(bytes);
        prop_assert_eq!(id.as_str().len(), 32);
        prop_assert!(EventId::parse(id.as_str()).is_ok());
    }
}
