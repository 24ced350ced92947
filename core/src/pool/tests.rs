use super::*;
use proptest::prelude::*;
use serde_json::json;

fn ejection() -> EjectionConfig {
    EjectionConfig {
        consecutive_failures: 3,
        base_ejection_ms: 1_000,
        max_ejection_ms: 10_000,
        max_ejected_percent: 50,
    }
}

#[test]
fn parses_a_pool_with_defaults_and_overrides() {
    let pool = PoolConfig::from_value(json!({
        "origins": [{"url": "http://a:1/", "weight": 3}, {"url": "https://b"}],
        "ejection": {"consecutive_failures": 5},
        "health": {"path": "/ready", "interval_ms": 2000}
    }))
    .unwrap();
    assert_eq!(
        pool.origins,
        vec![
            OriginSpec {
                url: "http://a:1".into(),
                weight: 3
            },
            OriginSpec {
                url: "https://b".into(),
                weight: 1
            }
        ]
    );
    assert_eq!(pool.ejection.consecutive_failures, 5);
    assert_eq!(pool.ejection.max_ejected_percent, 50);
    assert_eq!(pool.health.path, "/ready");
    assert_eq!(pool.health.interval_ms, 2000);
    assert_eq!(pool.health.healthy_threshold, 2);
}

#[test]
fn bad_pools_name_the_field_path() {
    let cases = [
        (json!({"origins": []}), "origins: lists no origins"),
        (json!({"origins": [{"url": "ftp://a"}]}), "origins[0].url:"),
        (
            json!({"origins": [{"url": "http://a"}, {"url": "http://a/"}]}),
            "origins[1].url:",
        ),
        (
            json!({"origins": [{"url": "http://a", "weight": 0}]}),
            "origins[0].weight:",
        ),
        (
            json!({"origins": [{"url": "http://a", "wieght": 2}]}),
            "origins[0]: unknown field",
        ),
        (
            json!({"origins": [{"url": "http://a"}], "ejection": {"max_ejected_percent": 101}}),
            "ejection.max_ejected_percent:",
        ),
        (
            json!({"origins": [{"url": "http://a"}], "ejection": {"base_ejection_ms": 9, "max_ejection_ms": 8}}),
            "ejection.max_ejection_ms:",
        ),
        (
            json!({"origins": [{"url": "http://a"}], "ejection": {"cap": 1}}),
            "ejection: unknown field",
        ),
        (
            json!({"origins": [{"url": "http://a"}], "health": {"path": "health"}}),
            "health.path:",
        ),
        (
            json!({"origins": [{"url": "http://a"}], "health": {"unhealthy_threshold": 0}}),
            "health.unhealthy_threshold:",
        ),
        (
            json!({"origins": [{"url": "http://a"}], "extra": 1}),
            "unknown field",
        ),
    ];
    for (raw, expected) in cases {
        let err = PoolConfig::from_value(raw.clone()).unwrap_err();
        assert!(
            err.starts_with(expected) || err.contains(expected),
            "{raw}: {err}"
        );
    }
}

#[test]
fn consecutive_failures_eject_and_a_success_resets_the_count() {
    let c = ejection();
    let mut e = Ejector::new(2);
    assert_eq!(e.record(&c, 0, 0, false), None);
    assert_eq!(e.record(&c, 0, 1, false), None);
    assert_eq!(e.record(&c, 0, 2, true), None);
    assert_eq!(e.record(&c, 0, 3, false), None);
    assert_eq!(e.record(&c, 0, 4, false), None);
    assert_eq!(e.record(&c, 0, 5, false), Some(1_000));
    assert!(e.is_ejected(0, 5));
    assert!(e.is_ejected(0, 1_004));
    assert!(!e.is_ejected(0, 1_005));
    assert_eq!(e.eligible(&c, 500), vec![false, true]);
}

#[test]
fn a_returned_origin_is_re_ejected_by_one_failure_for_twice_as_long() {
    let c = ejection();
    let mut e = Ejector::new(2);
    for t in 0..3 {
        e.record(&c, 0, t, false);
    }
    assert!(e.is_ejected(0, 2));
    // Failures while ejected (forced there by the cap) change nothing.
    assert_eq!(e.record(&c, 0, 500, false), None);
    assert_eq!(e.record(&c, 0, 1_002, false), Some(2_000));
    assert_eq!(e.record(&c, 0, 3_002, false), Some(4_000));
    // A success ends probation: it takes the full count again.
    assert_eq!(e.record(&c, 0, 7_002, true), None);
    assert_eq!(e.record(&c, 0, 7_003, false), None);
    assert_eq!(e.record(&c, 0, 7_004, false), None);
    assert_eq!(e.record(&c, 0, 7_005, false), Some(8_000));
}

