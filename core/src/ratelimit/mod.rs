//! Rate limiting: the GCRA decision, the `RateLimit` headers that report it, and the admission
//! policy (`[vars.ADMISSION]`) that says which quotas guard which routes.
//!
//! The limiter Durable Object owns one [`Bucket`] per quota of a principal and, in one turn, loads
//! them, calls [`check`] and stores them back (STYLE rule 3); everything here is pure.

mod admission;
mod gcra;
mod headers;
mod lease;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_support;

pub use admission::{AdmissionError, AdmissionPolicy, Mode, Priority, RouteAdmission};
pub use gcra::{Bucket, MAX_PERIOD_MS, Outcome, Quota, QuotaStatus, Verdict, check};
pub use headers::{policy_header, ratelimit_header, retry_after_secs};
pub use lease::{
    Grant, LEASE_MS, Lease, MIN_LEASE_MS, RateEstimate, grant, lease_life_ms, lease_size,
};
