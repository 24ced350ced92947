//! Rate limiting: the `RATE_LIMITER` Durable Object (one object per policy and principal, its
//! GCRA buckets in storage) and the isolate's side of it (one round trip per request, and a
//! bounded "denied until" memory that spares the object calls while a principal waits).
//!
//! The object's clock decides, so every isolate sees one bucket. Buckets live in Durable Object
//! storage and are written before an admission is answered (the output gate holds the answer
//! until the write is durable), so an evicted or restarted object never hands out a fresh bucket.

use super::durable::{self, Command, Incoming};
use crate::runtime::now_ms;
use breakwater_core::ratelimit::{self, Bucket, Outcome, Quota};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

/// Principals this isolate remembers as denied (a bounded map, whatever the key count).
const DENIED_REMEMBERED: usize = 4096;
const BINDING: &str = "RATE_LIMITER";

/// Charge `cost` to the buckets of `quotas` (a zero cost only reads them).
#[derive(Serialize, Deserialize)]
pub struct Check {
    quotas: Vec<Quota>,
    cost: u32,
}

impl Command for Check {
    const NAME: &'static str = "check";
    type Reply = Outcome;
}

#[durable_object]
pub struct RateLimiter {
    state: State,
    /// Buckets by quota name, read from storage once per object lifetime.
    buckets: RefCell<Option<HashMap<String, Bucket>>>,
}

const BUCKETS_KEY: &str = "buckets";

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            buckets: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let incoming = Incoming::read(req).await?;
        if incoming.name() != Check::NAME {
            return durable::unknown(&incoming);
        }
        let check: Check = incoming.parse()?;
        let mut all = super::load(&self.buckets, &self.state, BUCKETS_KEY, HashMap::new).await?;
        let mut buckets: Vec<Bucket> = check
            .quotas
            .iter()
            .map(|q| all.get(&q.name).copied().unwrap_or_default())
            .collect();
        let outcome = ratelimit::check(&check.quotas, &mut buckets, now_ms() as u64, check.cost);
        let charged = matches!(outcome.verdict, ratelimit::Verdict::Allow) && check.cost > 0;
        if charged {
            for (quota, bucket) in check.quotas.iter().zip(buckets) {
                all.insert(quota.name.clone(), bucket);
            }
        }
        // The memory copy first, with no await in between: the next request sees this charge
        // whatever order storage completions and new events arrive in.
        self.buckets.replace(Some(all.clone()));
        if charged {
            self.state.storage().put(BUCKETS_KEY, &all).await?;
        }
        durable::reply::<Check>(&outcome)
    }
}

thread_local! {
    /// `(policy, principal)` → epoch ms until which the principal is known to be denied.
    static DENIED: RefCell<HashMap<String, f64>> = RefCell::new(HashMap::new());
}

/// Milliseconds `object` must still wait, if this isolate knows it is denied.
pub fn known_denial(object: &str) -> Option<u64> {
    let now = now_ms();
    DENIED.with_borrow(|d| {
        d.get(object)
            .filter(|&&until| until > now)
            .map(|until| (until - now).ceil() as u64)
    })
}

fn remember_denial(object: &str, retry_after_ms: u64) {
    let now = now_ms();
    DENIED.with_borrow_mut(|denied| {
        if denied.len() >= DENIED_REMEMBERED {
            denied.retain(|_, until| *until > now);
            if denied.len() >= DENIED_REMEMBERED {
                denied.clear();
            }
        }
        denied.insert(object.to_owned(), now + retry_after_ms as f64);
    });
}

/// Asks `object`'s bucket to admit `cost`, within `budget`. `None`: the limiter did not answer
/// in time or failed (the caller applies the route's fail-open/closed rule).
pub async fn check(
    env: &Env,
    object: &str,
    quotas: &[Quota],
    cost: u32,
    budget: Duration,
) -> Option<Outcome> {
    let check = Check {
        quotas: quotas.to_vec(),
        cost,
    };
    let outcome = match durable::call(env, BINDING, object, &check, budget).await {
        Ok(outcome) => outcome,
        Err(e) => {
            worker::console_warn!("rate limiter {object}: {e}");
            return None;
        }
    };
    if let ratelimit::Verdict::Deny { retry_after_ms } = outcome.verdict {
        remember_denial(object, retry_after_ms);
    }
    Some(outcome)
}
