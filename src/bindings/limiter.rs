//! Rate limiting: the `RATE_LIMITER` Durable Object (one object per policy and principal, its
//! GCRA buckets in storage) and the isolate's side of it: one round trip per request on exact
//! routes, or on lease routes one per lease of several tokens, which the isolate then spends
//! without a round trip ([`breakwater_core::ratelimit::Lease`]); and a bounded "denied until"
//! memory that spares the object calls while a principal waits.
//!
//! The object's clock decides, so every isolate sees one bucket. Buckets live in Durable Object
//! storage and are written before an admission is answered (the output gate holds the answer
//! until the write is durable), so an evicted or restarted object never hands out a fresh bucket.

use super::durable::{self, Command, Incoming};
use crate::runtime::now_ms;
use breakwater_core::ratelimit::{self, Bucket, Grant, Lease, Outcome, Quota, RateEstimate};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

/// Principals this isolate remembers as denied, and leases it holds (bounded maps, whatever
/// the key count).
const DENIED_REMEMBERED: usize = 4096;
const LEASES_HELD: usize = 4096;
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

/// Admit one request of `cost` and lease up to `want - 1` more ([`ratelimit::grant`]).
#[derive(Serialize, Deserialize)]
pub struct AskLease {
    quotas: Vec<Quota>,
    cost: u32,
    want: u32,
}

impl Command for AskLease {
    const NAME: &'static str = "lease";
    type Reply = Grant;
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
        match incoming.name() {
            Check::NAME => {
                let check: Check = incoming.parse()?;
                let outcome = self
                    .charge(&check.quotas, |buckets, now| {
                        let outcome = ratelimit::check(&check.quotas, buckets, now, check.cost);
                        let charged =
                            matches!(outcome.verdict, ratelimit::Verdict::Allow) && check.cost > 0;
                        (outcome, charged)
                    })
                    .await?;
                durable::reply::<Check>(&outcome)
            }
            AskLease::NAME => {
                let ask: AskLease = incoming.parse()?;
                let grant = self
                    .charge(&ask.quotas, |buckets, now| {
                        let grant = ratelimit::grant(&ask.quotas, buckets, now, ask.cost, ask.want);
                        let charged = grant.tokens > 0 && ask.cost > 0;
                        (grant, charged)
                    })
                    .await?;
                durable::reply::<AskLease>(&grant)
            }
            _ => durable::unknown(&incoming),
        }
    }
}

impl RateLimiter {
    /// Runs `decide` on the buckets of `quotas` at the object's clock, and keeps what it charged
    /// (`decide` says whether it did).
    async fn charge<T>(
        &self,
        quotas: &[Quota],
        decide: impl FnOnce(&mut [Bucket], u64) -> (T, bool),
    ) -> Result<T> {
        let mut all = super::load(&self.buckets, &self.state, BUCKETS_KEY, HashMap::new).await?;
        let mut buckets: Vec<Bucket> = quotas
            .iter()
            .map(|q| all.get(&q.name).copied().unwrap_or_default())
            .collect();
        let (decided, charged) = decide(&mut buckets, now_ms() as u64);
        if charged {
            for (quota, bucket) in quotas.iter().zip(buckets) {
                all.insert(quota.name.clone(), bucket);
            }
        }
        // The memory copy first, with no await in between: the next request sees this charge
        // whatever order storage completions and new events arrive in.
        self.buckets.replace(Some(all.clone()));
        if charged {
            self.state.storage().put(BUCKETS_KEY, &all).await?;
        }
        Ok(decided)
    }
}

thread_local! {
    /// `(policy, principal)` → epoch ms until which the principal is known to be denied.
    static DENIED: RefCell<HashMap<String, f64>> = RefCell::new(HashMap::new());
    /// `(policy, principal)` → this isolate's lease on it and its recent request rate.
    static LEASES: RefCell<HashMap<String, Held>> = RefCell::new(HashMap::new());
}

/// What an isolate keeps per object on a lease route: its live leases (several when requests
/// asked at once; each one's tokens are spent, none overwritten), and its request rate.
#[derive(Default)]
struct Held {
    leases: Vec<Lease>,
    rate: RateEstimate,
    /// A lease ask is on its way to the object.
    asking: bool,
}

