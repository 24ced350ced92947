//! Which requests came from the edge: those signed with a shared edge key
//! ([`breakwater_core::signing`]). With keys configured (`--edge-key` / `BREAKWATER_EDGE_KEYS`),
//! the [`verify`] layer
//!
//! - passes a request with a valid, fresh signature; one whose nonce it has seen before is a
//!   replay when it carries a principal or is not a read (`401`);
//! - refuses one with a malformed, stale or wrong signature (`401` problem+json);
//! - passes an unsigned request with its `Breakwater-Principal` removed (whoever sent it directly
//!   is nobody in particular: public reads work, anything that needs a principal answers `401`),
//!   and the admin routes refuse it ([`crate::admin::Admin`]).
//!
//! Without keys every request passes as before and the principal is trusted as sent; the origin
//! must then be reachable only through the edge (README § Only the edge reaches the origin).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use breakwater_core::signing::{self, MAX_SKEW_S, MIN_KEY_LEN, Refused, Signature, Signed};

use crate::clock::unix_now;
use crate::error::ApiError;
use crate::principal;
use crate::routes::BODY_LIMIT;

/// The `WWW-Authenticate` challenge of a `401` for a missing or bad signature.
pub const CHALLENGE: &str = "Breakwater-Signature realm=\"breakwater-edge\"";

/// Marks an unsigned request while keys are configured: not from the edge.
#[derive(Debug, Clone, Copy)]
pub struct NotFromEdge;

/// Why the configured edge keys are refused at start-up.
#[derive(Debug, thiserror::Error)]
#[error("each edge key must be at least {MIN_KEY_LEN} characters long (key {index} is {len})")]
pub struct InvalidEdgeKey {
    index: usize,
    len: usize,
}

/// The edge keys and the nonces seen; `keys` empty means requests are not checked.
#[derive(Clone, Default)]
pub struct EdgeKeys {
    keys: Arc<Vec<Vec<u8>>>,
    seen: Arc<Mutex<Nonces>>,
}

impl std::fmt::Debug for EdgeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdgeKeys({} configured)", self.keys.len())
    }
}