#[test]
fn the_ejection_count_resets_after_a_long_healthy_spell() {
    let c = ejection();
    let mut e = Ejector::new(2);
    for t in 0..3 {
        e.record(&c, 0, t, false);
    }
    e.record(&c, 0, 1_002, true);
    e.record(&c, 0, 20_000, true);
    for t in 20_001..20_004 {
        e.record(&c, 0, t, false);
    }
    assert!(e.is_ejected(0, 20_003 + 999));
    assert!(!e.is_ejected(0, 20_003 + 1_000));
}

#[test]
fn with_both_ejected_the_least_recently_ejected_stays_eligible() {
    let c = ejection();
    let mut e = Ejector::new(2);
    for t in 0..3 {
        e.record(&c, 0, t, false);
    }
    for t in 10..13 {
        e.record(&c, 1, t, false);
    }
    assert!(e.is_ejected(0, 20) && e.is_ejected(1, 20));
    assert_eq!(e.eligible(&c, 20), vec![true, false]);
}

#[test]
fn a_single_origin_is_never_out_of_rotation() {
    let c = ejection();
    let mut e = Ejector::new(1);
    for t in 0..10 {
        e.record(&c, 0, t, false);
    }
    assert_eq!(e.eligible(&c, 10), vec![true]);
}

#[test]
fn candidates_fall_back_rather_than_run_out() {
    assert_eq!(
        candidates(&[true, false, true], &[false, true, true]),
        vec![false, false, true]
    );
    assert_eq!(
        candidates(&[true, false], &[false, true]),
        vec![true, false]
    );
    assert_eq!(candidates(&[false, false], &[true, true]), vec![true, true]);
}

#[test]
fn without_a_signal_round_robin_follows_the_weights_smoothly() {
    let mut b = Balancer::default();
    let picks: Vec<usize> = (0..6)
        .map(|_| {
            b.pick(&[2, 1], &[true, true], &[Load::default(); 2], 0)
                .unwrap()
        })
        .collect();
    assert_eq!(picks, vec![0, 1, 0, 0, 1, 0]);
}

#[test]
fn power_of_two_choices_prefers_the_less_loaded() {
    let mut b = Balancer::default();
    let loads = [
        Load {
            in_flight: 5,
            latency_ewma_ms: Some(50.0),
        },
        Load {
            in_flight: 0,
            latency_ewma_ms: Some(50.0),
        },
    ];
    for r in 0..200u64 {
        let random = r.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        assert_eq!(b.pick(&[1, 1], &[true, true], &loads, random), Some(1));
    }
    // Latency counts too: busy but fast beats idle but slow.
    let loads = [
        Load {
            in_flight: 0,
            latency_ewma_ms: Some(500.0),
        },
        Load {
            in_flight: 1,
            latency_ewma_ms: Some(20.0),
        },
    ];
    assert_eq!(b.pick(&[1, 1], &[true, true], &loads, 7), Some(1));
}

#[test]
fn with_nothing_in_flight_a_slow_origin_is_not_starved() {
    let mut b = Balancer::default();
    let loads = [
        Load {
            in_flight: 0,
            latency_ewma_ms: Some(10.0),
        },
        Load {
            in_flight: 0,
            latency_ewma_ms: Some(1_500.0),
        },
    ];
    let picks: Vec<usize> = (0..4)
        .map(|r| b.pick(&[1, 1], &[true, true], &loads, r).unwrap())
        .collect();
    assert_eq!(picks, vec![0, 1, 0, 1]);
}

#[test]
fn the_moving_average_moves_toward_samples() {
    let mut l = Load::default();
    l.observe(100.0);
    assert_eq!(l.latency_ewma_ms, Some(100.0));
    l.observe(200.0);
    assert!((l.latency_ewma_ms.unwrap() - 130.0).abs() < 1e-9);
}

fn arb_config() -> impl Strategy<Value = EjectionConfig> {
    (1u32..5, 1u64..5_000, 0u64..100_000, 0u32..=100).prop_map(|(f, base, extra, pct)| {
        EjectionConfig {
            consecutive_failures: f,
            base_ejection_ms: base,
            max_ejection_ms: base + extra,
            max_ejected_percent: pct,
        }
    })
}

