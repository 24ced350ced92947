//! The wall clock, read in one place and handed to the code that decides things as a plain
//! number (Unix time), so that tests can pass any time they like.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time now (zero if the clock is before 1970).
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// [`unix_now`] in milliseconds, as the tables store times.
pub fn unix_ms() -> i64 {
    i64::try_from(unix_now().as_millis()).unwrap_or(i64::MAX)
}