impl EdgeKeys {
    /// The current key first, then any still accepted during a rotation; each at least
    /// [`MIN_KEY_LEN`] characters.
    pub fn new(keys: &[String]) -> Result<Self, InvalidEdgeKey> {
        for (index, key) in keys.iter().enumerate() {
            if key.len() < MIN_KEY_LEN {
                return Err(InvalidEdgeKey {
                    index,
                    len: key.len(),
                });
            }
        }
        Ok(Self {
            keys: Arc::new(keys.iter().map(|k| k.as_bytes().to_vec()).collect()),
            seen: Arc::default(),
        })
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks a signed request at `now_s` (see the module documentation).
    fn check(&self, value: &str, request: &Signed<'_>, now_s: u64) -> Result<(), Refused> {
        let signature = Signature::parse(value)?;
        signature.verify(&self.keys, now_s, request)?;
        let acts = request.principal.is_some() || !matches!(request.method, "GET" | "HEAD");
        let fresh = !acts || self.remember(&signature.nonce, now_s);
        if fresh {
            Ok(())
        } else {
            Err(Refused::Replayed)
        }
    }

    /// Records `nonce`; false if it was already recorded.
    fn remember(&self, nonce: &str, now_s: u64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.insert(nonce, now_s)
    }
}

/// Nonces of the last two spans of `2 · MAX_SKEW_S`: a signature is accepted for `MAX_SKEW_S` on
/// either side of its time, so a nonce must be kept at least that long after it was first seen.
/// Memory grows with the signed writes and principal requests of about four minutes.
#[derive(Debug, Default)]
struct Nonces {
    started_s: u64,
    current: HashSet<String>,
    previous: HashSet<String>,
}

impl Nonces {
    fn insert(&mut self, nonce: &str, now_s: u64) -> bool {
        let span = 2 * MAX_SKEW_S;
        if now_s >= self.started_s.saturating_add(2 * span) || now_s < self.started_s {
            self.previous.clear();
            self.current.clear();
            self.started_s = now_s;
        } else if now_s >= self.started_s.saturating_add(span) {
            self.previous = std::mem::take(&mut self.current);
            self.started_s += span;
        }
        if self.previous.contains(nonce) {
            return false;
        }
        self.current.insert(nonce.to_owned())
    }
}

/// The layer: see the module documentation.
pub async fn verify(
    State(keys): State<EdgeKeys>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !keys.enabled() {
        return Ok(next.run(request).await);
    }
    let (mut parts, body) = request.into_parts();
    let Some(value) = single(&parts.headers, signing::HEADER)? else {
        parts.headers.remove(principal::HEADER);
        parts.extensions.insert(NotFromEdge);
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    let body = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::BodyTooLarge)?;
    let signed = Signed {
        method: parts.method.as_str(),
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        principal: single(&parts.headers, principal::HEADER)?,
        body: &body,
    };
    keys.check(value, &signed, unix_now().as_secs())
        .map_err(ApiError::EdgeSignature)?;
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}

/// The one value of `name`, if any; repeated or not visible ASCII is a malformed signature.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::EdgeSignature(Refused::Malformed)),
        _ => Err(ApiError::EdgeSignature(Refused::Malformed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn post(principal: Option<&'static str>) -> Signed<'static> {
        Signed {
            method: "POST",
            path_and_query: "/api/orders",
            principal,
            body: b"{}",
        }
    }

    #[test]
    fn short_keys_are_refused_at_start_up() {
        assert!(EdgeKeys::new(&[KEY.into()]).unwrap().enabled());
        assert!(!EdgeKeys::new(&[]).unwrap().enabled());
        let err = EdgeKeys::new(&[KEY.into(), "short".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("each edge key must be at least {MIN_KEY_LEN} characters long (key 1 is 5)")
        );
    }

    #[test]
    fn a_nonce_is_refused_the_second_time_for_as_long_as_its_signature_is_fresh() {
        let keys = EdgeKeys::new(&[KEY.into()]).unwrap();
        let header = signing::sign(KEY.as_bytes(), NOW, "n1", &post(Some("user:1")));
        assert_eq!(keys.check(&header, &post(Some("user:1")), NOW), Ok(()));
        for later in [NOW, NOW + 1, NOW + MAX_SKEW_S] {
            assert_eq!(
                keys.check(&header, &post(Some("user:1")), later),
                Err(Refused::Replayed),
                "{later}"
            );
        }
        assert_eq!(
            keys.check(&header, &post(Some("user:1")), NOW + MAX_SKEW_S + 1),
            Err(Refused::Stale)
        );
    }

    #[test]
    fn reads_without_a_principal_may_repeat_and_writes_may_not() {
        let keys = EdgeKeys::new(&[KEY.into()]).unwrap();
        let get = Signed {
            method: "GET",
            path_and_query: "/api/products/1",
            principal: None,
            body: b"",
        };
        let header = signing::sign(KEY.as_bytes(), NOW, "n2", &get);
        assert_eq!(keys.check(&header, &get, NOW), Ok(()));
        assert_eq!(keys.check(&header, &get, NOW), Ok(()));
        let header = signing::sign(KEY.as_bytes(), NOW, "n3", &post(None));
        assert_eq!(keys.check(&header, &post(None), NOW), Ok(()));
        assert_eq!(
            keys.check(&header, &post(None), NOW),
            Err(Refused::Replayed)
        );
    }

    #[test]
    fn nonces_are_kept_at_least_two_skews_and_forgotten_after_four() {
        let mut nonces = Nonces::default();
        assert!(nonces.insert("a", NOW));
        assert!(!nonces.insert("a", NOW + 2 * MAX_SKEW_S - 1));
        // Rotated into `previous`, still refused.
        assert!(!nonces.insert("a", NOW + 2 * MAX_SKEW_S));
        assert!(nonces.insert("b", NOW + 2 * MAX_SKEW_S));
        // Two spans later it is forgotten (its signature long stale); a clock that stepped back
        // clears everything.
        assert!(nonces.insert("a", NOW + 4 * MAX_SKEW_S));
        assert!(nonces.insert("b", NOW));
    }
}
