//! An isolate's recent request rate for one (policy, principal), to size its leases.
//!
//! A sliding count over two fixed windows: the requests of the current window, plus those of the
//! previous one weighted by how much of it still lies within the last window's length. Three
//! numbers whatever the rate, and exact for a steady rate; a burst is forgotten within two
//! windows, which is all sizing needs (a lease only lives [`WINDOW_MS`]).

use super::LEASE_MS;

/// The window: one lease life, so the estimate covers what the last lease would have seen.
const WINDOW_MS: u64 = LEASE_MS;

/// Requests per second over about the last lease life ([`LEASE_MS`]). The default has seen
/// nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateEstimate {
    /// Where the current window began.
    start_ms: u64,
    current: u32,
    previous: u32,
}

impl RateEstimate {
    /// Counts a request at `now_ms` (before sizing the lease it may ask for).
    pub fn observe(&mut self, now_ms: u64) {
        *self = self.at(now_ms);
        self.current = self.current.saturating_add(1);
    }

    /// The estimated rate at `now_ms`, in requests per second.
    pub fn per_second(&self, now_ms: u64) -> f64 {
        let at = self.at(now_ms);
        let into = now_ms.saturating_sub(at.start_ms).min(WINDOW_MS);
        let left = (WINDOW_MS - into) as f64 / WINDOW_MS as f64;
        let count = f64::from(at.previous) * left + f64::from(at.current);
        count * 1_000.0 / WINDOW_MS as f64
    }

    /// The counts as they stand at `now_ms`: windows rolled forward. A clock that went back
    /// counts into the current window, which can only overstate the rate briefly.
    fn at(&self, now_ms: u64) -> Self {
        let since = now_ms.saturating_sub(self.start_ms);
        if since < WINDOW_MS {
            *self
        } else if since < 2 * WINDOW_MS {
            Self {
                start_ms: self.start_ms + WINDOW_MS,
                current: 0,
                previous: self.current,
            }
        } else {
            // Idle for a whole window: nothing recent to weigh, and the next one starts now.
            Self {
                start_ms: now_ms,
                current: 0,
                previous: 0,
            }
        }
    }
}
