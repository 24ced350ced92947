//! GCRA boundary and clock regressions (T-RL-02) and worked examples of the multi-quota check.

use super::*;
use crate::ratelimit::test_support::{admit_all, quota};

const HOUR: u64 = 3_600_000;
const T0: u64 = 1_700_000_000_000;

/// (limit, period_ms, burst): whole and fractional intervals, burst above, at and below limit.
const SHAPES: [(u32, u64, u32); 6] = [
    (10, 1_000, 20),
    (3, 1_000, 5),
    (7, 86_400_000, 1),
    (1_000, 1, 10_000),
    (1, MAX_PERIOD_MS, 3),
    (u32::MAX, MAX_PERIOD_MS, 2),
];

#[test]
fn after_an_idle_spell_of_burst_plus_one_intervals_exactly_burst_pass() {
    for (limit, period, burst) in SHAPES {
        let q = [quota("q", limit, period, burst)];
        // (burst + 1)·T in ms, rounded up so that the idle spell is at least that long.
        let idle = ((u64::from(burst) + 1) * period).div_ceil(u64::from(limit));
        let mut b = [Bucket::default()];
        let mut now = T0;
        for round in 0..4 {
            let admitted = admit_all(&q, &mut b, now);
            assert_eq!(admitted, burst, "{q:?}, round {round}");
            now += if round % 2 == 0 { idle } else { 2 * idle };
        }
    }
}

#[test]
fn a_frozen_clock_admits_burst_in_total() {
    for (limit, period, burst) in SHAPES {
        let q = [quota("q", limit, period, burst)];
        let mut b = [Bucket::default()];
        let admitted = (0..1_000)
            .filter(|_| check(&q, &mut b, T0, 1).verdict == Verdict::Allow)
            .count();
        assert_eq!(admitted, burst.min(1_000) as usize, "{q:?}");
    }
}

#[test]
fn a_backward_jump_never_adds_tokens_or_a_negative_wait() {
    let q = [quota("per-second", 10, 1_000, 10)];
    let mut b = [Bucket::default()];
    for _ in 0..4 {
        check(&q, &mut b, T0, 1);
    }
    let before = check(&q, &mut b.clone(), T0, 0).quotas[0].remaining;
    assert_eq!(before, 6);
    let stored = b;
    let back = check(&q, &mut b, T0 - HOUR, 1);
    assert_eq!(b, stored, "denied: untouched");
    assert_eq!(back.quotas[0].remaining, 0);
    // The TAT is T0 + 400 ms. An hour earlier, the request fits once TAT + T is no more than
    // the burst (1 s) ahead: an hour less 500 ms later.
    let Verdict::Deny { retry_after_ms } = back.verdict else {
        panic!("{back:?}")
    };
    assert_eq!(retry_after_ms, HOUR - 500);
    // Forward again: the jump changed nothing.
    assert_eq!(check(&q, &mut b, T0, 0).quotas[0].remaining, before);
    // An hour forward: full, and no more than full.
    assert_eq!(admit_all(&q, &mut b, T0 + HOUR), 10);
}

#[test]
fn extreme_clocks_neither_overflow_nor_admit_extra() {
    for (limit, period, burst) in SHAPES {
        let q = [quota("q", limit, period, burst)];
        for now in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let mut b = [Bucket::default()];
            assert_eq!(admit_all(&q, &mut b, now), burst, "{q:?} at {now}");
            assert!(matches!(
                check(&q, &mut b, now, 1).verdict,
                Verdict::Deny { .. }
            ));
            // From the far end of time back to the epoch and forward again.
            for later in [0, now / 2, u64::MAX] {
                let outcome = check(&q, &mut b, later, burst);
                assert!(outcome.quotas[0].remaining <= burst, "{outcome:?}");
            }
        }
    }
    let far = Bucket {
        tat_ms: u64::MAX,
        tat_frac: u32::MAX,
    };
    let q = [quota("q", 3, 1_000, 5)];
    let outcome = check(&q, &mut [far], 0, 5);
    assert_eq!(
        outcome.verdict,
        Verdict::Deny {
            retry_after_ms: u64::MAX
        },
        "the wait (u64::MAX + 2/3 ms, rounded up) saturates"
    );
}

