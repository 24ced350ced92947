//! Building responses: the one problem+json writer and the header copy used when relaying.

use breakwater_core::headers::is_hop_by_hop;
use breakwater_core::problem::{self, Problem};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Headers, Response, ResponseBody, Result, web_sys};

// One call instead of one per field: every call into the runtime costs, and a stored response
// carries a dozen fields. Field names and values never hold a line feed (`Headers` refuses CR and
// LF), so one separates them; a line the runtime refuses throws, as `append` would.
#[wasm_bindgen(inline_js = r#"
export function headers_from(joined) {
  const headers = new Headers();
  if (joined === "") return headers;
  const parts = joined.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
  return headers;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn headers_from(joined: &str) -> std::result::Result<web_sys::Headers, JsValue>;
}

/// `Headers` holding `fields` in order (repeated names appended), made in one runtime call. A
/// field with a line feed in it is refused, as the runtime refuses it.
pub fn headers<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Headers> {
    let mut joined = String::new();
    for (name, value) in fields {
        if name.contains('\n') || value.contains('\n') {
            return Err(worker::Error::RustError(format!(
                "header {name:?} holds a line feed"
            )));
        }
        if !joined.is_empty() {
            joined.push('\n');
        }
        joined.push_str(name);
        joined.push('\n');
        joined.push_str(value);
    }
    Ok(Headers(headers_from(&joined)?))
}

/// Writes `problem` as `application/problem+json`. Errors are never cached: the condition that
/// caused one (origin down, a bad request) says nothing about the next request.
pub fn problem(problem: &Problem, extra: &[(&str, String)]) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", problem::CONTENT_TYPE)?;
    headers.set("cache-control", "no-store")?;
    for (name, value) in extra {
        headers.set(name, value)?;
    }
    Ok(Response::builder()
        .with_status(problem.status)
        .with_headers(headers)
        .fixed(problem.to_json().into_bytes()))
}

/// A mutable copy of `from` without hop-by-hop fields (including those its `Connection` names).
/// A field the runtime's `Headers` refuses is an error, never a panic: the caller says whose.
pub fn relay_headers(from: &Headers) -> Result<Headers> {
    let connection = from.get("connection")?;
    let out = Headers::new();
    for (name, value) in from.entries() {
        if !is_hop_by_hop(&name, connection.as_deref()) {
            out.append(&name, &value)?;
        }
    }
    Ok(out)
}

/// Whether the Workers runtime can construct a `Response` with `status`: the JS constructor
/// (and so worker's conversion of a `worker::Response`, which unwraps) throws outside 200–599,
/// aborting the isolate and every request in flight in it. A fetched answer is not built by the
/// constructor, so it can carry any status the origin wrote (`600`, `999`, a stray `101`); check
/// it with this before rebuilding it.
pub const fn is_constructible(status: u16) -> bool {
    matches!(status, 200..=599)
}

/// Statuses whose response must have no body (`101` aside, which needs a WebSocket): the JS
/// constructor throws on any non-empty body with one of them.
pub const fn is_null_body(status: u16) -> bool {
    matches!(status, 101 | 204 | 205 | 304)
}

/// Rebuilds `response` with mutable headers (a fetched response's are immutable), keeping status
/// and the streaming body; a null-body status keeps no body. The status must be
/// [`is_constructible`], or turning the result into a JS response panics.
pub fn rebuild(response: Response, headers: Headers) -> Response {
    let status = response.status_code();
    let (_, body) = response.into_parts();
    let body = if is_null_body(status) {
        ResponseBody::Empty
    } else {
        body
    };
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .body(body)
}

