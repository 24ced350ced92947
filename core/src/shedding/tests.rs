use super::*;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const SECOND: u64 = 1_000;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Reports `requests` and `errors` then adjusts, once a second over `seconds`; returns the
/// fraction after each second.
fn drive(
    c: &mut Controller,
    config: &SloConfig,
    seconds: std::ops::Range<u64>,
    (requests, errors): (u64, u64),
) -> Vec<f64> {
    seconds
        .map(|s| {
            c.report(config, s * SECOND, requests, errors);
            c.adjust(config, s * SECOND)
        })
        .collect()
}

fn totals(c: &Controller) -> (u64, u64) {
    c.buckets
        .iter()
        .fold((0, 0), |(r, e), b| (r + b.requests, e + b.errors))
}

#[test]
fn steady_streams() {
    let config = SloConfig::default();
    // (case, requests and errors per second, starting fraction, fraction after two minutes)
    let cases = [
        ("healthy stays open", (1_000, 0), 1.0, 1.0),
        ("healthy restores", (1_000, 0), 0.5, 1.0),
        ("50% errors cut to the floor", (1_000, 500), 1.0, 0.05),
        ("burn 5, in the band, never cuts", (1_000, 5), 1.0, 1.0),
        ("burn 5, in the band, holds a cut", (1_000, 5), 0.5, 0.5),
        ("burn 1.5 restores", (2_000, 3), 0.5, 1.0),
        ("too sparse to cut, even all failing", (1, 1), 1.0, 1.0),
        ("no traffic is no reason to hold a cut", (0, 0), 0.5, 1.0),
    ];
    for (case, stream, start, expected) in cases {
        let mut c = Controller {
            fraction: start,
            ..Controller::new()
        };
        let end = *drive(&mut c, &config, 0..120, stream).last().unwrap();
        assert!(close(end, expected), "{case}: {end}");
    }
    let mut c = Controller::new();
    c.report(&config, 0, 2, 1);
    assert_eq!(c.burn_rates(&config, 0), (None, None), "1 error in 2");
}

#[test]
fn errors_cut_ten_percent_per_dwell_down_to_the_floor() {
    let config = SloConfig::default();
    let f = drive(&mut Controller::new(), &config, 0..120, (1_000, 500));
    // A cut at 1 s, then one every dwell (2 s): 3 s, 5 s, ...; held in between.
    let expected = [
        (0, 1.0),
        (1, 0.9),
        (2, 0.9),
        (3, 0.81),
        (21, 0.9f64.powi(11)),
    ];
    for (second, fraction) in expected.into_iter().chain([(55, 0.9f64.powi(28))]) {
        assert!(close(f[second], fraction), "{second} s: {}", f[second]);
    }
    assert!(f[57..].iter().all(|&f| f == 0.05), "0.9^29 < 0.05");
}

#[test]
fn a_burst_the_long_window_does_not_confirm_never_cuts() {
    let config = SloConfig::default();
    let mut c = Controller::new();
    drive(&mut c, &config, 0..600, (1_000, 0));
    let f = drive(&mut c, &config, 600..610, (1_000, 500));
    let (short, long) = c.burn_rates(&config, 609 * SECOND);
    assert!(short.unwrap() > config.burn_threshold);
    assert!(long.unwrap() < config.burn_threshold);
    assert!(f.iter().all(|&f| f == 1.0));
}

#[test]
fn recovery_follows_the_admitted_requests_not_the_windows() {
    let config = SloConfig::default();
    let mut c = Controller::new();
    drive(&mut c, &config, 0..300, (1_000, 500));
    assert!(close(c.fraction(), 0.05));
    let f = drive(&mut c, &config, 300..310, (1_000, 0));
    // Both windows still burn (they remember the outage) ...
    let (short, long) = c.burn_rates(&config, 309 * SECOND);
    assert!(short.unwrap() > config.burn_threshold && long.unwrap() > config.burn_threshold);
    // ... but what is admitted succeeds: each interval gives back half of what is shed.
    for (k, got) in f.iter().enumerate() {
        let want = 1.0 - 0.95 * 0.5f64.powi(k as i32 + 1);
        assert!(close(*got, want), "{} s: {got}, want {want}", 300 + k);
    }
    assert!(
        f[6] > 0.99,
        "under 1% shed seven intervals after the errors stop"
    );
    // Admitted requests still failing hold the cut where it is, and cut again after the dwell.
    let mut c = Controller {
        fraction: 0.5,
        ..Controller::new()
    };
    drive(&mut c, &config, 0..300, (1_000, 500));
    let before = c.fraction();
    let f = drive(&mut c, &config, 300..302, (1_000, 5));
    assert!(
        f.iter().all(|&f| close(f, before)),
        "burn 5: in the band, hold"
    );
}

