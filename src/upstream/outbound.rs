//! The request an origin receives, built by one set of header rules for every caller.
//!
//! Every client request loses, whoever sends it on:
//! - hop-by-hop headers and those its `Connection` names (they describe the client's connection);
//! - `Host` (the origin gets its own; the edge's travels as `X-Forwarded-Host`);
//! - a client-sent `Breakwater-Principal` (only the edge says who the caller is);
//! - the client's `x-request-id` and `traceparent` (the edge sends its own: the id intake kept or
//!   made, and the client's trace continued with the edge as a new parent);
//! - the routing overrides of `breakwater_core::headers::is_routing_override` (`X-Original-URL`,
//!   `X-HTTP-Method-Override`, every `X-Forwarded-*`, `Forwarded`, ...): an origin that honours
//!   one would answer for another path, method or host than the one the edge saw and keyed.
//!
//! Everything else is end-to-end and travels unchanged, so content negotiation (`Accept*` and the
//! origin's `Vary`), `Range`, conditionals and application headers work through the edge. What
//! differs is the principal ([`Forward`]): a private request names it; a shared one (a cache
//! fill, whose answer everyone may get) names nobody, drops an `Authorization` the edge has
//! already settled, and may be narrowed by the route's allow-list.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::runtime::random;
use breakwater_core::headers::{
    PRINCIPAL, REQUEST_ID, TRACEPARENT, is_hop_by_hop, is_routing_override,
};
use breakwater_core::intake::{self, Limits, Principal};
use breakwater_core::ratelimit::Priority;
use breakwater_core::trace::{self, TraceContext};
use worker::Method;

/// The client's `Host` travels as `X-Forwarded-Host`; the origin gets its own.
const HOST: &str = "host";
const FORWARDED_HOST: &str = "x-forwarded-host";
/// The edge's entry in `Via`: protocol version and a pseudonym (RFC 9110 §7.6.3).
const VIA: &str = "1.1 breakwater";
/// The bearer token a verified `Principal::User` came from.
const AUTHORIZATION: &str = "authorization";
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
    /// Who waits for a slot when the origin is at its concurrency limit, and who is refused
    /// first: the client's route priority; `Low` for work no client waits on.
    pub priority: Priority,
}

/// Which of the client's end-to-end headers go to the origin, after the rules every request
/// follows (module docs).
#[derive(Debug, Clone, Copy)]
pub enum Forward<'a> {
    /// All of them, with the principal: the answer is the client's alone.
    Private,
    /// A request whose answer may be stored and served to everyone: no principal, and no
    /// `Authorization` when it was a token the edge verified (the route serves users alike, so
    /// the token must neither reach the origin nor shape a shared answer).
    Shared {
        /// `None`: every end-to-end header. `Some(names)`: only these (case-insensitive), the
        /// route's `forward` allow-list; it cannot bring back anything the rules drop.
        allow: Option<&'a [String]>,
    },
}

impl Forward<'_> {
    /// Whether the client's header `name` (which passed the common rules) goes to the origin.
    fn keeps(&self, name: &str, principal: &Principal) -> bool {
        match self {
            Self::Private => true,
            Self::Shared { allow } => {
                let settled = matches!(principal, Principal::User(_))
                    && name.eq_ignore_ascii_case(AUTHORIZATION);
                !settled
                    && allow.is_none_or(|list| list.iter().any(|a| a.eq_ignore_ascii_case(name)))
            }
        }
    }
}

/// Whether a client's header `name` survives the rules every forwarded request follows (module
/// docs). `connection` is the request's `Connection` value.
fn crosses(name: &str, connection: Option<&str>) -> bool {
    !is_hop_by_hop(name, connection)
        && !is_routing_override(name)
        && ![HOST, PRINCIPAL, REQUEST_ID, TRACEPARENT]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name.trim()))
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
            priority: Priority::Low,
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
        let raw_url = ex.head.url.clone();
        let (raw_path, query) = intake::split_raw_url(&raw_url);
        let path = format!("{raw_path}{query}");

        let connection = ex.head.header("connection");
        let mut headers: Vec<(String, String)> = ex
            .head
            .headers
            .iter()
            .filter(|(name, _)| {
                crosses(name, connection.as_deref()) && forward.keeps(name, &ex.principal)
            })
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        // The origin's own host, not the edge's; the edge's travels as X-Forwarded-Host (the
        // client's own X-Forwarded-* were dropped above as routing overrides).
        if let Some(host) = ex.head.header(HOST) {
            headers.push((FORWARDED_HOST.into(), host));
        }
        // The edge is a gateway: it adds itself to the client's `Via` list (RFC 9110 §7.6.3).
        headers.push(("via".into(), VIA.into()));
        headers.push((REQUEST_ID.into(), ex.request_id.clone()));
        headers.push((TRACEPARENT.into(), ex.trace.to_header()));
        // The owner, never an address (many people share one); a caller without one is nobody
        // to the origin, which refuses work that needs somebody.
        if let (Forward::Private, Some(owner)) = (forward, ex.owner()) {
            headers.push((PRINCIPAL.into(), owner));
        }

        let method = ex.head.method.clone();
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
            priority: ex.priority,
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

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn the_common_rules_drop_what_the_edge_owns() {
        for name in [
            "Host",
            "Breakwater-Principal",
            "X-Request-Id",
            "traceparent",
            "keep-alive",
            "x-per-hop",
            "X-Forwarded-For",
            "x-forwarded-host",
            "X-Original-URL",
            "x-http-method-override",
            "Forwarded",
        ] {
            assert!(!crosses(name, Some("keep-alive, x-per-hop")), "{name}");
        }
        for name in [
            "accept",
            "Accept-Language",
            "range",
            "if-none-match",
            "x-app",
        ] {
            assert!(crosses(name, Some("keep-alive")), "{name}");
        }
    }

    #[wasm_bindgen_test]
    fn shared_requests_drop_a_settled_token_and_honour_the_allow_list() {
        let user = Principal::User("user:1".into());
        let ip = Principal::Ip([192, 0, 2, 1].into());
        let all = Forward::Shared { allow: None };
        assert!(Forward::Private.keeps("authorization", &user));
        assert!(!all.keeps("Authorization", &user));
        assert!(all.keeps("authorization", &ip), "not settled by the edge");
        assert!(all.keeps("accept", &user));
        let list = vec!["accept".to_owned(), "Authorization".to_owned()];
        let allow = Forward::Shared { allow: Some(&list) };
        assert!(allow.keeps("Accept", &ip));
        assert!(!allow.keeps("accept-language", &ip));
        assert!(allow.keeps("authorization", &ip));
        assert!(!allow.keeps("authorization", &user), "listed, but settled");
    }
}
