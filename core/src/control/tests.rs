//! `CONTROL`'s transitions: a table per command, and properties over random command sequences
//! with a fake clock.

use super::*;
use crate::breaker::{Counts, Permit, Phase};
use crate::config::EdgeConfig;
use crate::metrics::Metrics;
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
        ..Report::default()
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
fn the_overview_shows_every_breaker_and_changes_nothing() {
    let config = config();
    let mut state = ControlState::default();
    let mut clean = failing(30);
    clean.errors = 0;
    clean.breakers.insert(
        B.into(),
        Counts {
            calls: 30,
            failures: 0,
            slow: 0,
        },
    );
    clean.breakers.get_mut(A).unwrap().failures = 30;
    state.report(&clean, &config, 1_000);
    let before = state.clone();
    let open_ms = config.breaker.open_ms;
    let overview = state.overview(&config, 1_001, 7, Metrics::default());
    assert_eq!(overview.breakers[A].phase, Phase::Open);
    assert_eq!(
        overview.breakers[B].phase,
        Phase::Closed,
        "closed breakers are listed too"
    );
    assert_eq!((overview.since_ms, overview.now_ms), (7, 1_001));
    assert_eq!(
        overview.shed.len(),
        4,
        "a shed chance per priority: {:?}",
        overview.shed
    );
    assert!(
        overview.shed.values().all(|&p| p == 0.0),
        "nothing shed at fraction 1"
    );
    // Once the open time has passed the overview says half-open, and the state is untouched.
    let later = state.overview(&config, 1_000 + open_ms + 1, 7, Metrics::default());
    assert_eq!(later.breakers[A].phase, Phase::HalfOpen);
    assert_eq!(state, before);
}