#[test]
fn shadow_computes_but_admits_everything() {
    let config = SloConfig {
        shadow: true,
        ..SloConfig::default()
    };
    let mut c = Controller::new();
    drive(&mut c, &config, 0..10, (1_000, 500));
    assert!(
        close(c.fraction(), 0.9f64.powi(5)),
        "cuts at 1, 3, 5, 7, 9 s"
    );
    assert_eq!(c.effective_fraction(&config), 1.0);
    let enforced = SloConfig::default();
    assert_eq!(c.effective_fraction(&enforced), c.fraction());
}

#[test]
fn the_clock_may_step_back_idle_or_reset() {
    let config = SloConfig::default();
    let mut c = Controller::new();
    let t = 1_000_000;
    c.report(&config, t, 100, 1);
    c.report(&config, t - 3_000, 100, 1);
    assert_eq!(
        totals(&c),
        (200, 2),
        "a step back counts once, in the present"
    );
    assert_eq!(c.burn_rates(&config, t - 3_000), c.burn_rates(&config, t));
    assert_eq!(c.burn_rates(&config, t + 600_000), (None, None), "idle");
    c.report(&config, t - 600_000, 100, 0);
    assert_eq!(
        totals(&c),
        (100, 0),
        "a reset drops the buckets ahead of it"
    );
}

#[test]
fn adjust_catches_up_only_as_far_as_the_short_window_reaches() {
    let config = SloConfig {
        short_window_ms: 10_000,
        ..SloConfig::default()
    };
    let mut c = Controller {
        fraction: 0.05,
        ..Controller::new()
    };
    assert_eq!(
        c.adjust(&config, 0),
        0.05,
        "the first call starts the clock"
    );
    c.report(&config, 3_600_000, 1_000, 0);
    let caught_up = c.adjust(&config, 3_600_000);
    assert!(
        close(caught_up, 1.0 - 0.95 * 0.5f64.powi(10)),
        "an hour, but ten restores"
    );
    assert_eq!(c.adjust(&config, 3_599_000), caught_up, "stepped back");
    assert_eq!(
        c.adjust(&config, 3_599_999),
        caught_up,
        "interval restarted"
    );
    // A cut is one step whatever the time elapsed: the dwell paces cuts, not the clock.
    let mut c = Controller::new();
    c.adjust(&config, 0);
    c.report(&config, 3_600_000, 1_000, 500);
    assert!(close(c.adjust(&config, 3_600_000), 0.9), "one cut");
}

#[test]
fn memory_is_bounded_and_the_state_round_trips() {
    let config = SloConfig::default();
    let mut c = Controller::new();
    for t in (0..3_600_000).step_by(100) {
        c.report(&config, t, 10, 1);
    }
    assert_eq!(c.buckets.len(), BUCKETS);
    let stored = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<Controller>(&stored).unwrap(), c);
}

#[test]
fn shed_probability_by_rank() {
    // (fraction, shed probability of ranks 0 (critical) to 4 (treated as low))
    let cases = [
        (1.0, [0.0, 0.0, 0.0, 0.0, 0.0]),
        (0.9, [0.0, 0.0, 0.0, 0.4, 0.4]),
        (0.75, [0.0, 0.0, 0.0, 1.0, 1.0]),
        (0.5, [0.0, 0.0, 1.0, 1.0, 1.0]),
        (0.25, [0.0, 1.0, 1.0, 1.0, 1.0]),
        (0.05, [0.8, 1.0, 1.0, 1.0, 1.0]),
        (-1.0, [1.0, 1.0, 1.0, 1.0, 1.0]),
        (f64::NAN, [0.0, 0.0, 0.0, 0.0, 0.0]),
    ];
    for (fraction, expected) in cases {
        for (rank, p) in (0..).zip(expected) {
            let got = shed_probability(fraction, rank);
            assert!(close(got, p), "{fraction} rank {rank}: {got}");
        }
    }
}