proptest! {
    #[test]
    fn ejection_periods_start_at_base_grow_and_cap(c in arb_config(), n in 1u32..80) {
        prop_assert_eq!(ejection_ms(&c, 1), c.base_ejection_ms);
        prop_assert!(ejection_ms(&c, n) <= ejection_ms(&c, n + 1));
        prop_assert!(ejection_ms(&c, n) <= c.max_ejection_ms);
        prop_assert!(ejection_ms(&c, n) >= c.base_ejection_ms);
    }

    /// Any history of answers: the cap holds, and what the balancer picks is a candidate: never
    /// an ejected or unhealthy origin unless no other is left.
    #[test]
    fn the_cap_holds_and_picks_are_candidates(
        c in arb_config(),
        weights in prop::collection::vec(1u32..10, 1..6),
        events in prop::collection::vec((0usize..6, any::<bool>(), 0u64..3_000), 0..200),
        healthy_bits in any::<u8>(),
        loads in prop::collection::vec((0u32..5, prop::option::of(1.0f64..500.0)), 6),
        random in any::<u64>(),
    ) {
        let n = weights.len();
        let mut e = Ejector::new(n);
        let mut now = 0u64;
        let mut balancer = Balancer::default();
        let healthy: Vec<bool> = (0..n).map(|i| healthy_bits & (1 << i) != 0).collect();
        let loads: Vec<Load> = loads
            .iter()
            .map(|&(in_flight, latency_ewma_ms)| Load { in_flight, latency_ewma_ms })
            .collect();
        for (i, ok, dt) in events {
            now += dt;
            e.record(&c, i % n, now, ok);
            let eligible = e.eligible(&c, now);
            let out = eligible.iter().filter(|&&x| !x).count();
            prop_assert!(out <= max_ejected(&c, n));
            for (j, &el) in eligible.iter().enumerate() {
                // Out of rotation only while ejected.
                prop_assert!(el || e.is_ejected(j, now));
            }
            let cands = candidates(&eligible, &healthy);
            let pick = balancer.pick(&weights, &cands, &loads, random ^ now).unwrap();
            prop_assert!(cands[pick]);
            let healthy_eligible = (0..n).any(|j| eligible[j] && healthy[j]);
            if healthy_eligible {
                prop_assert!(eligible[pick] && healthy[pick]);
            } else if eligible.iter().any(|&x| x) {
                prop_assert!(eligible[pick]);
            }
        }
    }

    /// Whatever the history, an ejection lasts exactly its period (between the base and the
    /// cap), and the origin returns when it ends.
    #[test]
    fn an_ejection_lasts_its_period_then_the_origin_returns(
        c in arb_config(),
        events in prop::collection::vec((any::<bool>(), 0u64..2_000), 1..300),
    ) {
        let mut e = Ejector::new(1);
        let mut now = 0u64;
        for (ok, dt) in events {
            now += dt;
            if let Some(period) = e.record(&c, 0, now, ok) {
                prop_assert!(period <= c.max_ejection_ms);
                prop_assert!(period >= c.base_ejection_ms);
                prop_assert!(e.is_ejected(0, now));
                prop_assert!(e.is_ejected(0, now + period - 1));
                prop_assert!(!e.is_ejected(0, now + period));
            }
        }
    }

    /// With no signal, every window of `sum(weights)` picks gives each origin exactly its weight.
    #[test]
    fn round_robin_is_exact_per_cycle(
        weights in prop::collection::vec(1u32..8, 1..6),
        cycles in 1usize..4,
    ) {
        let n = weights.len();
        let mut b = Balancer::default();
        let total: u32 = weights.iter().sum();
        let mut counts = vec![0u32; n];
        for _ in 0..total as usize * cycles {
            let i = b.pick(&weights, &vec![true; n], &vec![Load::default(); n], 0).unwrap();
            counts[i] += 1;
        }
        for i in 0..n {
            prop_assert_eq!(counts[i], weights[i] * cycles as u32);
        }
    }
}

