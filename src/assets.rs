//! Stage 2, assets: the content-hashed front end.
//!
//! Only paths listed in the asset manifest are served, so nothing outside the build output can
//! ever be reached, whatever the path says. Hashed names are immutable for a year; HTML and other
//! unhashed names revalidate with a strong ETag. Unknown paths get the 404 page.

use crate::error::EdgeError;
use crate::exchange::{Exchange, now_ms};
use crate::pipeline::Flow;
use crate::respond;
use breakwater_core::assets::{Entry, MANIFEST_PATH, Manifest};
use breakwater_core::conditional;
use breakwater_core::intake::Route;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Env, Headers, Method, Response};

/// The binding that holds the built front end.
const BINDING: &str = "ASSETS";
/// Served with status 404 for any path the manifest does not list.
const NOT_FOUND_PAGE: &str = "/404.html";
/// How long an isolate trusts its copy of the manifest. In production the manifest only changes
/// with a deployment (new isolates); the short reload lets `make dev` pick up rebuilt assets.
const MANIFEST_TTL_MS: f64 = 2_000.0;

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    if ex.route != Route::Assets {
        return Ok(Flow::Next);
    }
    let method = ex.req.method();
    if !matches!(method, Method::Get | Method::Head) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" });
    }
    let manifest = manifest(&ex.env).await?;
    let path = if ex.path.ends_with('/') {
        format!("{}index.html", ex.path)
    } else {
        ex.path.clone()
    };
    let (path, entry, status) = match manifest.lookup(&path) {
        Some(entry) => (path, entry, 200),
        None => match manifest.lookup(NOT_FOUND_PAGE) {
            Some(entry) => (NOT_FOUND_PAGE.to_owned(), entry, 404),
            None => {
                return Err(EdgeError::Internal(format!(
                    "{NOT_FOUND_PAGE} is missing from the asset manifest"
                )));
            }
        },
    };

    let headers = entry_headers(entry)?;
    let if_none_match = ex.req.headers().get("if-none-match")?;
    if status == 200
        && if_none_match.is_some_and(|inm| conditional::if_none_match(&inm, &entry.etag()))
    {
        return Ok(Flow::Respond(
            Response::builder()
                .with_status(304)
                .with_headers(headers)
                .empty(),
        ));
    }
    let fetched = ex
        .env
        .assets(BINDING)?
        .fetch(asset_url(&path), None)
        .await?;
    if fetched.status_code() != 200 {
        return Err(EdgeError::Internal(format!(
            "manifest lists {path} but {BINDING} answered {}",
            fetched.status_code()
        )));
    }
    let response = respond::rebuild(fetched, headers).with_status(status);
    Ok(Flow::Respond(if method == Method::Head {
        respond::without_body(response)
    } else {
        response
    }))
}

/// The headers every representation of `entry` carries, 304s included.
fn entry_headers(entry: &Entry) -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("content-type", &entry.content_type)?;
    headers.set("cache-control", entry.cache_control())?;
    headers.set("etag", &entry.etag())?;
    headers.set("x-content-type-options", "nosniff")?;
    Ok(headers)
}

/// The assets binding ignores the host; any absolute URL with the path will do.
fn asset_url(path: &str) -> String {
    format!("https://assets.invalid{path}")
}

thread_local! {
    static MANIFEST: RefCell<Option<(f64, Rc<Manifest>)>> = const { RefCell::new(None) };
}

/// The asset manifest, cached per isolate. The borrow is never held across the fetch: requests
/// interleave at every await.
async fn manifest(env: &Env) -> Result<Rc<Manifest>, EdgeError> {
    let now = now_ms();
    if let Some((loaded, manifest)) = MANIFEST.with_borrow(Clone::clone)
        && now - loaded < MANIFEST_TTL_MS
    {
        return Ok(manifest);
    }
    let mut response = env
        .assets(BINDING)?
        .fetch(asset_url(MANIFEST_PATH), None)
        .await?;
    if response.status_code() != 200 {
        return Err(EdgeError::Internal(format!(
            "{MANIFEST_PATH} not found in {BINDING} ({}): run the asset build",
            response.status_code()
        )));
    }
    let text = response.text().await?;
    let manifest = Rc::new(
        Manifest::from_json(&text)
            .map_err(|e| EdgeError::Internal(format!("{MANIFEST_PATH}: {e}")))?,
    );
    MANIFEST.set(Some((now, manifest.clone())));
    Ok(manifest)
}
