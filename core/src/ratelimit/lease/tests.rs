//! Worked examples of leases: why held tokens are dated at the expiry, what a steady isolate
//! saves, sizing, the isolate's countdown, and the grant's wire form.

use super::*;
use crate::ratelimit::test_support::{admit_all, quota};
use crate::ratelimit::{Bucket, QuotaStatus};

const T0: u64 = 1_700_000_000_000;

#[test]
fn held_tokens_cannot_be_spent_alongside_their_own_refill() {
    // 10/s, burst 20: T = 100 ms, leases live 500 ms and carry at most 5.
    let q = [quota("per-second", 10, 1_000, 20)];
    assert_eq!(lease_life_ms(&q), 500);
    let mut object = [Bucket::default()];
    let granted = grant(&q, &mut object, T0, 1, 5);
    assert_eq!(granted.tokens, 5);
    // Isolate A holds 4 after the request that asked, and spends them at the last moment while
    // another isolate drains the bucket.
    let mut a = Lease::new(granted, 1, T0);
    let late = T0 + 499;
    let others = admit_all(&q, &mut object, late);
    let mut spent = 0;
    while a.take(late) {
        spent += 1;
    }
    assert_eq!((spent, others), (4, 15));
    assert!(spent + others <= 20, "one instant admits at most the burst");
    assert!(!Lease::new(grant(&q, &mut object, late, 1, 5), 1, late).is_live(late));

    // Charged at the grant instant instead, the four held tokens refill while held, and the
    // same instant admits 23.
    let mut naive = [Bucket::default()];
    assert_eq!(check(&q, &mut naive, T0, 5).verdict, Verdict::Allow);
    assert_eq!(admit_all(&q, &mut naive, late) + 4, 23);
}

#[test]
fn a_steady_isolate_asks_about_once_per_lease_life() {
    // 100/s, burst 200: leases live 500 ms and carry at most 50. One isolate at 40/s for 10 s.
    let q = [quota("per-second", 100, 1_000, 200)];
    let mut object = [Bucket::default()];
    let mut rate = RateEstimate::default();
    let mut lease: Option<Lease> = None;
    let (mut asks, mut admitted) = (0, 0);
    for n in 0..400u64 {
        let now = T0 + n * 25;
        rate.observe(now);
        if lease.as_mut().is_some_and(|l| l.take(now)) {
            admitted += 1;
            continue;
        }
        let granted = grant(
            &q,
            &mut object,
            now,
            1,
            lease_size(&q, 1, rate.per_second(now)),
        );
        asks += 1;
        admitted += u32::from(granted.tokens > 0);
        lease = Some(Lease::new(granted, 1, now));
    }
    assert_eq!(admitted, 400);
    // Warming up, the rate estimate grows from one request; then 21 per lease, of which 20 are
    // spent within its 500 ms: 20 per 10 s, against 400 round trips in exact mode.
    assert!((20..=30).contains(&asks), "{asks} asks");
}

#[test]
fn a_lease_is_refused_exactly_when_a_single_request_is() {
    let q = [quota("a", 10, 1_000, 20), quota("b", 100, 3_600_000, 100)];
    let mut object = [Bucket::default(); 2];
    assert_eq!(admit_all(&q, &mut object, T0), 20);
    let stored = object;
    let refused = grant(&q, &mut object, T0 + 50, 1, 5);
    assert_eq!(object, stored, "nothing charged");
    assert_eq!(refused.tokens, 0);
    assert_eq!(
        refused.outcome,
        check(&q, &mut stored.clone(), T0 + 50, 1),
        "the refusal a check gives"
    );
    assert_eq!(
        refused.outcome.verdict,
        Verdict::Deny { retry_after_ms: 50 }
    );
    let too_costly = grant(&q, &mut object, T0 + 10_000, 21, 3);
    assert_eq!(
        (too_costly.tokens, too_costly.outcome.verdict),
        (0, Verdict::TooCostly)
    );
    assert_eq!(object, stored);
    // One interval on, the request that asks passes, but nothing is held: the bucket's room is
    // within the lease's life of refilling, which dating the held tokens sets aside.
    let single = grant(&q, &mut object, T0 + 100, 1, 5);
    assert_eq!(single.tokens, 1);
    assert_eq!(single.outcome, check(&q, &mut stored.clone(), T0 + 100, 1));
}

#[test]
fn a_grant_never_exceeds_what_was_asked_nor_a_quarter_of_the_burst() {
    let q = [quota("a", 1_000, 1_000, 1_000)];
    for (want, tokens) in [
        (0, 1),
        (1, 1),
        (7, 7),
        (250, 250),
        (251, 250),
        (u32::MAX, 250),
    ] {
        let granted = grant(&q, &mut [Bucket::default()], T0, 1, want);
        assert_eq!(granted.tokens, tokens, "want {want}");
    }
    let granted = grant(&q, &mut [Bucket::default()], T0, 3, u32::MAX);
    assert_eq!(granted.tokens, 83, "a quarter of the burst in cost");
    // Free requests charge nothing, within the same cap.
    let mut object = [Bucket::default()];
    let free = grant(&q, &mut object, T0, 0, 100);
    assert_eq!((free.tokens, object), (100, [Bucket::default()]));
}