#[test]
fn config_parses_with_defaults_and_names_the_bad_field() {
    let parse = |json| serde_json::from_str::<SloConfig>(json);
    assert_eq!(parse("{}").unwrap(), SloConfig::default());
    let parsed = parse(r#"{"shadow": true, "slo": 0.99}"#).unwrap();
    assert!(parsed.shadow && parsed.slo == 0.99 && parsed.cut == 0.10);
    assert!(
        parse(r#"{"shadwo": true}"#).is_err(),
        "unknown fields are refused"
    );
    assert_eq!(SloConfig::default().validate(), Ok(()));
    let cases = [
        ("slo", r#"{"slo": 1.0}"#),
        ("short_window_ms", r#"{"short_window_ms": 4999}"#),
        ("short_window_ms", r#"{"short_window_ms": 600001}"#),
        ("burn_threshold", r#"{"slo": 0.9}"#),
        ("recover_threshold", r#"{"recover_threshold": 14.4}"#),
        ("cut", r#"{"cut": 1.0}"#),
        ("restore", r#"{"restore": 0}"#),
        ("min_fraction", r#"{"min_fraction": 0}"#),
        ("min_requests", r#"{"min_requests": 0}"#),
        ("adjust_interval_ms", r#"{"adjust_interval_ms": 0}"#),
    ];
    for (field, json) in cases {
        let err = parse(json).unwrap().validate().unwrap_err();
        assert!(err.starts_with(field), "{json}: {err}");
    }
    let nan = SloConfig {
        slo: f64::NAN,
        ..SloConfig::default()
    };
    assert!(nan.validate().unwrap_err().starts_with("slo "));
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Whatever the traffic and however the clock moves, the fraction stays in
    /// [min_fraction, 1] and the buckets stay bounded.
    #[test]
    fn fraction_stays_within_bounds(
        min_fraction in 0.01f64..=1.0,
        cut in 0.01f64..0.99,
        restore in 0.01f64..=1.0,
        events in prop::collection::vec(
            (prop_oneof![0i64..3_000, -700_000i64..700_000], 0u64..5_000, 0u64..5_000),
            1..200,
        ),
    ) {
        let config = SloConfig { min_fraction, cut, restore, ..SloConfig::default() };
        let mut c = Controller::new();
        let mut now = 10_000_000u64;
        for (dt, requests, errors) in events {
            now = now.saturating_add_signed(dt);
            c.report(&config, now, requests, errors);
            let f = c.adjust(&config, now);
            prop_assert!((min_fraction..=1.0).contains(&f), "{f}");
            prop_assert!(c.buckets.len() <= BUCKETS);
        }
    }

    /// Reports within one long window count exactly once, in whatever order they arrive.
    #[test]
    fn every_report_counts_once(
        reports in prop::collection::vec((0u64..590_000, 0u64..1_000), 1..100),
    ) {
        let config = SloConfig::default();
        let mut c = Controller::new();
        for &(at, requests) in &reports {
            c.report(&config, at, requests, 0);
        }
        prop_assert_eq!(totals(&c).0, reports.iter().map(|r| r.1).sum::<u64>());
    }

    /// Less admitted never sheds less; a lower priority never sheds less than a higher one,
    /// and a rank starts shedding only once every lower priority is shed in full.
    #[test]
    fn shedding_is_monotone(f1 in 0.0f64..=1.0, f2 in 0.0f64..=1.0, rank in 0u8..6) {
        let (less, more) = (f1.min(f2), f1.max(f2));
        prop_assert!(shed_probability(more, rank) <= shed_probability(less, rank));
        let p = shed_probability(f1, rank);
        let lower = shed_probability(f1, rank + 1);
        prop_assert!((0.0..=1.0).contains(&p) && p <= lower);
        prop_assert!(p == 0.0 || rank >= RANKS - 1 || lower == 1.0);
    }

    /// Fraction 1 admits all; critical is admitted down to a fraction of 0.25; an even mix
    /// of ranks sheds exactly 1 - fraction.
    #[test]
    fn admission_guarantees(fraction in 0.0f64..=1.0, rank: u8, uniform in 0.0f64..1.0) {
        prop_assert!(admit(1.0, rank, uniform));
        prop_assert!(fraction < 0.25 || admit(fraction, 0, uniform));
        let mean = (0..RANKS).map(|r| shed_probability(fraction, r)).sum::<f64>() / 4.0;
        prop_assert!(close(mean, 1.0 - fraction), "{mean}");
    }
}
