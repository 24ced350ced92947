use super::*;

const T0: u64 = 1_000_000;
const LEASE: u64 = 1_000;
const RETENTION: u64 = 10_000;

fn policy() -> Policy {
    Policy {
        lease_ms: LEASE,
        retention_ms: RETENTION,
        max_body_bytes: 16,
    }
}

fn a() -> Fingerprint {
    fingerprint("POST", "/api/orders", br#"{"n":1}"#)
}

fn b() -> Fingerprint {
    fingerprint("POST", "/api/orders", br#"{"n":2}"#)
}

fn claim(fingerprint: Fingerprint, attempt: u32, lease_until_ms: u64) -> Claim {
    Claim {
        fingerprint,
        attempt,
        lease_until_ms,
    }
}

fn in_flight(fingerprint: Fingerprint, attempt: u32, lease_until_ms: u64) -> Record {
    Record::InFlight(claim(fingerprint, attempt, lease_until_ms))
}

fn response(body: Option<&[u8]>) -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("location".into(), "/api/orders/7".into())],
        body_len: body.map_or(99, |b| b.len() as u64),
        body: body.map(<[u8]>::to_vec),
    }
}

fn completed(fingerprint: Fingerprint, body: Option<&[u8]>) -> Record {
    Record::Completed {
        fingerprint,
        response: response(body),
        expires_ms: T0 + RETENTION,
    }
}

fn answer(status: u16) -> Answer<'static> {
    Answer {
        status,
        headers: &[],
        body: b"{\"id\":7}",
    }
}

