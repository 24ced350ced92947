use super::*;

const T0: u64 = 1_000_000;

/// 100 ms buckets, open for 500 ms, two probes of 300 ms.
fn config() -> BreakerConfig {
    BreakerConfig {
        failure_rate: 0.5,
        slow_rate: 0.8,
        slow_call_ms: 100,
        min_calls: 10,
        window_ms: 1_000,
        open_ms: 500,
        half_open_probes: 2,
        probe_timeout_ms: 300,
    }
}

fn counts(calls: u32, failures: u32, slow: u32) -> Counts {
    Counts {
        calls,
        failures,
        slow,
    }
}

fn open_until(until: u64) -> View {
    View {
        phase: Phase::Open,
        open_until_ms: Some(until),
    }
}

const CLOSED: View = View {
    phase: Phase::Closed,
    open_until_ms: None,
};
const HALF_OPEN: View = View {
    phase: Phase::HalfOpen,
    open_until_ms: None,
};

/// Tripped at T0, so half-open from T0 + 500.
fn tripped() -> Breaker {
    let mut b = Breaker::new();
    assert_eq!(
        b.record(&config(), T0, counts(10, 5, 0)),
        open_until(T0 + 500)
    );
    b
}

#[test]
fn trips_exactly_at_the_thresholds_once_min_calls_is_reached() {
    // Batches reported at T0, in order; whether the breaker is then open.
    let cases: &[(&[Counts], bool)] = &[
        (&[counts(9, 9, 9)], false),
        (&[counts(10, 4, 7)], false),
        (&[counts(10, 5, 0)], true),
        (&[counts(10, 0, 8)], true),
        (&[counts(20, 9, 15)], false),
        (&[counts(5, 5, 0), counts(5, 0, 0)], true),
        (&[counts(5, 5, 5), counts(6, 0, 0)], false),
        (&[counts(10, 40, 0)], true),
        (&[counts(5, 0, 0), counts(5, 0, 40)], false),
        (&[counts(0, 5, 8), counts(10, 0, 0)], false),
    ];
    for (batches, opens) in cases {
        let mut b = Breaker::new();
        let views: Vec<View> = batches
            .iter()
            .map(|c| b.record(&config(), T0, *c))
            .collect();
        let want = if *opens { open_until(T0 + 500) } else { CLOSED };
        assert_eq!(views.last(), Some(&want), "{batches:?}");
        assert!(
            views[..views.len() - 1].iter().all(|v| *v == CLOSED),
            "{batches:?}"
        );
    }
}

#[test]
fn the_window_is_ten_buckets_and_forgets_what_slid_out() {
    // (when the second half arrives, after five failures at T0; opens)
    for (later, opens) in [(1, true), (999, true), (1_000, false), (5_000, false)] {
        let mut b = Breaker::new();
        b.record(&config(), T0, counts(5, 5, 0));
        let view = b.record(&config(), T0 + later, counts(5, 0, 0));
        assert_eq!(view.phase == Phase::Open, opens, "{later} ms later");
    }
}

#[test]
fn successes_sliding_out_of_the_window_can_trip_it_without_a_report() {
    let mut b = Breaker::new();
    b.record(&config(), T0, counts(10, 0, 0));
    assert_eq!(b.record(&config(), T0 + 500, counts(10, 5, 0)), CLOSED);
    assert_eq!(b.view(&config(), T0 + 999), CLOSED);
    assert_eq!(b.view(&config(), T0 + 1_000), open_until(T0 + 1_500));
}

#[test]
fn open_refuses_everything_until_open_ms_then_half_opens() {
    let mut b = tripped();
    let c = config();
    for (at, retry_after_ms) in [(0, 500), (1, 499), (499, 1)] {
        assert_eq!(b.acquire(&c, T0 + at), Permit::Rejected { retry_after_ms });
    }
    assert_eq!(
        b.record(&c, T0 + 499, counts(100, 0, 0)),
        open_until(T0 + 500),
        "counts reported while open are dropped"
    );
    assert_eq!(b.view(&c, T0 + 499), open_until(T0 + 500));
    assert_eq!(b.view(&c, T0 + 500), HALF_OPEN);
}

