//! `CONTROL`'s transitions: a table per command, and properties over random command sequences
//! with a fake clock.

use super::*;
use crate::breaker::{Counts, Permit, Phase};
use crate::config::EdgeConfig;
use crate::purge::{PurgeLog, PurgeRequest};
use proptest::prelude::*;
use serde_json::json;

const A: &str = "http://a";
const B: &str = "http://b";

fn config() -> EdgeConfig {
    EdgeConfig::from_vars(|name| (name == "ORIGIN_URL").then(|| A.to_owned()))
        .unwrap()
        .with_origins(Some(json!({"origins": [{"url": A}, {"url": B}]})))
        .unwrap()
}

fn tags(tags: &[&str]) -> Purge {
    Purge(PurgeRequest {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        keys: Vec::new(),
        prefixes: Vec::new(),
    })
}

fn failing(calls: u32) -> Report {
    Report {
        requests: u64::from(calls),
        errors: u64::from(calls),
        would_shed: 0,
        breakers: [(
            A.to_owned(),
            Counts {
                calls,
                failures: calls,
                slow: 0,
            },
        )]
        .into(),
    }
}

#[test]
fn the_log_is_read_only_when_the_asker_lacks_its_epoch() {
    let mut state = ControlState::default();
    let unknown = ReadPurgeLog { known_epoch: None };
    assert_eq!(state.read_log(&unknown), Some(PurgeLog::default()));
    let (log, changed) = state.purge(&tags(&["product:1"]));
    let log = log.expect("a valid purge");
    assert!(changed.log && !changed.slo && !changed.breakers && !changed.health);
    let current = ReadPurgeLog {
        known_epoch: Some(log.epoch()),
    };
    assert_eq!(state.read_log(&current), None, "not modified");
    let stale = ReadPurgeLog {
        known_epoch: Some(log.epoch() - 1),
    };
    assert_eq!(state.read_log(&stale), Some(log));
}

#[test]
fn an_invalid_purge_changes_nothing() {
    let mut state = ControlState::default();
    let (answer, changed) = state.purge(&tags(&[]));
    assert!(answer.is_err(), "a purge naming nothing is refused");
    assert_eq!(changed, Changed::default());
    assert_eq!(state, ControlState::default());
}

#[test]
fn failing_reports_open_the_breaker_and_the_status_names_it() {
    let config = config();
    let mut state = ControlState::default();
    let (status, changed, _) = state.report(&failing(100), &config, 1_000);
    assert!(changed.breakers && changed.slo);
    let view = status.breakers.get(A).expect("A's breaker is not closed");
    assert_eq!(view.phase, Phase::Open);
    assert!(
        !status.breakers.contains_key(B),
        "closed breakers are absent"
    );
    let (permit, _) = state.acquire(&AcquireBreaker { origin: A.into() }, &config, 1_001);
    assert!(matches!(permit, Permit::Rejected { .. }), "{permit:?}");
}

#[test]
fn a_probe_that_succeeds_closes_a_half_open_breaker() {
    let config = config();
    let mut state = ControlState::default();
    state.report(&failing(100), &config, 1_000);
    let later = 1_000 + config.breaker.open_ms;
    let mut closed = false;
    for _ in 0..config.breaker.half_open_probes {
        let (permit, _) = state.acquire(&AcquireBreaker { origin: A.into() }, &config, later);
        let Permit::Probe { id } = permit else {
            panic!("a half-open breaker hands out probes, got {permit:?}");
        };
        let probe = ReportProbe {
            origin: A.into(),
            id,
            success: true,
            latency_ms: 5,
        };
        let (view, _) = state.probe(&probe, &config, later + 1);
        closed = view.phase == Phase::Closed;
    }
    assert!(closed, "every probe succeeded");
}

