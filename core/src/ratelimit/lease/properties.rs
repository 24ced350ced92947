//! Property tests of token leases: up to eight isolates share one principal's buckets, each
//! following the lease protocol (take from its lease while it is live, else ask the object for a
//! new one sized by its recent rate), against exact mode (one `check` per request) over the same
//! arrivals. Failures persist to `properties.regressions` beside this file (check it in).
//!
//! (a) Bound: in every window of Δ ms, each quota admits at most `burst + ⌊Δ/T⌋` of cost, in
//! lease mode and in exact mode. And lease mode never admits more than exact mode up to any
//! arrival: with one cost per request, greedy GCRA admits the most any schedule within that bound
//! can (if an in-bound schedule first differs by skipping a request greedy admits, admitting that
//! one and skipping its own next keeps it in bound; and it cannot admit one greedy refuses, since a
//! refusal means some window ending there is full). The converse fails: lease mode refuses what
//! exact mode admits while tokens sit unused in another isolate or are set aside by a lease's
//! dating, so nothing is asserted that way.
//! (b) Liveness: one isolate sending steadily at no more than half of every quota's rate, indeed
//! at no more than the rate itself, is never refused. (c) A grant of 0 charges nothing and is the single request's refusal; a grant is
//! never more than asked for nor than a quarter of the burst, charges all its tokens at once,
//! and leaves no room for one more held token. (d) Routes with several quotas (10/s burst 20 and
//! 100/h) keep every one.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::*;
use crate::ratelimit::Bucket;
use crate::ratelimit::test_support::quota;

const T0: u64 = 1_700_000_000_000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

/// One or two quotas; T from 2 ms to an hour; bursts often below the leasing threshold (exact
/// mode) and up to 200 (leases of up to 50).
fn quotas() -> impl Strategy<Value = Vec<Quota>> {
    let period = prop_oneof![200u64..=5_000, Just(1_000), Just(60_000), Just(3_600_000)];
    let burst = prop_oneof![1u32..=10, 8u32..=200];
    prop::collection::vec((1u32..=100, period, burst), 1..=2).prop_map(|shapes| {
        shapes
            .into_iter()
            .enumerate()
            .map(|(i, (limit, period_ms, burst))| quota(&format!("q{i}"), limit, period_ms, burst))
            .collect()
    })
}

/// Each arrival is an isolate, how many requests it sends at once (mostly one, sometimes a
/// burst), and a random number that picks when.
fn arrivals() -> impl Strategy<Value = Vec<(usize, u32, When)>> {
    let count = prop_oneof![8 => Just(1u32), 1 => 1u32..=40];
    prop::collection::vec(
        (0usize..8, count, any::<u32>().prop_map(When::Pick)),
        1..=100,
    )
}

/// When an arrival comes: at a given time, or picked by a random number from the fleet's state.
#[derive(Debug, Clone, Copy)]
enum When {
    At(u64),
    Pick(u32),
}

/// T of the fastest quota in whole ms, at least 1.
fn fastest_interval(quotas: &[Quota]) -> u64 {
    quotas
        .iter()
        .map(|q| q.period_ms.div_ceil(u64::from(q.limit)))
        .min()
        .unwrap_or(1)
        .max(1)
}

/// The next arrival time after `now`: often simultaneous, mostly around the fastest quota's rate
/// (so buckets fill and drain), some within a lease's life or slow enough to refill, and often
/// the last moment of a lease that still holds tokens. That is the adversary's best time: the
/// bucket has refilled for as long as the lease can live, and its holder can still spend.
fn next_time(quotas: &[Quota], fleet: &[Isolate], now: u64, pick: u32) -> u64 {
    let t = fastest_interval(quotas);
    let life = lease_life_ms(quotas).max(t);
    let r = u64::from(pick / 16);
    match pick % 16 {
        0..=3 => now,
        4..=7 => now + r % (2 * t + 1),
        8..=9 => now + r % (8 * t + 1),
        10..=11 => now + r % (life + 1),
        _ => fleet
            .iter()
            .filter_map(|i| i.lease.as_ref())
            .filter(|l| l.is_live(now))
            .map(|l| l.expires_at_ms() - 1 - r % 2)
            .filter(|&last| last >= now)
            .max()
            .unwrap_or(now),
    }
}

