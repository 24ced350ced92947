//! The cron trigger's warm set: which stored responses it refreshes ahead of their expiry.

use crate::cache::date::Timestamp;
use crate::cache::entry::Entry;
use crate::cache::options::CacheOptions;
use crate::policy::{Mode, RoutePolicy};

/// The cron trigger refreshes a warm path whose freshness ends within this many seconds: the
/// cron period (1 minute in `wrangler.toml`) plus a minute of slack, so a warm path never goes
/// stale between two runs.
pub const WARM_AHEAD_SECS: u64 = 120;

/// Whether the cron trigger may warm a path under `route` at all: not on a `bypass` route (the
/// adapter logs and skips such a path, as it does one no route covers).
pub fn warms(route: &RoutePolicy) -> bool {
    route.mode != Mode::Bypass
}

/// The cron trigger's view of a warm path's stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warm {
    /// Nothing stored (or it was purged): fetch it.
    Missing,
    /// Fresh for at most [`WARM_AHEAD_SECS`] more: refresh it, conditionally.
    ExpiringSoon,
    /// Fresh for longer: leave it until a later run.
    Fresh,
}

impl Warm {
    /// A stable label for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::ExpiringSoon => "expiring-soon",
            Self::Fresh => "fresh",
        }
    }

    /// True when the path should be fetched now.
    pub fn needs_refresh(&self) -> bool {
        *self != Self::Fresh
    }
}

/// Whether a warm path whose tiers hold `found` needs a refresh at `now`.
pub fn warm(found: Option<&Entry>, now: Timestamp, opts: &CacheOptions<'_>) -> Warm {
    let Some(entry) = found else {
        return Warm::Missing;
    };
    let fresh_left = entry
        .lifetime(opts)
        .seconds
        .saturating_sub(entry.current_age(now));
    if fresh_left > WARM_AHEAD_SECS {
        Warm::Fresh
    } else {
        Warm::ExpiringSoon
    }
}