/// Marks an ask for `object`'s lease as on its way until dropped (answered, failed or the
/// request cancelled), so a lost ask never leaves the isolate charging per request.
struct Asking<'a>(&'a str);

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        LEASES.with_borrow_mut(|leases| {
            if let Some(held) = leases.get_mut(self.0) {
                held.asking = false;
            }
        });
    }
}

/// Leases kept per object; a further grant replaces the one with the fewest tokens left.
const LEASES_PER_OBJECT: usize = 4;

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
    ask(env, object, &check, budget, |outcome| outcome).await
}

/// Sends `command` to `object` within `budget`, and remembers a denial in the outcome `of` its
/// reply. `None`, logged: the object did not answer in time or failed.
async fn ask<C: Command>(
    env: &Env,
    object: &str,
    command: &C,
    budget: Duration,
    of: impl Fn(&C::Reply) -> &Outcome,
) -> Option<C::Reply> {
    match durable::call(env, BINDING, object, command, budget).await {
        Ok(reply) => {
            if let ratelimit::Verdict::Deny { retry_after_ms } = of(&reply).verdict {
                remember_denial(object, retry_after_ms);
            }
            Some(reply)
        }
        Err(e) => {
            worker::console_warn!("rate limiter {object}: {e}");
            None
        }
    }
}

/// Admits a request of `cost` on a lease route: from this isolate's lease on `object` when it
/// holds a live one (no round trip), else by asking the object for a new lease sized to the
/// isolate's recent rate ([`ratelimit::lease_size`]). One ask at a time per object: requests
/// that come while it is on its way are charged as in exact mode ([`check`]), so a burst on a
/// cold isolate does not send a lease ask each and set most of the burst aside in leases it
/// will not spend. `None`: the limiter did not answer in time or failed, as for [`check`].
pub async fn check_leased(
    env: &Env,
    object: &str,
    quotas: &[Quota],
    cost: u32,
    budget: Duration,
) -> Option<Outcome> {
    let now = now_ms() as u64;
    let taken = LEASES.with_borrow_mut(|leases| {
        if leases.len() >= LEASES_HELD && !leases.contains_key(object) {
            leases.retain(|_, held| held.leases.iter().any(|l| l.is_live(now)));
            if leases.len() >= LEASES_HELD {
                leases.clear();
            }
        }
        let held = leases.entry(object.to_owned()).or_default();
        held.rate.observe(now);
        held.leases.retain(|lease| lease.is_live(now));
        let lease = held
            .leases
            .iter_mut()
            .find_map(|l| l.take(now).then_some(l));
        match lease {
            Some(lease) => Ok(lease.outcome()),
            None if held.asking => Err(None),
            None => {
                held.asking = true;
                Err(Some(held.rate.per_second(now)))
            }
        }
    });
    let rate = match taken {
        Ok(outcome) => return Some(outcome),
        Err(None) => return check(env, object, quotas, cost, budget).await,
        Err(Some(rate)) => rate,
    };
    let _asking = Asking(object);
    let lease_ask = AskLease {
        quotas: quotas.to_vec(),
        cost,
        want: ratelimit::lease_size(quotas, cost, rate),
    };
    // The lease runs from when it was asked for, not answered: its tokens were charged to the
    // object's clock before the answer came back.
    let grant = ask(env, object, &lease_ask, budget, |grant| &grant.outcome).await?;
    if grant.tokens == 0 {
        return Some(grant.outcome);
    }
    let lease = Lease::new(grant, cost, now);
    let outcome = lease.outcome();
    LEASES.with_borrow_mut(|leases| {
        let Some(held) = leases.get_mut(object) else {
            return;
        };
        if held.leases.len() < LEASES_PER_OBJECT {
            held.leases.push(lease);
        } else if let Some(fewest) = held.leases.iter_mut().min_by_key(|l| l.tokens_left()) {
            *fewest = lease;
        }
    });
    Some(outcome)
}
