//! How long a message waits before its next delivery: exponential backoff with "equal jitter".
//!
//! After the `n`th failed delivery the ceiling is `min(max, base · 2^(n-1))` seconds and the
//! delay is drawn uniformly from its upper half, `[⌈ceiling/2⌉, ceiling]`. The doubling spaces
//! retries out during a long outage; the jitter spreads the messages of one failed batch so they
//! do not all come back in one burst; keeping the lower half out means a retry never comes back
//! at once (`delaySeconds` is whole seconds, so full jitter would often round to 0).

/// The longest delay a queue accepts for a retry (`delaySeconds`, 12 hours).
pub const MAX_DELAY_SECONDS: u32 = 43_200;

/// Seconds to wait after delivery `attempt` (1 for the first) failed. `random` is any 64 random
/// bits. `base` ≥ 1 and `max` ≥ `base` (the config guarantees both); the result is in
/// `1..=max.min(MAX_DELAY_SECONDS)`.
pub fn backoff(attempt: u32, base: u32, max: u32, random: u64) -> u32 {
    let ceiling = ceiling(attempt, base, max);
    let spread = ceiling / 2;
    let below = (random % (u64::from(spread) + 1)) as u32;
    ceiling - below
}

/// `min(max, base · 2^(attempt-1))`, at least 1 and at most [`MAX_DELAY_SECONDS`].
pub(crate) fn ceiling(attempt: u32, base: u32, max: u32) -> u32 {
    let doublings = attempt.saturating_sub(1).min(32);
    let grown = u64::from(base.max(1)) << doublings;
    grown
        .min(u64::from(max.max(1)))
        .min(u64::from(MAX_DELAY_SECONDS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let ceilings: Vec<u32> = (1..=8).map(|n| ceiling(n, 2, 60)).collect();
        assert_eq!(ceilings, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(ceiling(0, 2, 60), 2);
        assert_eq!(ceiling(u32::MAX, 2, 60), 60);
        assert_eq!(ceiling(40, u32::MAX, u32::MAX), MAX_DELAY_SECONDS);
    }

    #[test]
    fn the_delay_is_in_the_upper_half_of_the_ceiling() {
        assert_eq!(backoff(1, 1, 1, 0), 1);
        assert_eq!(backoff(1, 1, 1, u64::MAX), 1);
        // ceiling 8: 4..=8, every value reachable.
        let mut seen: Vec<u32> = (0..64).map(|r| backoff(3, 2, 60, r)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, [4, 5, 6, 7, 8]);
    }
}
