//! What the edge takes from the Workers runtime that core never may: the clock, randomness, and
//! a race against a timer. Every other module reads time and random values only through here.

use futures_util::future::{Either, select};
use std::future::Future;
use std::pin::pin;
use std::time::Duration;
use worker::Delay;

/// Milliseconds since the epoch, from the JS clock. On Workers it only advances across I/O,
/// which is exactly the granularity Server-Timing can observe.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// [`now_ms`] as whole milliseconds (the clock is never before the epoch).
pub fn now_millis() -> u64 {
    now_ms() as u64
}

/// Random bytes from the runtime's CSPRNG. It cannot fail on Workers; if it ever did, an
/// all-zero id is still handled (trace ids are made non-zero), so this never panics.
pub fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0; N];
    let _ = getrandom::fill(&mut buf);
    buf
}

/// A random `u64` (jitter, sampling).
pub fn random_u64() -> u64 {
    u64::from_le_bytes(random())
}

/// `future`'s output, or `None` if it takes longer than `limit`. The one race against a timer
/// on the edge: origin calls, Durable Object calls and queue sends all go through it.
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    match select(pin!(future), pin!(Delay::from(limit))).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}