#[test]
fn half_open_hands_out_exactly_the_round_s_probes() {
    let mut b = tripped();
    let c = config();
    assert_eq!(b.acquire(&c, T0 + 500), Permit::Probe { id: 1 });
    assert_eq!(b.acquire(&c, T0 + 550), Permit::Probe { id: 2 });
    assert_eq!(
        b.acquire(&c, T0 + 600),
        Permit::Rejected {
            retry_after_ms: 200
        },
        "until the first probe's deadline"
    );
    assert_eq!(b.record(&c, T0 + 600, counts(100, 100, 0)), HALF_OPEN);
    assert_eq!(b.report_probe(&c, T0 + 600, 1, true, 10), HALF_OPEN);
    assert_eq!(
        b.acquire(&c, T0 + 600),
        Permit::Rejected {
            retry_after_ms: 250
        },
        "a reported probe is not replaced within the round"
    );
}

#[test]
fn a_successful_round_closes_and_clears_the_window() {
    let mut b = tripped();
    let c = config();
    b.acquire(&c, T0 + 500);
    b.acquire(&c, T0 + 500);
    assert_eq!(b.report_probe(&c, T0 + 510, 2, true, 99), HALF_OPEN);
    assert_eq!(b.report_probe(&c, T0 + 520, 1, true, 10), CLOSED);
    assert_eq!(b.acquire(&c, T0 + 520), Permit::Allowed);
    assert_eq!(
        b.record(&c, T0 + 530, counts(9, 9, 0)),
        CLOSED,
        "the tripping counts are gone"
    );
}

#[test]
fn a_failed_or_slow_probe_reopens_for_open_ms() {
    // (slow_rate, the two probes' outcomes as (success, latency), view after the second)
    let cases = [
        (0.8, [(false, 10), (true, 10)], None),
        (0.8, [(true, 10), (false, 10)], Some(open_until(T0 + 1_100))),
        (0.8, [(true, 100), (true, 10)], Some(CLOSED)),
        (
            0.8,
            [(true, 100), (true, 100)],
            Some(open_until(T0 + 1_100)),
        ),
        (0.5, [(true, 100), (true, 10)], None),
        (1.0, [(true, 100), (true, 10)], Some(CLOSED)),
        (
            1.0,
            [(true, 100), (true, 500)],
            Some(open_until(T0 + 1_100)),
        ),
    ];
    for (slow_rate, [first, second], want) in cases {
        let c = BreakerConfig {
            slow_rate,
            ..config()
        };
        let mut b = tripped();
        let (Permit::Probe { id: a }, Permit::Probe { id: z }) =
            (b.acquire(&c, T0 + 500), b.acquire(&c, T0 + 500))
        else {
            panic!("two probes")
        };
        let after_first = b.report_probe(&c, T0 + 550, a, first.0, first.1);
        let after_second = b.report_probe(&c, T0 + 600, z, second.0, second.1);
        match want {
            None => {
                assert_eq!(after_first, open_until(T0 + 1_050), "{slow_rate} {first:?}");
                assert_eq!(after_second, after_first, "the other probe is now stale");
            }
            Some(want) => {
                assert_eq!(after_first, HALF_OPEN, "{slow_rate} {first:?}");
                assert_eq!(after_second, want, "{slow_rate} {second:?}");
            }
        }
    }
}

#[test]
fn a_hung_probe_fails_the_round_at_its_deadline() {
    let c = config();
    let mut b = tripped();
    b.acquire(&c, T0 + 500);
    b.acquire(&c, T0 + 600);
    b.report_probe(&c, T0 + 650, 2, true, 10);
    assert_eq!(b.view(&c, T0 + 799), HALF_OPEN);
    assert_eq!(b.view(&c, T0 + 800), open_until(T0 + 1_300));

    // Seen only much later: opened at the deadline and half-open again since, with a new round.
    let mut late = tripped();
    late.acquire(&c, T0 + 500);
    assert_eq!(late.view(&c, T0 + 1_299), open_until(T0 + 1_300));
    let mut later = tripped();
    later.acquire(&c, T0 + 500);
    assert_eq!(later.view(&c, T0 + 1_300), HALF_OPEN);
    assert_eq!(later.report_probe(&c, T0 + 1_300, 1, true, 1), HALF_OPEN);
    assert_eq!(later.acquire(&c, T0 + 1_300), Permit::Probe { id: 2 });
}

