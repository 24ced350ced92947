//! When a failed delivery is tried again, and when it is given up: pure functions of the attempt
//! number, the time and a random number, so they are tested without a clock or a database.
//!
//! Exponential backoff with full jitter: after attempt `n` the next try waits a uniformly random
//! delay in `[0, min(cap, base * 2^(n-1))]`. Spreading retries over the whole window keeps a
//! consumer that recovers from an outage from being hit by every failed message at once.

use std::num::NonZeroU32;
use std::time::Duration;

/// The delay window after each failed attempt: it doubles from `base` up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
}

impl Backoff {
    /// A window of `base` after the first failure, doubling to at most `cap` (at least `base`).
    pub fn new(base: Duration, cap: Duration) -> Self {
        let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Self {
            base_ms,
            cap_ms: cap_ms.max(base_ms),
        }
    }

    /// The longest wait after failed attempt `attempt` (1-based): `min(cap, base * 2^(attempt-1))`,
    /// never overflowing however large `attempt` grows.
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1);
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// The wait after failed attempt `attempt`: `random` mapped uniformly (up to a negligible
    /// modulo bias) onto `[0, ceiling_ms(attempt)]`.
    pub fn delay_ms(&self, attempt: u32, random: u64) -> u64 {
        match self.ceiling_ms(attempt).checked_add(1) {
            Some(span) => random % span,
            None => random,
        }
    }
}

/// What happens to a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again, not before this time (Unix milliseconds).
    RetryAt(i64),
    /// That was the last attempt allowed: move it to the dead letters.
    DeadLetter,
}

impl AfterFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetryAt(_) => "retry",
            Self::DeadLetter => "dead-letter",
        }
    }
}

/// Backoff between attempts and how many attempts a message gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    pub max_attempts: NonZeroU32,
}

impl RetryPolicy {
    /// The decision after attempt `attempt` (1-based) failed at `now_ms`: the `max_attempts`-th
    /// failure (or any later one) dead-letters, earlier ones retry after a jittered delay.
    pub fn after_failure(&self, attempt: u32, now_ms: i64, random: u64) -> AfterFailure {
        if attempt >= self.max_attempts.get() {
            return AfterFailure::DeadLetter;
        }
        let delay = i64::try_from(self.backoff.delay_ms(attempt, random)).unwrap_or(i64::MAX);
        AfterFailure::RetryAt(now_ms.saturating_add(delay))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    use super::*;

    fn backoff(base_ms: u64, cap_ms: u64) -> Backoff {
        Backoff::new(
            Duration::from_millis(base_ms),
            Duration::from_millis(cap_ms),
        )
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            backoff: backoff(1_000, 60_000),
            max_attempts: NonZeroU32::new(max_attempts).unwrap(),
        }
    }

    #[test]
    fn the_window_doubles_from_the_base_up_to_the_cap() {
        let b = backoff(1_000, 10_000);
        let ceilings: Vec<_> = (1..=6).map(|n| b.ceiling_ms(n)).collect();
        assert_eq!(ceilings, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(b.ceiling_ms(0), 1_000, "attempt 0 is treated as the first");
        assert_eq!(b.ceiling_ms(u32::MAX), 10_000);
        assert_eq!(
            backoff(5, 1).ceiling_ms(1),
            5,
            "a cap below the base is the base"
        );
    }

    #[test]
    fn full_jitter_reaches_both_ends_of_the_window() {
        let b = backoff(1_000, 10_000);
        assert_eq!(b.delay_ms(3, 0), 0);
        assert_eq!(b.delay_ms(3, 4_000), 4_000);
        assert_eq!(b.delay_ms(3, 4_001), 0);
        let huge = backoff(u64::MAX, u64::MAX);
        assert_eq!(huge.delay_ms(1, u64::MAX), u64::MAX);
    }

    #[test]
    fn the_last_allowed_attempt_dead_letters() {
        let p = policy(3);
        assert_eq!(
            p.after_failure(1, 10_000, 500),
            AfterFailure::RetryAt(10_500)
        );
        assert!(matches!(p.after_failure(2, 0, 0), AfterFailure::RetryAt(0)));
        assert_eq!(p.after_failure(3, 0, 0), AfterFailure::DeadLetter);
        assert_eq!(p.after_failure(4, 0, 0), AfterFailure::DeadLetter);
        assert_eq!(policy(1).after_failure(1, 0, 0), AfterFailure::DeadLetter);
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 10_000,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Every delay lies in the window, the window never shrinks as attempts grow and never
        /// exceeds the cap, and a retry is never scheduled in the past.
        #[test]
        fn delays_stay_within_bounds(
            base_ms in 0u64..=u64::MAX / 2,
            cap_ms in any::<u64>(),
            attempt in any::<u32>(),
            random in any::<u64>(),
            now_ms in any::<i64>(),
            max_attempts in 1u32..=64,
        ) {
            let b = backoff(base_ms, cap_ms);
            let ceiling = b.ceiling_ms(attempt);
            prop_assert!(ceiling <= cap_ms.max(base_ms));
            prop_assert!(ceiling >= base_ms);
            prop_assert!(b.ceiling_ms(attempt.saturating_add(1)) >= ceiling);
            prop_assert!(b.delay_ms(attempt, random) <= ceiling);

            let p = RetryPolicy { backoff: b, max_attempts: NonZeroU32::new(max_attempts).unwrap() };
            match p.after_failure(attempt, now_ms, random) {
                AfterFailure::DeadLetter => prop_assert!(attempt >= max_attempts),
                AfterFailure::RetryAt(at) => {
                    prop_assert!(attempt < max_attempts);
                    prop_assert!(at >= now_ms);
                    let delay = i64::try_from(ceiling).unwrap_or(i64::MAX);
                    prop_assert!(at <= now_ms.saturating_add(delay));
                }
            }
        }
    }
}
