//! What the rate-limit tests share: building quotas and draining buckets at one instant.

use super::{Bucket, Quota, Verdict, check};

pub fn quota(name: &str, limit: u32, period_ms: u64, burst: u32) -> Quota {
    Quota {
        name: name.into(),
        limit,
        period_ms,
        burst,
    }
}

/// Unit-cost requests `check` admits at the same instant until the first denial.
pub fn admit_all(quotas: &[Quota], buckets: &mut [Bucket], now: u64) -> u32 {
    let mut admitted = 0;
    while check(quotas, buckets, now, 1).verdict == Verdict::Allow {
        admitted += 1;
        assert!(admitted <= 20_000, "a frozen clock admitted without end");
    }
    admitted
}