/// An empty body for `HEAD` and `304`.
pub fn without_body(response: Response) -> Response {
    let status = response.status_code();
    let (builder, _) = response.into_parts();
    builder.with_status(status).body(ResponseBody::Empty)
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    //! These touch JS `Headers`/`Response`, so they run under wasm-bindgen-test in Node.
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    async fn problem_response_has_status_type_and_body() {
        let p = Problem::new("bad-path", 400, "Invalid request path").with_request_id("r1");
        let mut resp = problem(&p, &[("retry-after", "5".into())]).unwrap();
        assert_eq!(resp.status_code(), 400);
        let h = resp.headers();
        assert_eq!(
            h.get("content-type").unwrap().as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(h.get("cache-control").unwrap().as_deref(), Some("no-store"));
        assert_eq!(h.get("retry-after").unwrap().as_deref(), Some("5"));
        let body: Problem = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert_eq!(body, p);
    }

    #[wasm_bindgen_test]
    fn relayed_headers_drop_hop_by_hop_and_connection_listed_fields() {
        let h = Headers::new();
        h.set("content-type", "text/plain").unwrap();
        h.set("connection", "keep-alive, x-private-hop").unwrap();
        h.set("x-private-hop", "1").unwrap();
        h.set("keep-alive", "timeout=5").unwrap();
        h.set("x-request-id", "abc").unwrap();
        let out = relay_headers(&h).unwrap();
        assert_eq!(
            out.get("content-type").unwrap().as_deref(),
            Some("text/plain")
        );
        assert_eq!(out.get("x-request-id").unwrap().as_deref(), Some("abc"));
        for gone in ["connection", "x-private-hop", "keep-alive"] {
            assert!(!out.has(gone).unwrap(), "{gone} was relayed");
        }
    }

    #[wasm_bindgen_test]
    async fn rebuilt_response_keeps_status_and_body_with_mutable_headers() {
        let original = Response::ok("hello").unwrap().with_status(201);
        let headers = Headers::new();
        let mut rebuilt = rebuild(original, headers);
        rebuilt.headers_mut().set("x-added", "yes").unwrap();
        assert_eq!(rebuilt.status_code(), 201);
        assert_eq!(rebuilt.text().await.unwrap(), "hello");
        let mut empty = without_body(Response::ok("body").unwrap());
        assert_eq!(empty.text().await.unwrap(), "");
    }

    #[wasm_bindgen_test]
    fn headers_made_in_one_call_keep_every_line_and_refuse_what_append_refuses() {
        let h = headers([
            ("content-type", "application/json"),
            ("vary", "accept"),
            ("vary", "accept-language"),
            ("x-empty", ""),
        ])
        .unwrap();
        assert_eq!(
            h.get("content-type").unwrap().as_deref(),
            Some("application/json")
        );
        assert_eq!(
            h.get("vary").unwrap().as_deref(),
            Some("accept, accept-language")
        );
        assert_eq!(h.get("x-empty").unwrap().as_deref(), Some(""));
        assert_eq!(h.entries().count(), 3);
        assert_eq!(headers([]).unwrap().entries().count(), 0);
        // A line feed would shift every later field: refused before the runtime sees it.
        assert!(headers([("x-a", "1\nx-b"), ("x-c", "2")]).is_err());
        // A name the runtime's `Headers` refuses is an error, never a panic.
        assert!(headers([("bad name", "1")]).is_err());
    }

    #[wasm_bindgen_test]
    fn only_statuses_the_runtime_constructs_pass() {
        for ok in [200, 204, 304, 418, 599] {
            assert!(is_constructible(ok), "{ok}");
        }
        for bad in [0, 100, 101, 103, 199, 600, 999, u16::MAX] {
            assert!(!is_constructible(bad), "{bad}");
        }
    }

    #[wasm_bindgen_test]
    async fn a_null_body_status_is_rebuilt_without_a_body() {
        for status in [204, 205, 304] {
            let fetched = Response::builder()
                .with_status(status)
                .fixed(b"stray".to_vec());
            let rebuilt = rebuild(fetched, Headers::new());
            assert!(matches!(rebuilt.body(), ResponseBody::Empty), "{status}");
            // The conversion the runtime makes when the answer leaves: it must not throw.
            let js: worker::web_sys::Response = rebuilt.into();
            assert_eq!(js.status(), status);
        }
    }
}