#[derive(Default)]
struct Isolate {
    lease: Option<Lease>,
    rate: RateEstimate,
}

/// What one run admitted, by arrival time, in each mode.
struct Run {
    lease: Vec<u64>,
    exact: Vec<u64>,
    lease_refused: usize,
    /// Lease requests sent to the object, and requests admitted from a lease without one.
    asks: usize,
    local: usize,
}

/// Runs `arrivals` through both modes, checking every grant (c) and that lease mode is never
/// ahead of exact mode (a).
fn simulate(
    quotas: &[Quota],
    cost: u32,
    arrivals: &[(usize, u32, When)],
    isolates: usize,
) -> Result<Run, TestCaseError> {
    let mut object = vec![Bucket::default(); quotas.len()];
    let mut exact = object.clone();
    let mut fleet: Vec<Isolate> = (0..isolates).map(|_| Isolate::default()).collect();
    let mut run = Run {
        lease: Vec::new(),
        exact: Vec::new(),
        lease_refused: 0,
        asks: 0,
        local: 0,
    };
    let mut now = T0;
    for &(i, count, when) in arrivals {
        now = match when {
            When::At(at) => at,
            When::Pick(pick) => next_time(quotas, &fleet, now, pick),
        };
        let isolate = &mut fleet[i % isolates];
        for _ in 0..count {
            isolate.rate.observe(now);
            let local = isolate.lease.as_mut().is_some_and(|l| l.take(now));
            run.local += usize::from(local);
            let admitted = local || {
                let want = lease_size(quotas, cost, isolate.rate.per_second(now));
                let before = object.clone();
                let granted = grant(quotas, &mut object, now, cost, want);
                check_grant(quotas, &before, &object, now, cost, want, &granted)?;
                run.asks += 1;
                let admitted = granted.tokens > 0;
                isolate.lease = Some(Lease::new(granted, cost, now));
                admitted
            };
            if admitted {
                run.lease.push(now);
            } else {
                run.lease_refused += 1;
            }
            if check(quotas, &mut exact, now, cost).verdict == Verdict::Allow {
                run.exact.push(now);
            }
            prop_assert!(
                run.lease.len() <= run.exact.len(),
                "lease mode ahead of exact mode at {now}"
            );
        }
    }
    Ok(run)
}

/// (c) One grant against the buckets it found (`before`) and left (`after`).
fn check_grant(
    quotas: &[Quota],
    before: &[Bucket],
    after: &[Bucket],
    now: u64,
    cost: u32,
    want: u32,
    granted: &Grant,
) -> Result<(), TestCaseError> {
    let tokens = granted.tokens;
    let cap = want.max(1).min(max_tokens(quotas, cost));
    prop_assert!(tokens <= cap, "{tokens} > {cap}");
    let single = check(quotas, &mut before.to_vec(), now, cost);
    prop_assert_eq!(tokens > 0, single.verdict == Verdict::Allow);
    prop_assert_eq!(tokens > 0, granted.outcome.verdict == Verdict::Allow);
    prop_assert_eq!(granted.life_ms, lease_life_ms(quotas));
    if tokens == 0 {
        prop_assert_eq!(after, before, "a refused lease charged");
        prop_assert_eq!(&granted.outcome, &single);
        return Ok(());
    }
    // The whole lease is spent in the object now: every quota has at least tokens × cost less.
    let was = check(quotas, &mut before.to_vec(), now, 0);
    let is = check(quotas, &mut after.to_vec(), now, 0);
    prop_assert_eq!(&granted.outcome.quotas, &is.quotas);
    for (was, is) in was.quotas.iter().zip(&is.quotas) {
        prop_assert!(
            u64::from(was.remaining) >= u64::from(is.remaining) + u64::from(tokens * cost),
            "{} charged less than {tokens} × {cost}",
            was.name
        );
    }
    // It held all it could: one more held token would not fit its dated slots.
    let expiry = now + granted.life_ms;
    let dated: Option<Vec<Quota>> = quotas
        .iter()
        .map(|q| dated(q, expiry, granted.life_ms))
        .collect();
    if tokens < cap
        && cost > 0
        && let Some(dated) = dated
    {
        let more = check(&dated, &mut after.to_vec(), expiry, cost);
        prop_assert!(
            more.verdict != Verdict::Allow,
            "{tokens} of {cap}: room for more"
        );
    }
    Ok(())
}

