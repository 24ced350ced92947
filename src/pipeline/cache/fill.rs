//! Filling the cache from the origin, the one way it is filled: on a miss, in a
//! `stale-while-revalidate` refresh, and by the cron trigger's warming. The origin is asked
//! through the upstream layer (conditionally when a validator is stored); what RFC 9111 and the
//! route allow is stored in every tier the route names.

use super::now;
use super::reply::{self, Status};
use crate::bindings::tiers::{
    self,
    memory::{self, Stored, Variants},
};
use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::upstream::{self, Buffered, Forward, Outbound};
use breakwater_core::cache::{
    AfterOrigin, CacheOptions, Entry, FromOrigin, HeadFreshen, HeaderList, MAX_BODY, Record,
    RequestHead, Revalidated, TOO_LARGE, Timestamp, after_origin, body_fits, conditional_headers,
    fill_drops, freshen_with_head, insert_variant, options, retention, update_from_304,
};
use breakwater_core::config::EdgeConfig;
use breakwater_core::policy::RoutePolicy;
use futures_util::future::LocalBoxFuture;
use std::rc::Rc;
use worker::{Env, Response};

/// Everything needed to fill the cache for one key from the origin, owned, so the same code runs
/// in the foreground, after the answer, and from the cron trigger.
pub struct Fill {
    pub env: Env,
    pub config: Rc<EdgeConfig>,
    pub route: RoutePolicy,
    pub key: String,
    /// The client's headers: `Vary`'s secondary key and the request directives read them.
    pub request_headers: HeaderList,
    /// What goes to the origin: the client's request by the shared forwarding rules, without its
    /// range and conditionals ([`fill_drops`]).
    pub outbound: Outbound,
    /// The purge epoch known before asking the origin; what is stored is stamped with it.
    pub epoch: u64,
    /// The variants the tiers held for the key: what is stored joins them.
    pub variants: Variants,
}

/// How the client's headers reach the origin on a route with a cache policy: every end-to-end
/// header, or the route's `forward` allow-list.
pub fn forward(route: &RoutePolicy) -> Forward<'_> {
    Forward::Shared {
        allow: route.forward.as_deref(),
    }
}

/// The longest [`retention`] of any of `variants`: how long a tier keeps the set.
pub fn retention_of(variants: &Variants, opts: &CacheOptions<'_>) -> u64 {
    let now = now();
    variants
        .iter()
        .map(|v| retention(v.entry(), now, opts))
        .max()
        .unwrap_or(1)
}

/// `variants` with `added` put in by core's rules for the request with `request_headers` (and
/// `removed` taken out), written to the route's tiers: memory now, the others by the returned
/// future. Memory's current set is the base when it has one: it may have gained a variant
/// since `variants` was read.
fn store(
    env: &Env,
    config: &EdgeConfig,
    route: &RoutePolicy,
    key: &str,
    variants: &Variants,
    change: Change<'_>,
) -> LocalBoxFuture<'static, ()> {
    let base = memory::get(key).unwrap_or_else(|| variants.clone());
    let mut set: Vec<Rc<Stored>> = base.to_vec();
    match change {
        Change::Add { stored, request } => insert_variant(&mut set, stored, request),
        Change::Remove(stored) => set.retain(|v| v.entry() != stored.entry()),
    }
    let set: Variants = set.into();
    let keep = retention_of(&set, &options(route));
    Box::pin(tiers::write(
        env,
        &route.tiers,
        key,
        &set,
        keep,
        config.memory_tier_bytes,
    ))
}

/// A change to a key's variant set.
enum Change<'a> {
    /// A response to a request with these headers.
    Add {
        stored: Rc<Stored>,
        request: &'a HeaderList,
    },
    /// A variant that may no longer be served.
    Remove(&'a Rc<Stored>),
}

/// What filling produced.
pub enum Filled {
    /// Stored (or re-stored after a `304`): serve it. `writes` fills the tiers below memory.
    Stored {
        stored: Rc<Stored>,
        status: Status,
        writes: LocalBoxFuture<'static, ()>,
    },
    /// The origin failed and the stored response may answer instead (stale-if-error).
    ServedStale {
        stored: Rc<Stored>,
        detail: &'static str,
    },
    /// The origin's response, relayed as is: it may not be stored, for `reason`.
    NotStored {
        response: Response,
        reason: &'static str,
    },
}

impl Fill {
    /// The fill of `key` for the client's request in `ex`.
    pub async fn new(
        ex: &mut Exchange,
        route: &RoutePolicy,
        key: &str,
        request_headers: &HeaderList,
        variants: &Variants,
        epoch: u64,
    ) -> Result<Self, EdgeError> {
        let mut outbound = Outbound::from_exchange(ex, forward(route)).await?;
        outbound.headers.retain(|(name, _)| !fill_drops(name));
        Ok(Self {
            env: ex.env.clone(),
            config: ex.config.clone(),
            route: route.clone(),
            key: key.to_owned(),
            request_headers: request_headers.clone(),
            outbound,
            epoch,
            variants: variants.clone(),
        })
    }