#[test]
fn begin_decides_every_state() {
    let go = |fp, attempt, lease_until| Begin::Proceed(claim(fp, attempt, lease_until));
    let wait = |retry_after_ms| Begin::InFlight { retry_after_ms };
    let held = Some(in_flight(a(), 1, T0 + LEASE));
    let done = Some(completed(a(), Some(b"ok")));
    let big = Some(completed(a(), None));
    let gone = T0 + RETENTION;
    #[rustfmt::skip]
    let cases = [
        ("unseen", None, a(), T0, go(a(), 1, T0 + LEASE)),
        ("in flight, same", held.clone(), a(), T0 + 300, wait(700)),
        ("in flight, last ms", held.clone(), a(), T0 + LEASE - 1, wait(1)),
        ("in flight, clock stepped back", held.clone(), a(), T0 - 5_000, wait(LEASE)),
        ("in flight, different", held.clone(), b(), T0 + 300, Begin::Mismatch),
        ("lease over, same", held.clone(), a(), T0 + LEASE, go(a(), 2, T0 + 2 * LEASE)),
        ("lease over, different", held, b(), T0 + LEASE + 5, go(b(), 1, T0 + 2 * LEASE + 5)),
        ("completed, same", done.clone(), a(), T0 + 5_000, Begin::Replay(response(Some(b"ok")))),
        ("completed, different", done.clone(), b(), T0 + 5_000, Begin::Mismatch),
        ("completed, body not kept", big.clone(), a(), T0 + 5_000, Begin::ReplayFromOrigin),
        ("completed, body not kept, different", big, b(), T0, Begin::Mismatch),
        ("completed, expired", done.clone(), a(), gone, go(a(), 1, gone + LEASE)),
        ("completed, expired, different", done, b(), gone, go(b(), 1, gone + LEASE)),
    ];
    for (name, existing, fp, now, want) in cases {
        let got = begin(existing.as_ref(), &fp, now, &policy());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn only_the_current_holder_completes_and_only_with_a_replayable_answer() {
    use CompleteError::{AlreadyCompleted, NoRecord, NotReplayable, Superseded};
    let first = claim(a(), 1, T0 + LEASE);
    let second = claim(a(), 2, T0 + 2 * LEASE);
    let other = claim(b(), 1, T0 + LEASE);
    let held = |c| Some(Record::InFlight(c));
    let kept = |at: u64| Record::Completed {
        fingerprint: a(),
        response: StoredResponse::from_answer(&answer(201), 16),
        expires_ms: at + RETENTION,
    };
    let (done, late) = (kept(T0 + 500), kept(T0 + 5 * LEASE));
    #[rustfmt::skip]
    let cases = [
        ("holder", held(first), 201, T0 + 500, Ok(done.clone())),
        ("holder past its lease, not overtaken", held(first), 201, T0 + 5 * LEASE, Ok(late)),
        ("stale holder, overtaken", held(second), 201, T0 + LEASE + 1, Err(Superseded)),
        ("another request's claim", held(other), 201, T0, Err(Superseded)),
        ("already completed", Some(done), 200, T0 + 600, Err(AlreadyCompleted)),
        ("no record", None, 201, T0, Err(NoRecord)),
        ("4xx", held(first), 422, T0, Err(NotReplayable(422))),
        ("429", held(first), 429, T0, Err(NotReplayable(429))),
        ("5xx", held(first), 500, T0, Err(NotReplayable(500))),
    ];
    for (name, existing, status, now, want) in cases {
        let got = complete(existing.as_ref(), &first, &answer(status), now, &policy());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn only_the_current_holder_releases() {
    let first = claim(a(), 1, T0 + LEASE);
    let cases = [
        ("holder", Some(Record::InFlight(first)), true),
        ("overtaken", Some(in_flight(a(), 2, T0 + 2 * LEASE)), false),
        ("other request", Some(in_flight(b(), 1, T0 + LEASE)), false),
        ("completed", Some(completed(a(), Some(b"ok"))), false),
        ("no record", None, false),
    ];
    for (name, existing, want) in cases {
        assert_eq!(release(existing.as_ref(), &first), want, "{name}");
    }
}

#[test]
fn a_replay_is_byte_identical_to_what_was_kept() {
    let headers = [
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Set-Cookie".to_string(), "s=1".to_string()),
    ];
    let body = br#"{"id":7}"#;
    let Begin::Proceed(held) = begin(None, &a(), T0, &policy()) else {
        panic!("a fresh key proceeds");
    };
    let sent = Answer {
        status: 201,
        headers: &headers,
        body,
    };
    let record = complete(
        Some(&Record::InFlight(held)),
        &held,
        &sent,
        T0 + 10,
        &policy(),
    )
    .unwrap();
    let json = serde_json::to_string(&record).unwrap();
    let stored: Record = serde_json::from_str(&json).unwrap();
    let Begin::Replay(replayed) = begin(Some(&stored), &a(), T0 + 20, &policy()) else {
        panic!("a completed key replays");
    };
    assert_eq!(replayed.status, 201);
    assert_eq!(
        replayed.headers,
        [("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(replayed.body.as_deref(), Some(&body[..]));
    assert_eq!(replayed.body_len, body.len() as u64);
}

#[test]
fn a_body_too_large_to_keep_is_replayed_by_the_origin() {
    let held = claim(a(), 1, T0 + LEASE);
    let big = [b'x'; 17];
    let sent = Answer {
        status: 200,
        headers: &[],
        body: &big,
    };
    let record = complete(Some(&Record::InFlight(held)), &held, &sent, T0, &policy()).unwrap();
    let Record::Completed { response, .. } = &record else {
        panic!("completed");
    };
    assert_eq!((response.body.as_ref(), response.body_len), (None, 17));
    assert_eq!(
        begin(Some(&record), &a(), T0 + 1, &policy()),
        Begin::ReplayFromOrigin
    );
    assert_eq!(
        begin(Some(&record), &b(), T0 + 1, &policy()),
        Begin::Mismatch
    );
}

#[test]
fn no_answer_keeps_a_lost_request_until_its_lease_ends_and_releases_an_unsent_one() {
    let Begin::Proceed(held) = begin(None, &a(), T0, &policy()) else {
        panic!("a fresh key proceeds");
    };
    let record = Record::InFlight(held);

    // Lost after a 600 ms timeout: kept, so the retry gets the exact lease left, then takes over.
    assert!(should_keep_on_no_answer(NoAnswer::Lost));
    let retry = begin(Some(&record), &a(), T0 + 600, &policy());
    assert_eq!(
        retry,
        Begin::InFlight {
            retry_after_ms: 400
        }
    );
    assert_eq!(retry.status(), Some(409));
    let retry = begin(Some(&record), &a(), T0 + LEASE, &policy());
    assert_eq!(retry, Begin::Proceed(claim(a(), 2, T0 + 2 * LEASE)));

    // Never sent: released, so the retry proceeds at once.
    assert!(!should_keep_on_no_answer(NoAnswer::NotSent));
    assert!(release(Some(&record), &held));
    assert_eq!(begin(None, &a(), T0 + 1, &policy()).as_str(), "proceed");
}

#[test]
fn records_expire_at_the_end_of_their_lease_or_retention() {
    let cases = [
        (in_flight(a(), 1, T0 + LEASE), T0 + LEASE),
        (completed(a(), None), T0 + RETENTION),
    ];
    for (record, at) in cases {
        assert_eq!(expires_at(&record), at);
        assert!(!is_expired(&record, at - 1));
        assert!(is_expired(&record, at));
    }
}

#[test]
fn records_round_trip_through_json_with_a_readable_shape() {
    for record in [
        in_flight(a(), 3, T0),
        completed(b(), Some(&[0, 1, 255])),
        completed(b(), Some(&[])),
        completed(b(), None),
    ] {
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["state"], record.as_str());
        assert_eq!(json["fingerprint"], record.fingerprint().to_string());
        assert_eq!(serde_json::from_value::<Record>(json).unwrap(), record);
    }
}

#[test]
fn outcomes_name_themselves_and_their_status() {
    let cases = [
        (Begin::Proceed(claim(a(), 1, T0)), "proceed", None),
        (Begin::Replay(response(None)), "replay", None),
        (Begin::ReplayFromOrigin, "replay-from-origin", None),
        (
            Begin::InFlight { retry_after_ms: 1 },
            "in-flight",
            Some(409),
        ),
        (Begin::Mismatch, "mismatch", Some(422)),
    ];
    for (begin, name, status) in cases {
        assert_eq!((begin.as_str(), begin.status()), (name, status));
    }
    assert_eq!(NoAnswer::Lost.as_str(), "lost");
}

#[test]
fn the_policy_must_outlast_the_origin_timeout() {
    let default = Policy::default();
    assert_eq!(default.retention_ms, 86_400_000);
    assert_eq!(default.validate(10_000), Ok(()));
    assert!(default.validate(30_000).unwrap_err().contains("lease_ms"));
    let no_retention = Policy {
        retention_ms: 0,
        ..default
    };
    assert!(no_retention.validate(10_000).is_err());
}