/// (a) Every window from one admission to a later one holds at most `burst + ⌊Δ/T⌋` of cost.
fn bounded(quota: &Quota, cost: u32, admitted: &[u64]) -> Result<(), TestCaseError> {
    let cost = u64::from(cost);
    for (i, &from) in admitted.iter().enumerate() {
        let rest = (admitted.len() - i) as u64 * cost;
        let mut total = 0;
        for &to in &admitted[i..] {
            total += cost;
            let bound =
                u64::from(quota.burst) + (to - from) * u64::from(quota.limit) / quota.period_ms;
            prop_assert!(total <= bound, "{total} in [{from}, {to}] for {quota:?}");
            if bound >= rest {
                break;
            }
        }
    }
    Ok(())
}

fn all_bounded(quotas: &[Quota], cost: u32, run: &Run) -> Result<(), TestCaseError> {
    for quota in quotas {
        bounded(quota, cost, &run.lease)?;
        bounded(quota, cost, &run.exact)?;
    }
    Ok(())
}

/// A cost every quota can ever admit: mostly 1.
fn cost_for(quotas: &[Quota], pick: u32) -> u32 {
    let smallest = quotas.iter().map(|q| q.burst).min().unwrap_or(1);
    if pick.is_multiple_of(4) {
        1 + pick / 4 % smallest.min(3)
    } else {
        1
    }
}

proptest! {
    #![proptest_config(config(400))]

    /// (a) and (c), over random quotas, costs, fleets and arrivals.
    #[test]
    fn leases_admit_no_more_than_exact_mode(
        quotas in quotas(),
        isolates in 1usize..=8,
        pick in any::<u32>(),
        raw in arrivals(),
    ) {
        let cost = cost_for(&quotas, pick);
        let run = simulate(&quotas, cost, &raw, isolates)?;
        all_bounded(&quotas, cost, &run)?;
    }

    /// (d) The route of the brief: 10/s with a burst of 20, and 100/h; the hour's burst runs out
    /// within the run, so both quotas refuse.
    #[test]
    fn leases_keep_every_quota_of_a_route(
        isolates in 1usize..=8,
        raw in arrivals(),
    ) {
        let quotas = [quota("per-second", 10, 1_000, 20), quota("per-hour", 100, 3_600_000, 100)];
        let run = simulate(&quotas, 1, &raw, isolates)?;
        all_bounded(&quotas, 1, &run)?;
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// (b) A steady isolate at half of every quota's rate or less is never refused, however its
    /// leases are sized and wherever its clock starts. It holds at the full rate too, and that is
    /// what is checked: every grant leaves the TATs within `burst·T` of its time, so the next
    /// request that asks, at least `cost·T` later, always fits, whatever the lease held.
    #[test]
    fn a_steady_isolate_within_the_limit_is_never_refused(
        quotas in quotas(),
        pick in any::<u32>(),
        slack in prop_oneof![Just(0u64), 0u64..=1_000],
        start in 0u64..=T0,
        count in 1usize..=200,
    ) {
        let cost = cost_for(&quotas, pick);
        // The full rate: at least cost·T between requests, rounded up.
        let interval = quotas
            .iter()
            .map(|q| (u64::from(cost) * q.period_ms).div_ceil(u64::from(q.limit)))
            .max()
            .unwrap_or(1)
            + slack;
        let arrivals: Vec<_> = (0..count as u64).map(|n| (0, 1, When::At(start + n * interval))).collect();
        let run = simulate(&quotas, cost, &arrivals, 1)?;
        prop_assert_eq!(run.lease_refused, 0, "{:?}", quotas);
        prop_assert_eq!(run.exact.len(), count);
        all_bounded(&quotas, cost, &run)?;
    }
}
