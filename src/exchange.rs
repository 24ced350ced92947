//! One request's state as it travels through the pipeline.

use crate::error::EdgeError;
use crate::incoming::{self, Head};
use crate::runtime::random;
use breakwater_core::config::EdgeConfig;
use breakwater_core::headers::{REQUEST_ID, TRACEPARENT};
use breakwater_core::intake::{Principal, Rejection, Route};
use breakwater_core::metrics;
use breakwater_core::ratelimit::Priority;
use breakwater_core::timing::ServerTiming;
use breakwater_core::trace::{self, TraceContext};
use std::rc::Rc;
use worker::{Context, Env, web_sys};

/// What the stages read and fill in. Identity (request id, trace) is assigned before the first
/// stage runs, so every answer carries it, a rejection included.
pub struct Exchange {
    /// The runtime's request: only its body is read from it ([`Exchange::body`]).
    req: web_sys::Request,
    /// Method, URL and headers, read once.
    pub head: Head,
    pub env: Env,
    /// For work that outlives the answer (`wait_until`): tier writes, background refreshes.
    pub ctx: Rc<Context>,
    pub config: Rc<EdgeConfig>,
    pub request_id: String,
    pub trace: TraceContext,
    /// Set by intake.
    pub principal: Principal,
    /// The decoded, normalised path; set by intake.
    pub path: String,
    /// Set by intake.
    pub route: Route,
    pub timing: ServerTiming,
    /// `RateLimit-Policy` and `RateLimit` for an admitted request on a limited route.
    pub rate_headers: Option<(String, String)>,
    /// The edge itself turned the request away (limit, shedding): not the origin's failure.
    pub refused: bool,
    /// Shadow mode: shedding would have turned this request away.
    pub would_shed: bool,
    /// The admission route's priority (`Normal` off admission routes): who waits for a slot at
    /// a busy origin, and who is refused first.
    pub priority: Priority,
    /// A guest session's id (set by the guest stage): who the origin acts for when the
    /// principal is only an address.
    pub guest: Option<String>,
    /// `Set-Cookie` for a guest session this request opened.
    pub set_cookie: Option<String>,
    /// What the cache stage did, for the metrics: [`metrics::NO_CACHE`] unless it ran.
    pub cache: &'static str,
    /// The stage whose error ended the request, for the log line.
    pub failed_in: Option<&'static str>,
    /// The problem type of the edge's own error answer, for the recent errors.
    pub problem: Option<String>,
    /// The request body, once read ([`Exchange::body`]): a body can be read only once, and
    /// several stages need it.
    body: Option<Rc<[u8]>>,
}

impl Exchange {
    pub fn new(req: web_sys::Request, env: Env, ctx: Context, config: Rc<EdgeConfig>) -> Self {
        let head = Head::read(&req);
        // One call to the runtime's CSPRNG for both ids.
        let entropy: [u8; 40] = random();
        let (for_id, for_trace) = entropy.split_at(16);
        let request_id = trace::request_id(
            head.headers.get(REQUEST_ID).as_deref(),
            for_id.try_into().unwrap_or([0; 16]),
        );
        let trace = TraceContext::continue_or_start(
            head.headers.get(TRACEPARENT).as_deref(),
            for_trace.try_into().unwrap_or([0; 24]),
        );
        Self {
            req,
            head,
            env,
            ctx: Rc::new(ctx),
            config,
            request_id,
            trace,
            principal: Principal::Anonymous,
            path: String::new(),
            route: Route::Assets,
            timing: ServerTiming::new(),
            rate_headers: None,
            refused: false,
            would_shed: false,
            priority: Priority::default(),
            guest: None,
            set_cookie: None,
            cache: metrics::NO_CACHE,
            failed_in: None,
            problem: None,
            body: None,
        }
    }

    /// Who the origin acts for (`Breakwater-Principal`, idempotency scopes): a token's user, an
    /// API key, or a guest session; never an address, which many people may share.
    pub fn owner(&self) -> Option<String> {
        match &self.principal {
            Principal::User(_) | Principal::ApiKey { .. } => Some(self.principal.key()),
            Principal::Ip(_) | Principal::Anonymous => self
                .guest
                .as_ref()
                .map(|id| format!("{}{id}", breakwater_core::guest::PRINCIPAL_PREFIX)),
        }
    }

    /// The request body, read on first use and at most `max` bytes (else intake's `413`;
    /// buffered, so the limit holds without a Content-Length too).
    pub async fn body(&mut self, max: u64) -> Result<Rc<[u8]>, EdgeError> {
        if let Some(body) = &self.body {
            return Ok(body.clone());
        }
        let bytes = incoming::read_body(&self.req).await?;
        if bytes.len() as u64 > max {
            return Err(EdgeError::Rejected(Rejection::BodyTooLarge {
                len: bytes.len() as u64,
                max,
            }));
        }
        let body: Rc<[u8]> = bytes.into();
        self.body = Some(body.clone());
        Ok(body)
    }
}