/// Found by the property below: failures short of `min_calls` (20) stay in the window, and a
/// later report without failures that brings it to 20 calls opens the breaker.
#[test]
fn a_clean_report_can_complete_a_failing_window() {
    let config = config();
    let mut state = ControlState::default();
    let (status, _, _) = state.report(&failing(14), &config, 0);
    assert!(!status.breakers.contains_key(A));
    let clean = Report {
        requests: 6,
        breakers: [(
            A.to_owned(),
            Counts {
                calls: 6,
                failures: 0,
                slow: 0,
            },
        )]
        .into(),
        ..Report::default()
    };
    let (status, _, _) = state.report(&clean, &config, 1);
    assert_eq!(status.breakers.get(A).map(|v| v.phase), Some(Phase::Open));
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
        RelayReport::NAME,
        RelayReadPurgeLog::NAME,
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

mod relay {
    use super::*;
    use crate::concurrency::GlobalLimit;
    use crate::control::relay::Relay;

    fn busy(limit: u32, demand: u64) -> Report {
        let partial = GlobalLimit {
            limit,
            total_demand: demand,
            isolates: 1,
            no_load_rtt_ms: Some(10.0),
        };
        Report {
            requests: demand,
            concurrency: [(A.to_owned(), partial)].into(),
            ..Report::default()
        }
    }

    #[test]
    fn a_shard_passes_one_sum_per_interval_to_the_root() {
        let mut relay = Relay::default();
        // The first report goes on at once: the shard knows no status yet.
        let first = relay.report(&busy(10, 5), 0, 1_000).unwrap();
        assert_eq!(first.requests, 5);
        // Reports arriving while it is on its way, or within the interval, are summed.
        assert_eq!(relay.report(&busy(20, 7), 10, 1_000), None);
        assert_eq!(relay.status(), Status::default());
        let root = Status {
            fraction: 0.5,
            ..Status::default()
        };
        relay.forwarded(first, Some(root.clone()));
        assert_eq!(relay.report(&busy(30, 11), 999, 1_000), None);
        assert_eq!(relay.status(), root);
        let sum = relay.report(&failing(2), 1_000, 1_000).unwrap();
        assert_eq!((sum.requests, sum.errors), (20, 2));
        let limits = &sum.concurrency[A];
        assert_eq!(
            (limits.limit, limits.total_demand, limits.isolates),
            (50, 18, 2)
        );
    }

    #[test]
    fn counts_the_root_did_not_take_wait_and_their_snapshot_is_dropped() {
        let mut relay = Relay::default();
        let sum = relay.report(&busy(10, 5), 0, 1_000).unwrap();
        relay.forwarded(sum, None);
        assert_eq!(relay.status(), Status::default());
        let again = relay.report(&busy(20, 1), 1_000, 1_000).unwrap();
        assert_eq!(again.requests, 6);
        assert_eq!(
            again.concurrency[A].limit, 20,
            "one interval's isolates only"
        );
    }

    /// Requests per second reaching the root and the busiest shard when `isolates` isolates,
    /// each on a random shard and at a random phase, report and read the purge log once a second
    /// for 10 s, through the real [`Relay`] (the root answering at once).
    fn control_plane_load(isolates: u64, shards: u64) -> (f64, f64) {
        const SECONDS: u64 = 10;
        let mut rng = crate::concurrency::sim::Rng::new(isolates);
        let mut fleet: Vec<(u64, usize)> = (0..isolates)
            .map(|_| (rng.below(1_000), rng.below(shards) as usize))
            .collect();
        fleet.sort_unstable();
        let mut relays: Vec<Relay> = (0..shards).map(|_| Relay::default()).collect();
        let mut received = vec![0u64; relays.len()];
        let mut root = 0u64;
        for second in 0..SECONDS {
            for &(phase, shard) in &fleet {
                let now = second * 1_000 + phase;
                let relay = &mut relays[shard];
                received[shard] += 2;
                if let Some(sum) = relay.report(&Report::default(), now, 1_000) {
                    root += 1;
                    relay.forwarded(sum, Some(Status::default()));
                }
                if relay.log_due(now, 1_000).is_some() {
                    root += 1;
                    relay.log_refreshed(Some(PurgeLog::default()), now);
                }
                relay.read_log(None);
            }
        }
        let busiest = received.iter().copied().max().unwrap_or(0);
        (
            root as f64 / SECONDS as f64,
            busiest as f64 / SECONDS as f64,
        )
    }

    /// One object for the whole fleet serves `2 · isolates` requests per second: 20,000/s at
    /// 10,000 isolates, twenty times what one Durable Object sustains. Sharded, the root's load
    /// depends only on the number of shards, and each shard's on its share of the isolates.
    #[test]
    fn the_control_plane_load_is_bounded_by_the_shards() {
        let shards = crate::config::DEFAULT_CONTROL_SHARDS;
        println!("isolates  one object req/s  root req/s  busiest shard req/s  ({shards} shards)");
        for isolates in [10, 1_000, 10_000] {
            let (root, busiest) = control_plane_load(isolates, shards);
            println!(
                "{isolates:>8}  {:>16}  {root:>10.1}  {busiest:>19.1}",
                2 * isolates
            );
            assert!(root <= 2.0 * shards as f64 + 0.5, "{isolates}: root {root}");
            let even = 2.0 * isolates as f64 / shards as f64;
            assert!(busiest >= even, "{isolates}: {busiest}");
            // Random placement: a few isolates more than the even share (balls into bins).
            assert!(busiest <= 1.5 * even + 10.0, "{isolates}: {busiest}");
            assert!(busiest < 1_000.0, "{isolates}: {busiest}");
        }
    }

    #[test]
    fn the_purge_log_copy_is_refreshed_once_per_sync_and_never_goes_back() {
        let mut relay = Relay::default();
        // No copy: every read asks the root, and there is nothing to answer from.
        assert_eq!(relay.log_due(0, 1_000), Some(None));
        assert_eq!(relay.log_due(0, 1_000), Some(None));
        assert!(relay.read_log(None).is_none());
        let mut log = PurgeLog::default();
        log.purge(&tags(&["a"]).0);
        relay.log_refreshed(Some(log.clone()), 0);
        assert_eq!(relay.log_due(999, 1_000), None);
        assert_eq!(relay.read_log(None).map(|l| l.epoch()), Some(log.epoch()));
        assert_eq!(relay.read_log(Some(log.epoch())), None);
        // Due: the first read claims the refresh, the next answers from the copy.
        assert_eq!(relay.log_due(1_000, 1_000), Some(Some(log.epoch())));
        assert_eq!(relay.log_due(1_001, 1_000), None);
        // An older log (a reader raced a purge) is not taken, and a reader that already knows a
        // newer epoch than the copy is not sent the copy.
        relay.log_refreshed(Some(PurgeLog::default()), 1_002);
        assert_eq!(relay.read_log(None).map(|l| l.epoch()), Some(log.epoch()));
        assert_eq!(relay.read_log(Some(log.epoch() + 1)), None);
    }
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
    /// health record, a breaker never opens before any failure was reported, and every
    /// admission fraction is a fraction.
    #[test]
    fn transitions_keep_their_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let config = config();
        let mut state = ControlState::default();
        let mut now = 0u64;
        let mut epoch = 0;
        let mut failed_ever = false;
        for op in ops {
            match op {
                Op::Purge(n) => {
                    let (log, _) = state.purge(&tags(&[&format!("t{n}")]));
                    let log = log.expect("valid");
                    prop_assert!(log.epoch() > epoch);
                    epoch = log.epoch();
                }
                Op::Report { calls, failures } => {
                    failed_ever |= failures > 0;
                    let report = Report {
                        requests: u64::from(calls),
                        errors: u64::from(failures),
                        would_shed: 0,
                        breakers: [(A.to_owned(), Counts { calls, failures, slow: 0 })].into(),
                        ..Report::default()
                    };
                    let (status, _, _) = state.report(&report, &config, now);
                    prop_assert!((0.0..=1.0).contains(&status.fraction));
                    prop_assert!((0.0..=1.0).contains(&status.effective));
                    // (A report without failures can open it: it may bring the window that
                    // holds earlier failures up to `min_calls`.)
                    if !failed_ever {
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
