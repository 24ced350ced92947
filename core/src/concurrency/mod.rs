//! Adaptive concurrency limits: how many requests each origin may have in flight, learnt from
//! latency, and who gets the slots when there are not enough.
//!
//! The SLO burn-rate loop ([`crate::shedding`]) reacts over seconds to errors, after they happen:
//! under a surge the origin's queue grows until requests time out, and only then is load shed.
//! A concurrency limit acts on the first sign, before any error: latency above the no-load
//! latency means requests are queueing at the origin, and the limit stops adding to the queue.
//!
//! | concept | file |
//! |---|---|
//! | the limit of one origin, from RTT samples (AIMD on a no-load RTT) | [`limit`] |
//! | admission against it: in-flight count, per-priority wait queues | [`admit`] |
//! | one origin's limit split across isolates by demand | [`shares`] |
//!
//! The tests drive all three against a modelled origin (`sim.rs`, test-only): a closed loop for
//! the limit's convergence, and a fleet of isolates with open-loop arrivals for goodput and
//! latency under a 3× and 10× surge.

pub mod admit;
pub mod limit;
pub mod shares;

pub use admit::{Acquire, Admission, Measurement, Permit, QueueConfig, Ticket, Wait};
pub use limit::{AdaptiveLimit, LimitConfig, Sample};
pub use shares::{GlobalLimit, GlobalLimits, Published, aggregate, merge_limits, share};

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