#[test]
fn unknown_probe_ids_change_nothing() {
    let c = config();
    let mut b = Breaker::new();
    assert_eq!(b.report_probe(&c, T0, 7, false, 0), CLOSED);
    let mut b = tripped();
    assert_eq!(
        b.report_probe(&c, T0 + 1, 1, false, 0),
        open_until(T0 + 500)
    );
    b.acquire(&c, T0 + 500);
    let before = b.clone();
    assert_eq!(b.report_probe(&c, T0 + 500, 99, false, 0), HALF_OPEN);
    assert_eq!(b, before);
}

#[test]
fn a_clock_stepping_back_pauses_nothing_and_panics_nowhere() {
    let c = config();
    let mut b = tripped();
    let back = T0 - 10_000;
    assert_eq!(b.view(&c, back), open_until(back + 500));
    assert_eq!(
        b.acquire(&c, back + 499),
        Permit::Rejected { retry_after_ms: 1 }
    );
    assert_eq!(
        b.view(&c, back + 500),
        HALF_OPEN,
        "open for exactly open_ms"
    );
    assert!(matches!(b.acquire(&c, 0), Permit::Probe { .. }));
    assert_eq!(b.view(&c, 299), HALF_OPEN);
    assert_eq!(
        b.view(&c, 300),
        open_until(800),
        "the probe timed out on time"
    );
    assert_eq!(b.view(&c, u64::MAX), HALF_OPEN);
    assert_eq!(b.record(&c, u64::MAX, counts(u32::MAX, 0, 0)), HALF_OPEN);
}

#[test]
fn validate_names_the_bad_field() {
    assert_eq!(BreakerConfig::default().validate(), Ok(()));
    assert_eq!(config().validate(), Ok(()));
    let spoiled = |spoil: fn(&mut BreakerConfig)| {
        let mut c = config();
        spoil(&mut c);
        c
    };
    let bad = [
        ("failure_rate", spoiled(|c| c.failure_rate = 0.0)),
        ("failure_rate", spoiled(|c| c.failure_rate = f64::NAN)),
        ("slow_rate", spoiled(|c| c.slow_rate = 1.01)),
        ("slow_call_ms", spoiled(|c| c.slow_call_ms = 0)),
        ("min_calls", spoiled(|c| c.min_calls = 0)),
        ("window_ms", spoiled(|c| c.window_ms = 9)),
        ("open_ms", spoiled(|c| c.open_ms = 0)),
        ("half_open_probes", spoiled(|c| c.half_open_probes = 0)),
        ("probe_timeout_ms", spoiled(|c| c.probe_timeout_ms = 0)),
        (
            "failure_rate",
            spoiled(|c| (c.failure_rate, c.min_calls) = (-1.0, 0)),
        ),
    ];
    for (field, config) in bad {
        let err = config.validate().expect_err(field);
        assert!(err.starts_with(field), "{err}");
    }
}

#[test]
fn names_match_their_serialised_form() {
    for phase in [Phase::Closed, Phase::Open, Phase::HalfOpen] {
        let json = serde_json::to_string(&phase).unwrap();
        assert_eq!(json, format!("\"{}\"", phase.as_str()));
    }
    assert_eq!(Permit::Probe { id: 3 }.as_str(), "probe");
    assert_eq!(Permit::Allowed.as_str(), "allowed");
    assert_eq!(Permit::Rejected { retry_after_ms: 1 }.as_str(), "rejected");
}

mod model {
    //! T-RS-01: random operation sequences against a reference model written the obvious
    //! way, with an event list for the window, exact rational rates and a forward-only clock.
    //! Failures persist to `breaker.regressions` beside this file (check it in).