#[test]
fn retry_settings_parse_and_are_checked() {
    let pool = PoolConfig::from_value(json!({
        "origins": [{"url": "http://a"}],
        "retry": {"budget_percent": 10}
    }))
    .unwrap();
    assert_eq!(pool.retry.budget_percent, 10);
    assert_eq!(
        pool.retry.min_per_second,
        RetryConfig::default().min_per_second
    );
    let err = PoolConfig::from_value(json!({
        "origins": [{"url": "http://a"}],
        "retry": {"budget_percent": 101}
    }))
    .unwrap_err();
    assert!(err.starts_with("retry.budget_percent:"), "{err}");
    let err = PoolConfig::from_value(json!({
        "origins": [{"url": "http://a"}],
        "retry": {"attempts": 3}
    }))
    .unwrap_err();
    assert!(err.starts_with("retry: unknown field"), "{err}");
}

#[test]
fn only_requests_that_are_harmless_to_repeat_are_retried() {
    use retry::retryable;
    for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"] {
        assert!(retryable(method, false, Failure::NoConnection), "{method}");
        assert!(retryable(method, false, Failure::Timeout), "{method}");
    }
    for method in ["POST", "PATCH"] {
        assert!(!retryable(method, false, Failure::NoConnection), "{method}");
        assert!(!retryable(method, false, Failure::Timeout), "{method}");
        // Never sent: nothing can have happened yet.
        assert!(retryable(method, false, Failure::NotSent), "{method}");
    }
    assert!(retryable("POST", true, Failure::Timeout));
    assert!(!retryable("PATCH", true, Failure::Timeout));
    assert!(retryable("GET", false, Failure::Overloaded));
    assert!(!retryable("POST", false, Failure::Overloaded));
    assert!(retryable("POST", true, Failure::Overloaded));
}

#[test]
fn an_overloaded_refusal_is_a_503_that_says_when_to_come_back() {
    use retry::refused_as_overloaded;
    #[rustfmt::skip]
    let cases = [
        (503, true, true), (503, false, false), (502, true, false), (429, true, false), (200, true, false),
    ];
    for (status, retry_after, refused) in cases {
        assert_eq!(
            refused_as_overloaded(status, retry_after),
            refused,
            "{status} {retry_after}"
        );
    }
}

#[test]
fn a_retry_goes_only_to_another_eligible_healthy_origin() {
    use retry::retry_candidates;
    assert_eq!(
        retry_candidates(&[true, true, true], &[true, false, true], 0),
        vec![false, false, true]
    );
    assert_eq!(
        retry_candidates(&[true, false, true], &[true, true, true], 2),
        vec![true, false, false]
    );
    // No other: nothing, rather than the failed one again.
    assert_eq!(retry_candidates(&[true], &[true], 0), vec![false]);
    assert_eq!(
        retry_candidates(&[true, true], &[true, false], 0),
        vec![false, false]
    );
}

#[test]
fn the_budget_starts_with_its_floor_and_refills_with_time() {
    let config = RetryConfig {
        budget_percent: 0,
        min_per_second: 2,
    };
    let mut budget = RetryBudget::new(&config);
    assert!(budget.withdraw(&config, 0));
    assert!(budget.withdraw(&config, 0));
    assert!(!budget.withdraw(&config, 0));
    // Half a second: one more.
    assert!(budget.withdraw(&config, 500));
    assert!(!budget.withdraw(&config, 500));
    // A long quiet spell banks one second's worth, no more.
    assert!(budget.withdraw(&config, 60_000));
    assert!(budget.withdraw(&config, 60_000));
    assert!(!budget.withdraw(&config, 60_000));
}

#[test]
fn first_attempts_earn_their_share_of_retries() {
    let config = RetryConfig {
        budget_percent: 20,
        min_per_second: 0,
    };
    let mut budget = RetryBudget::new(&config);
    assert!(!budget.withdraw(&config, 0));
    for _ in 0..10 {
        budget.deposit(&config, 0);
    }
    assert!(budget.withdraw(&config, 0));
    assert!(budget.withdraw(&config, 0));
    assert!(!budget.withdraw(&config, 0));
    // Off: neither a share nor a floor.
    let off = RetryConfig {
        budget_percent: 0,
        min_per_second: 0,
    };
    let mut budget = RetryBudget::new(&off);
    budget.deposit(&off, 0);
    assert!(!budget.withdraw(&off, 1_000_000));
}