    /// Asks the origin, conditionally when `stored` has a validator, and stores what RFC 9111
    /// and the route allow. An origin error with a stored response falls back to it where
    /// `stale-if-error` allows.
    pub async fn run(&self, stored: Option<&Rc<Stored>>) -> Result<Filled, EdgeError> {
        let opts = options(&self.route);
        let request = RequestHead::new("GET", &self.request_headers);
        let mut outbound = self.outbound.clone();
        if let Some(s) = stored {
            outbound.headers.extend(
                conditional_headers(s.entry())
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned())),
            );
        }
        let request_time = now();
        let fetched = match upstream::send(&self.env, &self.config, &outbound).await {
            Err(e) if !e.is_no_answer() => return Err(e),
            fetched => fetched,
        };
        let response_time = now();

        let reply = match &fetched {
            Ok(r) => FromOrigin::Answered(r.status_code()),
            Err(_) => FromOrigin::NoAnswer,
        };
        let entry = stored.map(|s| s.entry());
        if let (AfterOrigin::ServeStored { detail }, Some(s)) =
            (after_origin(reply, entry, &request, now(), &opts), stored)
        {
            return Ok(Filled::ServedStale {
                stored: s.clone(),
                detail,
            });
        }
        let response = fetched?;
        let response_headers: HeaderList = response.headers().entries().collect();

        if response.status_code() == 304
            && let Some(s) = stored
        {
            let confirmed = update_from_304(
                s.entry(),
                &request,
                &response_headers,
                request_time,
                response_time,
                &opts,
            );
            return match confirmed {
                Revalidated::Updated(entry) => {
                    Ok(self.keep(entry, s.body.clone(), Status::Revalidated))
                }
                // Still ours to serve this once, but no longer storable: relay the stored body
                // with the updated headers.
                Revalidated::Uncacheable { headers, reason } => Ok(Filled::NotStored {
                    response: reply::relay(s.entry().status(), &headers, &s.body)?,
                    reason: reason.as_str(),
                }),
                // The 304 is for another representation: ask again, unconditionally.
                Revalidated::Mismatch => Box::pin(self.run(None)).await,
            };
        }

        let entry = match Entry::store(
            &request,
            response.status_code(),
            &response_headers,
            request_time,
            response_time,
            &opts,
        ) {
            Ok(entry) => entry,
            Err(reason) => {
                return Ok(Filled::NotStored {
                    response,
                    reason: reason.as_str(),
                });
            }
        };
        if !body_fits(&response_headers) {
            return Ok(Filled::NotStored {
                response,
                reason: TOO_LARGE,
            });
        }
        let limit = usize::try_from(MAX_BODY).unwrap_or(usize::MAX);
        match upstream::buffer(response, limit, self.config.origin_timeout).await? {
            Buffered::Whole(body) => Ok(self.keep(entry, body.into(), Status::Stored)),
            Buffered::TooLarge(response) => Ok(Filled::NotStored {
                response,
                reason: TOO_LARGE,
            }),
        }
    }

    /// Stores `entry` + `body` among the key's variants, in memory now, and returns the writes to
    /// the other tiers.
    fn keep(&self, entry: Entry, body: Rc<[u8]>, status: Status) -> Filled {
        let stored = Rc::new(Stored {
            record: Record {
                key: self.key.clone(),
                epoch: self.epoch,
                entry,
            },
            body,
        });
        let change = Change::Add {
            stored: stored.clone(),
            request: &self.request_headers,
        };
        let writes = store(
            &self.env,
            &self.config,
            &self.route,
            &self.key,
            &self.variants,
            change,
        );
        Filled::Stored {
            stored,
            status,
            writes,
        }
    }

    /// [`Fill::run`] with its tier writes awaited, for work that is already off the request
    /// path. Failures are logged: the stored response stays as it was.
    pub async fn run_to_completion(&self, stored: Option<&Rc<Stored>>) {
        match self.run(stored).await {
            Ok(Filled::Stored { writes, .. }) => writes.await,
            Ok(Filled::ServedStale { .. }) => {
                worker::console_warn!(
                    "refresh of {:?}: the origin failed; kept the stored response",
                    self.key
                )
            }
            Ok(Filled::NotStored { reason, .. }) => {
                worker::console_warn!("refresh of {:?}: not storable ({reason})", self.key)
            }
            Err(e) => worker::console_warn!("refresh of {:?} failed: {e}", self.key),
        }
    }
}

/// A stored `GET` response that a `HEAD` request went to the origin for (it could not answer it).
pub struct Freshen<'a> {
    pub route: &'a RoutePolicy,
    pub key: &'a str,
    pub found: &'a tiers::Found,
    pub stored: &'a Rc<Stored>,
}

impl Freshen<'_> {
    /// Applies the origin's answer to the `HEAD` (RFC 9111 §4.3.5, core's [`freshen_with_head`]):
    /// a `200` whose validators match updates the stored headers; one that shows the
    /// representation changed drops the variant. Tier writes go after the answer.
    pub fn with_head(
        &self,
        ex: &Exchange,
        request: &RequestHead<'_>,
        response: &Response,
        request_time: Timestamp,
    ) {
        let headers: HeaderList = response.headers().entries().collect();
        let opts = options(self.route);
        let outcome = freshen_with_head(
            self.stored.entry(),
            request,
            response.status_code(),
            &headers,
            request_time,
            now(),
            &opts,
        );
        let change = match outcome {
            HeadFreshen::Updated(entry) => Change::Add {
                stored: Rc::new(Stored {
                    record: Record {
                        entry,
                        ..self.stored.record.clone()
                    },
                    body: self.stored.body.clone(),
                }),
                request: request.headers,
            },
            HeadFreshen::Invalidate => Change::Remove(self.stored),
            HeadFreshen::Ignore => return,
        };
        let writes = store(
            &ex.env,
            &ex.config,
            self.route,
            self.key,
            &self.found.variants,
            change,
        );
        ex.ctx.wait_until(writes);
    }
}
