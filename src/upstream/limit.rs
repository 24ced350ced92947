//! The adaptive concurrency limit in front of each origin, in this isolate: core's [`Admission`]
//! (a latency-driven limit on requests in flight, short wait queues by priority) in a
//! `thread_local!`, one per origin URL, and the waiting a queued request does.
//!
//! A request is granted a [`Slot`] before it is sent, waits for one briefly (about one no-load
//! round trip, so what is admitted stays fast), or is refused at once with
//! [`EdgeError::OriginAtCapacity`] (`503` problem+json with `Retry-After`). The slot's release
//! reports the round trip to the limit: an answer is a sample of the origin's latency; a
//! timeout, no answer, or the origin's own overload refusal cuts the limit.
//!
//! Each report to `CONTROL` carries the isolate's measurements, and the fleet's limit it brings
//! back caps this isolate's at its share ([`report`]).
//!
//! A waiter polls its ticket on its own timer, as single-flight followers do: a wake-up fired
//! from another request's completion would resume it inside that request's context, where
//! workerd refuses its I/O.

use crate::bindings::control::signals;
use crate::error::EdgeError;
use crate::runtime::now_millis;
use breakwater_core::concurrency::{
    Acquire, Admission, GlobalLimit, GlobalLimits, Permit, Sample, Ticket, Wait,
};
use breakwater_core::config::ConcurrencyConfig;
use breakwater_core::ratelimit::Priority;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use worker::{Delay, Env};

/// How often a queued request asks whether its turn came.
const POLL_MS: u64 = 5;

/// One origin's admission in this isolate.
struct Origin {
    admission: Admission,
    /// Requests that wanted the origin in the interval last reported: this isolate's weight in
    /// the fleet's limit.
    reported_demand: u64,
}

thread_local! {
    /// One per origin URL; created on first use with the deployment's settings (vars are fixed
    /// for an isolate).
    static ORIGINS: RefCell<HashMap<String, Origin>> = RefCell::new(HashMap::new());
}

fn with<T>(config: &ConcurrencyConfig, origin: &str, f: impl FnOnce(&mut Admission) -> T) -> T {
    ORIGINS.with_borrow_mut(|origins| {
        // Looked up by `&str`: the key is allocated once per origin, not per request or poll.
        if let Some(o) = origins.get_mut(origin) {
            return f(&mut o.admission);
        }
        let mut new = Origin {
            admission: Admission::new(config.limit.clone(), config.queue.clone()),
            reported_demand: 0,
        };
        let out = f(&mut new.admission);
        origins.insert(origin.to_owned(), new);
        out
    })
}

/// `f` on `origin`'s admission, which a grant or a queued ticket proves exists.
fn existing(origin: &str, f: impl FnOnce(&mut Admission)) {
    ORIGINS.with_borrow_mut(|origins| origins.get_mut(origin).map(|o| f(&mut o.admission)));
}

/// The isolate's report to `CONTROL` ([`signals::report`]) with each origin's concurrency
/// measurement, then each limit capped at this isolate's share of the fleet's that it brings
/// back. Run after an answer, when [`signals::report_due`].
pub async fn report(env: Env, shards: u64) {
    if let Some(limits) = signals::report(env, shards, take_measurements()).await {
        adopt(&limits);
    }
}

/// Each origin's measurement since the last call, as this isolate's part of the fleet's limit.
fn take_measurements() -> GlobalLimits {
    ORIGINS.with_borrow_mut(|origins| {
        origins
            .iter_mut()
            .map(|(url, o)| {
                let m = o.admission.take_measurement();
                o.reported_demand = m.demand;
                (url.clone(), GlobalLimit::of(&m))
            })
            .collect()
    })
}

/// Caps each origin's limit at this isolate's share of the fleet's limit `CONTROL` published, and
/// gives it its part of the fleet's queue allowance;
/// an origin it published nothing for runs on this isolate's own limit.
fn adopt(limits: &GlobalLimits) {
    let now = now_millis();
    ORIGINS.with_borrow_mut(|origins| {
        for (url, o) in origins.iter_mut() {
            let share = limits
                .get(url)
                .and_then(|global| global.share_for(o.reported_demand));
            o.admission.set_share(share, now);
        }
    });
}

/// A request in flight to an origin. Give it back with [`Slot::release`]; dropped unreleased (the
/// request was cancelled) it frees its place and says nothing of the origin.
pub struct Slot {
    origin: String,
    permit: Permit,
    granted_ms: u64,
    released: bool,
}

impl Slot {
    /// Ends the request: `outcome` and the time since the grant feed the limit.
    pub fn release(mut self, outcome: Sample) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Sample) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let now = now_millis();
        let rtt_ms = now.saturating_sub(self.granted_ms) as f64;
        existing(&self.origin, |a| {
            a.release(self.permit, now, rtt_ms, outcome)
        });
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.finish(Sample::Unmeasured);
    }
}

/// A queued request's place; dropped while still waiting (the request was cancelled), it leaves
/// the queue.
struct Queued<'a> {
    origin: &'a str,
    ticket: Ticket,
    done: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.done {
            existing(self.origin, |a| a.cancel(self.ticket));
        }
    }
}

/// A slot for a request of `priority` to `origin`: at once, after a short wait, or
/// [`EdgeError::OriginAtCapacity`]. `None` when the limit is off (`CONCURRENCY.enabled`, off by
/// default for now).
pub async fn acquire(
    config: &ConcurrencyConfig,
    origin: &str,
    priority: Priority,
) -> Result<Option<Slot>, EdgeError> {
    if !config.enabled {
        return Ok(None);
    }
    let permit = match with(config, origin, |a| a.try_acquire(now_millis(), priority)) {
        Acquire::Granted(permit) => permit,
        Acquire::Refused { retry_after_ms } => {
            return Err(EdgeError::OriginAtCapacity { retry_after_ms });
        }
        Acquire::Queued(ticket) => {
            let mut queued = Queued {
                origin,
                ticket,
                done: false,
            };
            loop {
                Delay::from(Duration::from_millis(POLL_MS)).await;
                match with(config, origin, |a| a.poll(ticket, now_millis())) {
                    Wait::Waiting => continue,
                    Wait::Granted(permit) => {
                        queued.done = true;
                        break permit;
                    }
                    Wait::Refused { retry_after_ms } => {
                        queued.done = true;
                        return Err(EdgeError::OriginAtCapacity { retry_after_ms });
                    }
                }
            }
        }
    };
    Ok(Some(Slot {
        origin: origin.to_owned(),
        permit,
        granted_ms: now_millis(),
        released: false,
    }))
}
