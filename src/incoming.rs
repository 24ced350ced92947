//! The client's request as the runtime hands it over, its head read into Rust once.
//!
//! Every crossing of the JS boundary costs: `worker::Request` reads the method, URL and `cf`
//! object up front (`cf` alone was about a tenth of a memory hit's CPU, and the edge never uses
//! it), and each `Headers::get` or step of `Headers::entries` is a call of its own. So the edge
//! takes the runtime's `web_sys::Request` as it is and reads its method, URL and every header
//! in one call that returns them as one string (`request_head` below); the stages then read
//! [`Head`] and never go back to the runtime for the head. Only the body stays in JS until a
//! stage asks for it ([`read_body`]).

use breakwater_core::cache::HeaderList;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::Method;
use worker::web_sys;

// HTTP field names and values, a method and a parsed URL never hold a line feed (the runtime's
// `Headers` refuses CR and LF, and the URL parser strips them), so one can separate the parts.
#[wasm_bindgen(inline_js = r#"
export function request_head(request) {
  let head = request.method + "\n" + request.url;
  for (const [name, value] of request.headers) head += "\n" + name + "\n" + value;
  return head;
}
"#)]
extern "C" {
    /// `method LF url (LF name LF value)*`, names lower-case as the runtime keeps them.
    fn request_head(request: &web_sys::Request) -> String;
}

/// The request head, read once.
pub struct Head {
    pub method: Method,
    /// The URL as the runtime serialised it, not parsed again: the raw path (with any `..`) is
    /// for intake to judge.
    pub url: String,
    /// Every header, in the runtime's order (lower-case names, repeated names already joined);
    /// shared, so the cache stage can hold them without a copy.
    pub headers: Rc<HeaderList>,
}

impl Head {
    pub fn read(request: &web_sys::Request) -> Self {
        Self::parse(&request_head(request))
    }

    fn parse(joined: &str) -> Self {
        let mut parts = joined.split('\n');
        let method = parts.next().unwrap_or_default().to_owned();
        let url = parts.next().unwrap_or_default().to_owned();
        let mut headers = HeaderList::new();
        while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
            headers.push(name, value);
        }
        Self {
            method: Method::from(method),
            url,
            headers: Rc::new(headers),
        }
    }

    /// A header's value (several lines joined with `", "`).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.into_owned())
    }

    /// Whether the request carries `name`.
    pub fn has(&self, name: &str) -> bool {
        self.headers.get(name).is_some()
    }
}

/// The whole body of `request`, read from the runtime (once: a body is a stream).
pub async fn read_body(request: &web_sys::Request) -> worker::Result<Vec<u8>> {
    let promise = request.array_buffer()?;
    let buffer = worker::wasm_bindgen_futures::JsFuture::from(promise).await?;
    let buffer: js_sys::ArrayBuffer = buffer.dyn_into()?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

#[cfg(all(test, target_arch = "wasm32"))]
mod runtime_tests {
    //! The one call across the JS boundary, on a real `Request` (wasm-bindgen-test in Node).
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    async fn the_head_and_the_body_are_read_from_a_runtime_request() {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        let headers = web_sys::Headers::new().unwrap();
        headers.append("X-Request-Id", "r-1").unwrap();
        headers.append("x-multi", "a").unwrap();
        headers.append("x-multi", "b").unwrap();
        init.set_headers(&headers);
        init.set_body(&wasm_bindgen::JsValue::from_str("{\"n\":1}"));
        let request =
            web_sys::Request::new_with_str_and_init("https://edge.test/a/b?c=1", &init).unwrap();
        let head = Head::read(&request);
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.url, "https://edge.test/a/b?c=1");
        assert_eq!(head.header("x-request-id").as_deref(), Some("r-1"));
        assert_eq!(head.header("x-multi").as_deref(), Some("a, b"));
        assert_eq!(read_body(&request).await.unwrap(), br#"{"n":1}"#);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_joined_head_splits_into_method_url_and_headers() {
        let head = Head::parse(
            "POST\nhttps://edge.test/a?b=1\ncontent-type\napplication/json\nx-empty\n\nx-a\n1, 2",
        );
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.url, "https://edge.test/a?b=1");
        assert_eq!(
            head.header("Content-Type").as_deref(),
            Some("application/json")
        );
        assert_eq!(head.header("x-empty").as_deref(), Some(""));
        assert_eq!(head.header("x-a").as_deref(), Some("1, 2"));
        assert!(head.has("x-empty") && !head.has("cookie"));
    }

    #[test]
    fn a_head_without_headers_or_with_a_dangling_name_keeps_what_is_whole() {
        let head = Head::parse("GET\nhttps://edge.test/");
        assert_eq!(head.method, Method::Get);
        assert!(!head.has("host"));
        let head = Head::parse("GET\nhttps://edge.test/\nhost");
        assert!(!head.has("host"));
    }
}
