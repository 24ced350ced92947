//! Property tests of the GCRA (T-RL-01, T-RL-02): the cost admitted in any window is bounded, a
//! denial's wait is exact, a cost above the burst is never retryable, a peek never mutates, and
//! an idle spell restores exactly the burst, under arbitrary schedules including clock jumps in
//! both directions. Failures persist to `properties.regressions` beside this file (check it in).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::*;

const HOUR: u64 = 3_600_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

/// One to three quotas; bursts often tiny (where the edges are) and up to 10⁴; T from 1 µs to
/// 60 s, mostly fractional in ms.
fn quotas() -> impl Strategy<Value = Vec<Quota>> {
    let burst = prop_oneof![1u32..=10, 1u32..=10_000];
    prop::collection::vec((1u32..=1_000, 1u64..=60_000, burst), 1..=3).prop_map(|shapes| {
        shapes
            .into_iter()
            .enumerate()
            .map(|(i, (limit, period_ms, burst))| Quota {
                name: format!("q{i}"),
                limit,
                period_ms,
                burst,
            })
            .collect()
    })
}

/// The milliseconds a quota needs to refill `n` tokens, rounded up.
fn refill_ms(quota: &Quota, n: u32) -> u64 {
    (u64::from(n) * quota.period_ms).div_ceil(u64::from(quota.limit))
}

fn denied(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Deny { .. })
}

proptest! {
    #![proptest_config(config())]

    /// Each call is two random numbers: one picks the clock step, the other the cost.
    #[test]
    fn gcra_model(
        quotas in quotas(),
        start in prop_oneof![Just(0u64), 0u64..2_000_000_000_000],
        calls in prop::collection::vec((any::<u32>(), any::<u32>()), 1..64),
    ) {
        let min_burst = quotas.iter().map(|q| q.burst).min().unwrap_or(0);
        // Steps of up to about two of the slowest quota's intervals keep every quota busy.
        let step = quotas.iter().map(|q| refill_ms(q, 2)).max().unwrap_or(1) + 1;
        let mut buckets = vec![Bucket::default(); quotas.len()];
        let (mut now, mut latest) = (start, start);
        let mut admitted: Vec<(u64, u32)> = Vec::new();
        for (clock, size) in calls {
            now = match clock % 32 {
                0 => now.saturating_sub(HOUR),
                1 => now + HOUR,
                2..=5 => now.saturating_sub(u64::from(clock) % step),
                _ => now + u64::from(clock) % step,
            };
            latest = latest.max(now);
            let cost = match size % 8 {
                0 => 0,
                1 => min_burst + 1 + size % 3,
                2..=4 => 1,
                _ => 1 + size % min_burst,
            };
            let before = buckets.clone();
            let outcome = check(&quotas, &mut buckets, now, cost);
            // (c) Too costly exactly when the cost exceeds a burst, and nothing is charged.
            prop_assert_eq!(outcome.verdict == Verdict::TooCostly, cost > min_burst);
            // (d) A peek never mutates; nor does any refusal.
            if cost == 0 || outcome.verdict != Verdict::Allow {
                prop_assert_eq!(&buckets, &before);
            }
            for (status, quota) in outcome.quotas.iter().zip(&quotas) {
                prop_assert!(status.remaining <= quota.burst);
                prop_assert!(status.reset_ms <= refill_ms(quota, quota.burst) || now < latest);
            }
            match outcome.verdict {
                Verdict::Allow => admitted.push((now, cost)),
                Verdict::Deny { retry_after_ms: wait } => {
                    prop_assert!(wait > 0);
                    let worst = outcome.quotas.iter().filter_map(|s| s.retry_after_ms).max();
                    prop_assert_eq!(worst, Some(wait));
                    // (b) Denied at every moment before now + wait, admitted at now + wait and
                    // after the whole seconds of Retry-After.
                    let at = |t: u64| check(&quotas, &mut before.clone(), t, cost).verdict;
                    prop_assert!(denied(at(now + wait - 1)));
                    prop_assert!(denied(at(now + u64::from(size) % wait)));
                    prop_assert_eq!(at(now + wait), Verdict::Allow);
                    prop_assert_eq!(at(now + retry_after_secs(wait) * 1_000), Verdict::Allow);
                }
                Verdict::TooCostly => {}
            }
        }

        // (a) For every window [t, t + Δ] ms, the cost admitted by calls made at a `now` inside
        // it is at most burst + ⌊Δ / T⌋ = burst + ⌊Δ·limit / period_ms⌋, for every quota; windows
        // from one admitted call's time to another's are the tightest.
        admitted.sort_unstable();
        for quota in &quotas {
            for (i, &(from, _)) in admitted.iter().enumerate() {
                let mut total = 0;
                for &(to, cost) in &admitted[i..] {
                    total += u64::from(cost);
                    let delta = to - from;
                    let bound = u64::from(quota.burst) + delta * u64::from(quota.limit) / quota.period_ms;
                    prop_assert!(total <= bound, "{total} in [{from}, {to}] for {quota:?}");
                }
            }
        }

        // After an idle spell of (burst + 1)·T past the latest call, exactly the burst passes.
        let idle = quotas.iter().map(|q| refill_ms(q, q.burst + 1)).max().unwrap_or(0);
        let quiet = latest + idle;
        prop_assert_eq!(check(&quotas, &mut buckets, quiet, min_burst).verdict, Verdict::Allow);
        prop_assert!(denied(check(&quotas, &mut buckets, quiet, 1).verdict));
    }
}