    use super::super::*;
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    #[derive(Debug, Clone)]
    enum Op {
        /// Moves the caller's clock; negative steps go back.
        Clock(i64),
        Record(Counts),
        Acquire,
        /// Reports the `pick`-th probe handed out so far, stale ones included. A probe never
        /// reported is a hung one.
        Report {
            pick: usize,
            success: bool,
            latency_ms: u64,
        },
        /// Stores and reloads the breaker, as the Durable Object does between requests.
        Persist,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let counts = (0u32..6).prop_flat_map(|calls| {
            (Just(calls), 0..=calls, 0..=calls).prop_map(|(calls, failures, slow)| Counts {
                calls,
                failures,
                slow,
            })
        });
        let op = prop_oneof![
            3 => (0i64..1_500).prop_map(Op::Clock),
            1 => (-5_000i64..0).prop_map(Op::Clock),
            4 => counts.prop_map(Op::Record),
            3 => Just(Op::Acquire),
            3 => (any::<usize>(), any::<bool>(), 0u64..3_000)
                .prop_map(|(pick, success, latency_ms)| Op::Report { pick, success, latency_ms }),
            1 => Just(Op::Persist),
        ];
        prop::collection::vec(op, 1..120)
    }

    /// A config with rates in twentieths, so the model can compare them exactly.
    fn configs() -> impl Strategy<Value = (BreakerConfig, u64, u64)> {
        (
            (1u64..=20, 1u64..=20, 1u64..3_000, 1u32..12),
            (10u64..3_000, 1u64..2_000, 1u32..4, 1u64..2_000),
        )
            .prop_map(
                |((fail, slow, slow_call_ms, min_calls), (window_ms, open_ms, probes, timeout))| {
                    let config = BreakerConfig {
                        failure_rate: fail as f64 / 20.0,
                        slow_rate: slow as f64 / 20.0,
                        slow_call_ms,
                        min_calls,
                        window_ms,
                        open_ms,
                        half_open_probes: probes,
                        probe_timeout_ms: timeout,
                    };
                    (config, fail, slow)
                },
            )
    }

    #[derive(Debug)]
    enum Expected {
        /// Every report since the breaker last closed, with its time; the window filters them.
        Closed(Vec<(u64, Counts)>),
        Open(u64),
        HalfOpen {
            issued: u32,
            ok: u32,
            slow: u32,
            probes: Vec<(u64, u64)>,
        },
    }

    struct Model {
        c: BreakerConfig,
        fail20: u64,
        slow20: u64,
        now: u64,
        state: Expected,
    }

    impl Model {
        fn trips(&self, events: &[(u64, Counts)]) -> bool {
            let width = self.c.window_ms / 10;
            let (mut calls, mut failures, mut slow) = (0u64, 0u64, 0u64);
            for (_, c) in events
                .iter()
                .filter(|(t, _)| self.now / width - t / width < 10)
            {
                calls += u64::from(c.calls);
                failures += u64::from(c.failures);
                slow += u64::from(c.slow);
            }
            calls >= u64::from(self.c.min_calls)
                && (failures * 20 >= self.fail20 * calls || slow * 20 >= self.slow20 * calls)
        }

        fn open(&mut self, at: u64) {
            self.state = Expected::Open(at + self.c.open_ms);
        }

        fn settle(&mut self) {
            loop {
                match &self.state {
                    Expected::Closed(events) if self.trips(events) => self.open(self.now),
                    Expected::Open(until) if *until <= self.now => {
                        self.state = Expected::HalfOpen {
                            issued: 0,
                            ok: 0,
                            slow: 0,
                            probes: vec![],
                        }
                    }
                    Expected::HalfOpen { probes, .. } if probes.iter().any(|p| p.1 <= self.now) => {
                        self.open(probes.iter().map(|p| p.1).min().unwrap())
                    }
                    _ => return,
                }
            }
        }

        fn record(&mut self, c: Counts) {
            if let Expected::Closed(events) = &mut self.state {
                events.push((self.now, c));
            }
            self.settle();
        }

        /// The permit due now; a probe takes the id the breaker chose.
        fn acquire(&mut self, got: Permit) -> Permit {
            let now = self.now;
            match &mut self.state {
                Expected::Closed(_) => Permit::Allowed,
                Expected::Open(until) => Permit::Rejected {
                    retry_after_ms: *until - now,
                },
                Expected::HalfOpen { issued, probes, .. } if *issued < self.c.half_open_probes => {
                    let id = if let Permit::Probe { id } = got {
                        id
                    } else {
                        0
                    };
                    *issued += 1;
                    probes.push((id, now + self.c.probe_timeout_ms));
                    Permit::Probe { id }
                }
                Expected::HalfOpen { probes, .. } => Permit::Rejected {
                    retry_after_ms: probes.iter().map(|p| p.1).min().expect("a probe is out") - now,
                },
            }
        }

