//! The request an origin receives, built by one set of header rules for every caller: the
//! client's end-to-end headers unchanged (hop-by-hop ones, those `Connection` names, `Host` and
//! a client-sent `Breakwater-Principal` removed), the edge's host as `X-Forwarded-Host`, the
//! request id, the trace context, and the principal where the answer may depend on it.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::runtime::random;
use breakwater_core::headers::{PRINCIPAL, REQUEST_ID, TRACEPARENT, is_hop_by_hop};
use breakwater_core::intake::{self, Limits, Principal};
use breakwater_core::trace::{self, TraceContext};
use worker::Method;

/// The client's `Host` travels as `X-Forwarded-Host`; the origin gets its own.
const HOST: &str = "host";
/// Where requests that no client sent (the cron trigger's, the queue consumer's) say they were
/// for: only the origin of a target matters (which `Location`s a write may purge), and no
/// client-facing URL shares this one.
const INTERNAL_TARGET: &str = "https://breakwater.internal";

/// A request for the origin, owned, so a background refresh can send it after the client's
/// request is answered.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Path and query on the origin; the pool picks which origin.
    pub path: String,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// The absolute URI the request was for at the edge: what a write invalidates (RFC 9111
    /// §4.4).
    pub target: String,
}

/// Which of the client's end-to-end headers go to the origin.
#[derive(Debug, Clone, Copy)]
pub enum Forward<'a> {
    /// All of them, with the principal: the answer is the client's alone.
    Private,
    /// Only these (the cache key's headers), without the principal: the answer is stored and
    /// served to everyone, so one client's other headers (conditionals, odd `Accept`s) must not
    /// shape it.
    Shared(&'a [String]),
}

impl Outbound {
    /// A `method` request for `path_and_query` that no client sent, with a fresh request id and
    /// trace.
    pub fn internal(method: Method, path_and_query: &str) -> Self {
        let request_id = trace::request_id(None, random());
        let trace = TraceContext::continue_or_start(None, random());
        Self {
            path: path_and_query.to_owned(),
            method,
            headers: vec![
                (REQUEST_ID.into(), request_id),
                (TRACEPARENT.into(), trace.to_header()),
            ],
            body: None,
            target: format!("{INTERNAL_TARGET}{path_and_query}"),
        }
    }

    /// Adds a header (after the rules: the caller's own, such as a credential or a validator).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Whether the request carries `name`.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The client's request, addressed to the origin.
    pub async fn from_exchange(ex: &mut Exchange, forward: Forward<'_>) -> Result<Self, EdgeError> {
        let raw_url = ex.req.inner().url();
        let (raw_path, query) = intake::split_raw_url(&raw_url);
        let path = format!("{raw_path}{query}");

        let incoming = ex.req.headers();
        let connection = incoming.get("connection")?;
        let mut headers: Vec<(String, String)> = incoming
            .entries()
            // The edge sets the request id and trace context below (the client's, continued):
            // copied too, the origin would see each twice.
            .filter(|(name, _)| {
                !is_hop_by_hop(name, connection.as_deref())
                    && ![HOST, PRINCIPAL, REQUEST_ID, TRACEPARENT].contains(&name.as_str())
            })
            .filter(|(name, _)| match forward {
                Forward::Private => true,
                Forward::Shared(keyed) => keyed.iter().any(|k| k.eq_ignore_ascii_case(name)),
            })
            .collect();
        // The origin's own host, not the edge's; the edge's travels as X-Forwarded-Host.
        if let Some(host) = incoming.get("host")? {
            headers.push(("x-forwarded-host".into(), host));
        }
        headers.push((REQUEST_ID.into(), ex.request_id.clone()));
        headers.push((TRACEPARENT.into(), ex.trace.to_header()));
        // An anonymous caller has no identity to pass on (the origin refuses work that needs one).
        if matches!(forward, Forward::Private) && ex.principal != Principal::Anonymous {
            headers.push((PRINCIPAL.into(), ex.principal.key()));
        }

        let method = ex.req.method();
        let body = if matches!(method, Method::Get | Method::Head) {
            None
        } else {
            Some(ex.body(Limits::default().max_body_bytes).await?.to_vec())
        };
        Ok(Self {
            path,
            method,
            headers,
            body,
            target: raw_url,
        })
    }

    /// The request id it carries (for log lines about it).
    pub fn request_id(&self) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == REQUEST_ID)
            .map_or("-", |(_, v)| v.as_str())
    }
}
