//! Intake stage: validate the request head, then settle the path, route and principal.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use breakwater_core::headers::CF_CONNECTING_IP;
use breakwater_core::intake::{self, Limits, Principal, RequestHead, Route};

pub fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    // The raw string, not a parsed URL: the URL parser would resolve `..` before we look.
    let url = &ex.head.url;
    let (raw_path, _query) = intake::split_raw_url(url);
    let method = ex.head.method.to_string();
    let (mut header_count, mut header_bytes) = (0, 0);
    for (name, value) in ex.head.headers.iter() {
        header_count += 1;
        header_bytes += name.len() + value.len();
    }
    let content_length = ex.head.header("content-length");
    let head = RequestHead {
        method: &method,
        url,
        raw_path,
        header_count,
        header_bytes,
        content_length: content_length.as_deref(),
    };
    ex.path = intake::check(&head, &Limits::default()).map_err(EdgeError::Rejected)?;
    ex.route = Route::for_path(&ex.path, &ex.config.origin_prefixes);
    ex.principal = Principal::from_connecting_ip(ex.head.header(CF_CONNECTING_IP).as_deref());
    Ok(Flow::Next)
}