#[test]
fn health_checks_flip_records_and_forget_unconfigured_origins() {
    let config = config();
    let mut state = ControlState::default();
    let check = |origin: &str, at_ms, result: Result<(), String>| Check {
        origin: origin.into(),
        at_ms,
        result,
    };
    let threshold = config.pool.health.unhealthy_threshold;
    let mut notices = Vec::new();
    for i in 0..threshold {
        let checks = [
            check(A, u64::from(i), Err("answered 503".into())),
            check("http://gone", u64::from(i), Ok(())),
        ];
        let (_, changed, n) = state.record_checks(&checks, &config);
        assert!(changed.health);
        notices.extend(n);
    }
    assert!(!state.health[A].healthy);
    assert!(!state.health.contains_key("http://gone"));
    assert_eq!(
        notices,
        [Notice::Unhealthy {
            origin: A.into(),
            detail: "answered 503".into()
        }]
    );
    assert_eq!(
        notices[0].to_string(),
        "origin http://a is unhealthy: answered 503"
    );
}

#[test]
fn shadow_counts_become_a_notice() {
    let mut state = ControlState::default();
    let report = Report {
        requests: 10,
        would_shed: 3,
        ..Report::default()
    };
    let (status, _, notices) = state.report(&report, &config(), 1);
    assert_eq!(status.fraction, 1.0);
    assert!(
        matches!(&notices[..], [Notice::WouldShed { requests: 3, .. }]),
        "{notices:?}"
    );
}

#[test]
fn the_wire_names_are_distinct() {
    use crate::rpc::Command;
    let names = [
        ReadPurgeLog::NAME,
        Purge::NAME,
        SendReport::NAME,
        AcquireBreaker::NAME,
        ReportProbe::NAME,
        ReadHealth::NAME,
        RecordChecks::NAME,
        KeepDeadLetters::NAME,
        ListDeadLetters::NAME,
        GetDeadLetters::NAME,
        RemoveDeadLetters::NAME,
    ];
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[derive(Debug, Clone)]
enum Op {
    Purge(u8),
    Report { calls: u32, failures: u32 },
    Acquire,
    Check(bool),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4).prop_map(Op::Purge),
        (0u32..50, 0u32..50).prop_map(|(calls, f)| Op::Report {
            calls,
            failures: f.min(calls)
        }),
        Just(Op::Acquire),
        any::<bool>().prop_map(Op::Check),
        (0u64..20_000).prop_map(Op::Wait),
    ]
}

proptest! {
    /// Whatever the sequence: the purge epoch never goes back, only configured origins keep a
    /// health record, a report without failures never opens a closed breaker, and every
    /// admission fraction is a fraction.
    #[test]
    fn transitions_keep_their_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let config = config();
        let mut state = ControlState::default();
        let mut now = 0u64;
        let mut epoch = 0;
        for op in ops {
            match op {
                Op::Purge(n) => {
                    let (log, _) = state.purge(&tags(&[&format!("t{n}")]));
                    let log = log.expect("valid");
                    prop_assert!(log.epoch() > epoch);
                    epoch = log.epoch();
                }
                Op::Report { calls, failures } => {
                    let was_closed = state.breakers.get(A).is_none_or(|b| {
                        b.clone().view(&config.breaker, now).phase == Phase::Closed
                    });
                    let report = Report {
                        requests: u64::from(calls),
                        errors: u64::from(failures),
                        would_shed: 0,
                        breakers: [(A.to_owned(), Counts { calls, failures, slow: 0 })].into(),
                    };
                    let (status, _, _) = state.report(&report, &config, now);
                    prop_assert!((0.0..=1.0).contains(&status.fraction));
                    prop_assert!((0.0..=1.0).contains(&status.effective));
                    if failures == 0 && was_closed {
                        prop_assert!(status.breakers.get(A).is_none_or(|v| v.phase != Phase::Open));
                    }
                }
                Op::Acquire => {
                    state.acquire(&AcquireBreaker { origin: B.into() }, &config, now);
                }
                Op::Check(ok) => {
                    let result = if ok { Ok(()) } else { Err("down".into()) };
                    let checks = [
                        Check { origin: B.into(), at_ms: now, result: result.clone() },
                        Check { origin: "http://gone".into(), at_ms: now, result },
                    ];
                    state.record_checks(&checks, &config);
                    prop_assert!(state.health.keys().all(|o| o == A || o == B));
                }
                Op::Wait(ms) => now += ms,
            }
            prop_assert_eq!(state.read_log(&ReadPurgeLog { known_epoch: Some(epoch) }), None);
        }
    }
}