        fn report(&mut self, id: u64, success: bool, latency_ms: u64) {
            let k = u64::from(self.c.half_open_probes);
            if let Expected::HalfOpen {
                ok, slow, probes, ..
            } = &mut self.state
                && let Some(at) = probes.iter().position(|p| p.0 == id)
            {
                probes.remove(at);
                *ok += u32::from(success);
                *slow += u32::from(success && latency_ms >= self.c.slow_call_ms);
                if !success || u64::from(*slow) * 20 >= self.slow20 * k {
                    self.open(self.now);
                } else if u64::from(*ok) == k {
                    self.state = Expected::Closed(vec![]);
                }
            }
        }

        fn view(&self, raw: u64) -> View {
            match self.state {
                Expected::Closed(_) => View {
                    phase: Phase::Closed,
                    open_until_ms: None,
                },
                Expected::Open(until) => View {
                    phase: Phase::Open,
                    open_until_ms: Some(raw + (until - self.now)),
                },
                Expected::HalfOpen { .. } => View {
                    phase: Phase::HalfOpen,
                    open_until_ms: None,
                },
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2_048,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
            ..ProptestConfig::default()
        })]

        /// Beyond agreeing with the model after every step: no permit while open, at most
        /// `half_open_probes` per round, no probe outstanding past its deadline, and closing
        /// only on the report that completes a successful round.
        #[test]
        fn agrees_with_the_reference_model(
            (c, fail20, slow20) in configs(),
            ops in ops(),
        ) {
            let mut raw = 10_000u64;
            let mut breaker = Breaker::new();
            let mut model = Model { c: c.clone(), fail20, slow20, now: raw, state: Expected::Closed(vec![]) };
            let mut seen: Vec<u64> = Vec::new();
            let mut before = breaker.view(&c, raw);
            for op in ops {
                let mut completed_round = false;
                match op {
                    Op::Clock(step) => {
                        let next = raw.saturating_add_signed(step);
                        model.now += next.saturating_sub(raw);
                        raw = next;
                        model.settle();
                    }
                    Op::Record(counts) => {
                        breaker.record(&c, raw, counts);
                        model.record(counts);
                    }
                    Op::Acquire => {
                        let got = breaker.acquire(&c, raw);
                        prop_assert_eq!(got, model.acquire(got));
                        match got {
                            Permit::Allowed => prop_assert_eq!(before.phase, Phase::Closed),
                            Permit::Probe { id } => {
                                prop_assert_eq!(before.phase, Phase::HalfOpen);
                                prop_assert!(!seen.contains(&id), "probe id {} reused", id);
                                seen.push(id);
                            }
                            Permit::Rejected { retry_after_ms } => prop_assert!(retry_after_ms > 0),
                        }
                    }
                    Op::Report { pick, success, latency_ms } => {
                        let id = if seen.is_empty() { pick as u64 } else { seen[pick % seen.len()] };
                        completed_round = matches!(
                            &model.state,
                            Expected::HalfOpen { ok, probes, .. }
                                if success && *ok + 1 == c.half_open_probes && probes.iter().any(|p| p.0 == id)
                        );
                        breaker.report_probe(&c, raw, id, success, latency_ms);
                        model.report(id, success, latency_ms);
                    }
                    Op::Persist => {
                        let stored = serde_json::to_string(&breaker).unwrap();
                        breaker = serde_json::from_str(&stored).unwrap();
                    }
                }
                let view = breaker.view(&c, raw);
                prop_assert_eq!(view, model.view(raw));
                if let State::HalfOpen(round) = &breaker.state {
                    prop_assert!(round.issued <= c.half_open_probes);
                    prop_assert!(round.outstanding.iter().all(|p| p.deadline_ms > breaker.clock.ms));
                }
                if view.phase == Phase::Closed && before.phase != Phase::Closed {
                    prop_assert!(completed_round, "closed without a successful round");
                }
                before = view;
            }
        }
    }
}
