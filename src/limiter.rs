//! Rate limiting: the `RATE_LIMITER` Durable Object (one object per policy and principal, its
//! GCRA buckets in storage) and the isolate's side of it (one round trip per request, and a
//! bounded "denied until" memory that spares the object calls while a principal waits).
//!
//! The object's clock decides, so every isolate sees one bucket. Buckets live in Durable Object
//! storage and are written before an admission is answered (the output gate holds the answer
//! until the write is durable), so an evicted or restarted object never hands out a fresh bucket.

use crate::control;
use crate::exchange::now_ms;
use breakwater_core::ratelimit::{self, Bucket, Outcome, Quota};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::pin;
use std::time::Duration;
use worker::{
    Delay, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
    durable_object,
};

/// Principals this isolate remembers as denied (a bounded map, whatever the key count).
const DENIED_REMEMBERED: usize = 4096;
const BASE: &str = "https://rate-limiter.internal";

#[derive(Serialize, Deserialize)]
struct CheckRequest {
    quotas: Vec<Quota>,
    cost: u32,
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

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post || req.path() != "/check" {
            return Response::error("not found", 404);
        }
        let check: CheckRequest = req.json().await?;
        let mut all = control::load(&self.buckets, &self.state, BUCKETS_KEY, HashMap::new).await?;
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
        Response::from_json(&outcome)
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

/// Asks `object`'s bucket to admit `cost`, within `budget`. `Ok(None)`: the limiter did not
/// answer in time or failed (the caller applies the route's fail-open/closed rule).
pub async fn check(
    env: &Env,
    object: &str,
    quotas: &[Quota],
    cost: u32,
    budget: Duration,
) -> Result<Option<Outcome>> {
    let stub = env.durable_object("RATE_LIMITER")?.get_by_name(object)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(
        serde_json::to_string(&CheckRequest {
            quotas: quotas.to_vec(),
            cost,
        })
        .map_err(|e| worker::Error::RustError(e.to_string()))?
        .into(),
    ));
    let req = Request::new_with_init(&format!("{BASE}/check"), &init)?;
    let call = async {
        let mut response = stub.fetch_with_request(req).await?;
        response.json::<Outcome>().await
    };
    let outcome = match futures_util::future::select(pin!(call), pin!(Delay::from(budget))).await {
        futures_util::future::Either::Left((Ok(outcome), _)) => outcome,
        futures_util::future::Either::Left((Err(e), _)) => {
            worker::console_warn!("rate limiter {object}: {e}");
            return Ok(None);
        }
        futures_util::future::Either::Right(_) => {
            worker::console_warn!("rate limiter {object}: no answer within {budget:?}");
            return Ok(None);
        }
    };
    if let ratelimit::Verdict::Deny { retry_after_ms } = outcome.verdict {
        remember_denial(object, retry_after_ms);
    }
    Ok(Some(outcome))
}