proptest! {
    /// However requests and failures interleave, retries never exceed the share of first
    /// attempts plus the floor for the time elapsed plus what the budget could bank.
    #[test]
    fn retries_stay_within_the_budget(
        percent in 0u32..=100,
        floor in 0u32..=20,
        steps in prop::collection::vec((0u64..2_000, any::<bool>()), 1..400),
    ) {
        let config = RetryConfig { budget_percent: percent, min_per_second: floor };
        let mut budget = RetryBudget::new(&config);
        let (mut now, mut firsts, mut retries) = (0u64, 0u64, 0u64);
        for (advance, is_retry) in steps {
            now += advance;
            if is_retry {
                retries += u64::from(budget.withdraw(&config, now));
            } else {
                budget.deposit(&config, now);
                firsts += 1;
            }
        }
        let bound = f64::from(percent) / 100.0 * firsts as f64
            + f64::from(floor) * (now as f64 / 1_000.0 + 1.0);
        prop_assert!(retries as f64 <= bound + 1e-9, "{retries} retries > {bound}");
    }
}

fn health() -> HealthConfig {
    HealthConfig {
        path: "/health".into(),
        interval_ms: 1_000,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        timeout_ms: 500,
    }
}

#[test]
fn health_turns_after_its_thresholds_in_a_row() {
    let config = health();
    let mut r = HealthRecord::default();
    assert!(r.healthy && r.due(&config, 0));
    let fail = || Err("connection refused".to_owned());
    assert_eq!(r.observe(&config, 0, fail()), None);
    assert_eq!(r.observe(&config, 1, fail()), None);
    // A pass in between starts the count again.
    assert_eq!(r.observe(&config, 2, Ok(())), None);
    assert_eq!(r.observe(&config, 3, fail()), None);
    assert_eq!(r.observe(&config, 4, fail()), None);
    assert_eq!(r.observe(&config, 5, fail()), Some(false));
    assert_eq!(r.detail.as_deref(), Some("connection refused"));
    assert_eq!(r.observe(&config, 6, Ok(())), None);
    assert!(!r.healthy);
    assert_eq!(r.observe(&config, 7, Ok(())), Some(true));
    assert_eq!((r.passed_ms, r.detail.as_deref()), (Some(7), None));
}

#[test]
fn a_check_is_due_after_its_interval_and_a_stale_result_is_ignored() {
    let config = health();
    let mut r = HealthRecord::default();
    r.observe(&config, 5_000, Ok(()));
    assert!(!r.due(&config, 5_999));
    assert!(r.due(&config, 6_000));
    // A slower cron run's older result does not overwrite the newer one.
    assert_eq!(r.observe(&config, 4_000, Err("late".into())), None);
    assert_eq!((r.failures, r.checked_ms), (0, Some(5_000)));
}

#[test]
fn a_passed_health_check_ends_an_earlier_ejection_on_probation() {
    let config = ejection();
    let mut ej = Ejector::new(2);
    for _ in 0..3 {
        ej.record(&config, 1, 100, false);
    }
    assert!(ej.is_ejected(1, 200));
    // A pass from before the ejection means nothing.
    ej.passed_check(1, 50);
    assert!(ej.is_ejected(1, 200));
    ej.passed_check(1, 300);
    assert!(!ej.is_ejected(1, 300));
    // On probation: the next failure ejects it again, for longer.
    assert_eq!(ej.record(&config, 1, 400, false), Some(2_000));
}

#[test]
fn an_origin_back_in_rotation_forgets_the_latency_of_its_failures() {
    let weights = [1, 1];
    // Under load: A answers in 25 ms; B's failures counted the 10 s timeout.
    let mut loads = [
        Load {
            in_flight: 30,
            latency_ewma_ms: Some(25.0),
        },
        Load {
            in_flight: 0,
            latency_ewma_ms: Some(10_000.0),
        },
    ];
    let picks_of_b = |loads: &[Load]| {
        let mut balancer = Balancer::default();
        (0..200u64)
            .filter(|&r| {
                let random = r.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                balancer.pick(&weights, &[true, true], loads, random) == Some(1)
            })
            .count()
    };
    assert_eq!(picks_of_b(&loads), 0, "starved by its old failures");
    let mut was = vec![true, true];
    rejoin(&mut loads, &mut was, &[true, false]);
    assert_eq!(loads[1].latency_ewma_ms, Some(10_000.0), "still out");
    rejoin(&mut loads, &mut was, &[true, true]);
    assert_eq!(loads[1].latency_ewma_ms, None);
    assert_eq!(loads[0].latency_ewma_ms, Some(25.0), "A stayed in: kept");
    assert!(
        picks_of_b(&loads) > 100,
        "back, and idle: it takes the load"
    );
}
