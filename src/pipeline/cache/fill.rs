//! Filling the cache from the origin, the one way it is filled: on a miss, in a
//! `stale-while-revalidate` refresh, and by the cron trigger's warming. The origin is asked
//! through the upstream layer (conditionally when a validator is stored); what RFC 9111 and the
//! route allow is stored in every tier the route names.

use super::now;
use super::reply::{self, Status};
use crate::bindings::tiers::{self, memory::Stored};
use crate::error::EdgeError;
use crate::upstream::{self, Outbound};
use breakwater_core::cache::{
    AfterOrigin, Entry, FromOrigin, HeaderList, Record, RequestHead, Revalidated, TOO_LARGE,
    after_origin, body_fits, conditional_headers, options, retention, update_from_304,
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
    /// What goes to the origin: keyed headers only ([`Forward::Shared`]).
    pub outbound: Outbound,
    /// The purge epoch known before asking the origin; what is stored is stamped with it.
    pub epoch: u64,
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
        let mut response = fetched?;
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
        let body: Rc<[u8]> = response.bytes().await?.into();
        Ok(self.keep(entry, body, Status::Stored))
    }

    /// Stores `entry` + `body` in memory now and returns the writes to the other tiers.
    fn keep(&self, entry: Entry, body: Rc<[u8]>, status: Status) -> Filled {
        let keep = retention(&entry, now(), &options(&self.route));
        let stored = Rc::new(Stored {
            record: Record {
                key: self.key.clone(),
                epoch: self.epoch,
                entry,
            },
            body,
        });
        let writes = tiers::write(
            &self.env,
            &self.route.tiers,
            &stored,
            keep,
            self.config.memory_tier_bytes,
        );
        Filled::Stored {
            stored,
            status,
            writes: Box::pin(writes),
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