#[test]
fn all_quotas_allow_or_none_is_charged() {
    let q = [
        quota("per-second", 10, 1_000, 10),
        quota("per-minute", 20, 60_000, 10),
    ];
    let mut b = [Bucket::default(); 2];
    assert_eq!(admit_all(&q, &mut b, T0), 10);
    let stored = b;
    let denied = check(&q, &mut b, T0, 1);
    assert_eq!(b, stored);
    assert_eq!(
        denied.verdict,
        Verdict::Deny {
            retry_after_ms: 3_000
        },
        "the longest wait: one minute-token (3 s), not one second-token (100 ms)"
    );
    let [second, minute] = &denied.quotas[..] else {
        panic!()
    };
    assert_eq!(
        (second.remaining, second.reset_ms, second.retry_after_ms),
        (0, 1_000, Some(100))
    );
    assert_eq!(
        (minute.remaining, minute.reset_ms, minute.retry_after_ms),
        (0, 30_000, Some(3_000))
    );
    let later = check(&q, &mut b, T0 + 3_000, 1);
    assert_eq!(later.verdict, Verdict::Allow);
    assert_eq!(later.quotas[0].remaining, 9, "refilled, then charged");
    assert_eq!(later.quotas[1].reset_ms, 30_000);
}

#[test]
fn fractional_intervals_do_not_drift() {
    // 3 per second: T = 333.3 ms. A client asking every 9 ms for an hour gets exactly the
    // burst and then 3·3600 more; rounding T to 333 or 334 ms would miss by 10 or more.
    let q = [quota("q", 3, 1_000, 2)];
    let mut b = [Bucket::default()];
    let admitted = (0..=3_600_000u64)
        .step_by(9)
        .filter(|ms| check(&q, &mut b, T0 + ms, 1).verdict == Verdict::Allow)
        .count();
    assert_eq!(admitted, 2 + 3 * 3_600);
}

#[test]
fn cost_above_burst_is_too_costly_and_zero_cost_peeks() {
    let q = [quota("a", 10, 1_000, 20), quota("b", 1, 1_000, 5)];
    let mut b = [Bucket::default(); 2];
    let outcome = check(&q, &mut b, T0, 6);
    assert_eq!(outcome.verdict, Verdict::TooCostly);
    assert_eq!(outcome.verdict.as_str(), "too-costly");
    assert_eq!(b, [Bucket::default(); 2]);
    assert!(outcome.quotas.iter().all(|s| s.retry_after_ms.is_none()));
    check(&q, &mut b, T0, 3);
    let stored = b;
    let peek = check(&q, &mut b, T0 + 1_500, 0);
    assert_eq!(b, stored);
    assert_eq!(peek.verdict, Verdict::Allow);
    assert_eq!(
        (peek.quotas[1].remaining, peek.quotas[1].reset_ms),
        (3, 1_500)
    );
    let unlimited = check(&[], &mut [], T0, 1_000);
    assert_eq!(unlimited.verdict, Verdict::Allow);
}

#[test]
fn degenerate_quotas_are_clamped_not_fatal() {
    for q in [
        quota("zero", 0, 0, 0),
        quota("huge", u32::MAX, u64::MAX, u32::MAX),
        quota("no-burst", 10, 1_000, 0),
    ] {
        let q = [q];
        for now in [0, T0, u64::MAX] {
            let outcome = check(&q, &mut [Bucket::default()], now, 1);
            assert_eq!(
                outcome.verdict == Verdict::TooCostly,
                q[0].burst == 0,
                "{outcome:?}"
            );
        }
    }
}

#[test]
fn outcomes_serialise_for_the_wire() {
    let outcome = check(&[quota("s", 1, 1_000, 1)], &mut [Bucket::default()], T0, 2);
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["verdict"], "too-costly");
    assert_eq!(serde_json::from_value::<Outcome>(json).unwrap(), outcome);
    let deny = Verdict::Deny { retry_after_ms: 7 };
    assert_eq!(
        serde_json::to_string(&deny).unwrap(),
        r#"{"deny":{"retry_after_ms":7}}"#
    );
}