#[test]
fn life_is_a_second_or_a_quarter_of_the_smallest_burst_refill() {
    let cases: [(&[Quota], u64); 6] = [
        (&[], LEASE_MS),
        (&[quota("s", 10, 1_000, 20)], 500),
        (&[quota("s", 1_000, 1_000, 1_000)], 250),
        (&[quota("s", 10, 1_000, 100)], 1_000),
        (
            &[quota("s", 10, 1_000, 20), quota("h", 100, 3_600_000, 100)],
            500,
        ),
        // 25 ms: too short to outlive a round trip.
        (&[quota("s", 100, 1_000, 10)], 0),
    ];
    for (quotas, life) in cases {
        assert_eq!(lease_life_ms(quotas), life, "{quotas:?}");
    }
    let mut object = [Bucket::default()];
    let short = [quota("s", 100, 1_000, 10)];
    assert_eq!(grant(&short, &mut object, T0, 1, 5).tokens, 1);
}

#[test]
fn lease_size_follows_the_rate_within_the_cap() {
    let q = [quota("s", 100, 1_000, 200)];
    let cases = [
        (0.0, 1),
        (1.0, 1),
        (2.0, 2),
        (40.0, 21),
        (99.9, 50),
        (1e12, 50),
        (f64::INFINITY, 50),
        (f64::NAN, 1),
        (-5.0, 1),
    ];
    for (rate, size) in cases {
        assert_eq!(lease_size(&q, 1, rate), size, "{rate}/s");
    }
    assert_eq!(
        lease_size(&q, 2, 1e12),
        25,
        "a quarter of the burst in cost"
    );
    let small = [quota("s", 100, 1_000, 7)];
    assert_eq!(lease_size(&small, 1, 1e6), 1, "small bursts: exact mode");
    assert_eq!(lease_size(&[], 1, 1e6), 1);
}

fn granted(tokens: u32, remaining: u32) -> Grant {
    Grant {
        tokens,
        life_ms: 500,
        outcome: Outcome {
            verdict: Verdict::Allow,
            quotas: vec![QuotaStatus {
                name: "s".into(),
                limit: 10,
                period_ms: 1_000,
                remaining,
                reset_ms: 1_300,
                retry_after_ms: None,
            }],
        },
    }
}

#[test]
fn a_lease_counts_down_reports_its_tokens_and_expires() {
    let mut lease = Lease::new(granted(4, 7), 2, T0);
    assert_eq!((lease.tokens_left(), lease.expires_at_ms()), (3, T0 + 500));
    let remaining = |lease: &Lease| lease.outcome().quotas[0].remaining;
    assert_eq!(remaining(&lease), 13, "7 left in the object and 3 × 2 held");
    assert!(lease.take(T0 + 10));
    assert_eq!(remaining(&lease), 11);
    assert!(lease.take(T0 + 10));
    assert!(lease.take(T0 + 499));
    assert_eq!(remaining(&lease), 7, "used up: what the object had left");
    assert_eq!(lease.outcome().quotas[0].reset_ms, 1_300);
    assert!(!lease.take(T0 + 499));

    let mut expired = Lease::new(granted(4, 7), 1, T0);
    assert!(!expired.take(T0 + 500));
    assert_eq!(expired.tokens_left(), 0);

    let mut refused = Lease::new(
        Grant {
            tokens: 0,
            ..granted(0, 0)
        },
        1,
        T0,
    );
    assert!(!refused.take(T0));
}

#[test]
fn a_clock_that_goes_back_ends_the_lease() {
    let mut lease = Lease::new(granted(10, 0), 1, T0);
    assert!(lease.take(T0 + 100));
    assert!(!lease.take(T0 + 99));
    assert!(!lease.take(T0 + 200), "and for good");
    let mut before_asking = Lease::new(granted(10, 0), 1, T0);
    assert!(!before_asking.take(T0 - 1));
}

#[test]
fn the_far_end_of_time_leases_one_and_never_panics() {
    let q = [quota("s", 10, 1_000, 20)];
    for now in [u64::MAX - 1_000, u64::MAX] {
        let mut object = [Bucket::default()];
        let granted = grant(&q, &mut object, now, 1, 5);
        assert_eq!(granted.tokens, 1, "at {now}");
        let mut lease = Lease::new(granted, 1, now);
        assert!(!lease.take(now));
    }
}

#[test]
fn grants_serialise_for_the_wire() {
    let q = [quota("s", 10, 1_000, 20)];
    let granted = grant(&q, &mut [Bucket::default()], T0, 1, 3);
    let json = serde_json::to_string(&granted).unwrap();
    assert_eq!(
        json,
        r#"{"tokens":3,"life_ms":500,"outcome":{"verdict":"allow","quotas":[{"name":"s","limit":10,"period_ms":1000,"remaining":13,"reset_ms":700,"retry_after_ms":null}]}}"#
    );
    assert_eq!(serde_json::from_str::<Grant>(&json).unwrap(), granted);
}

#[test]
fn the_rate_estimate_slides_and_forgets() {
    let mut rate = RateEstimate::default();
    assert_eq!(rate.per_second(T0), 0.0);
    // Every 50 ms for 3 s: 20/s once a whole window has passed.
    for n in 0..60 {
        rate.observe(T0 + n * 50);
    }
    let steady = rate.per_second(T0 + 2_960);
    assert!((19.0..=21.0).contains(&steady), "{steady}");
    // The previous window weighs less as it slides out, and is gone after two.
    assert!(rate.per_second(T0 + 3_500) < steady);
    assert_eq!(rate.per_second(T0 + 5_000), 0.0);
    // A burst counts at once.
    for _ in 0..100 {
        rate.observe(T0 + 10_000);
    }
    assert_eq!(rate.per_second(T0 + 10_000), 100.0);
}
