//! The baseline of `make bench --scenario hotpath`: what a workers-rs worker costs when it does
//! nothing but answer. Every figure of the edge's hot path is read as a ratio to this one.

use worker::{Context, Env, Request, Response, Result, event};

/// 40 bytes, about a small cached API answer.
const BODY: &str = r#"{"id":42,"name":"bare","price_cents":99}"#;

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let mut response = Response::ok(BODY)?;
    response
        .headers_mut()
        .set("content-type", "application/json")?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_body_is_forty_bytes_of_json() {
        assert_eq!(super::BODY.len(), 40);
    }
}
