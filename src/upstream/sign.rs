//! The edge's signature on each request to the origin ([`breakwater_core::signing`]), made with
//! the `EDGE_KEY` secret: how an origin that checks it knows the request, and the principal it
//! names, came through the edge.

use super::outbound::Outbound;
use crate::runtime::{now_millis, random};
use breakwater_core::hash::hex;
use breakwater_core::headers::PRINCIPAL;
use breakwater_core::signing::{self, Signed};
use worker::Url;

/// The `Breakwater-Signature` value for `outbound` sent to `url`, under a fresh nonce; `None` for
/// a URL that does not parse (the fetch refuses it too). The path and query are signed as the
/// URL parser leaves them, which is what the runtime sends.
pub fn signature(key: &str, url: &str, outbound: &Outbound) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let principal = outbound
        .headers
        .iter()
        .find(|(name, _)| name == PRINCIPAL)
        .map(|(_, value)| value.as_str());
    let request = Signed {
        method: outbound.method.as_ref(),
        path_and_query: &path_and_query,
        principal,
        body: outbound.body.as_deref().unwrap_or_default(),
    };
    let now_s = now_millis() / 1_000;
    Some(signing::sign(
        key.as_bytes(),
        now_s,
        &hex(&random::<16>()),
        &request,
    ))
}
