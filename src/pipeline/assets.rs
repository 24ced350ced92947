//! Assets stage: the content-hashed front end.
//!
//! Only paths listed in the asset manifest are served, so nothing outside the build output can
//! ever be reached, whatever the path says. Hashed names are immutable for a year; HTML and other
//! unhashed names revalidate with a strong ETag. Unknown paths get the 404 page.
//!
//! Bodies are kept in isolate memory by their SHA-256 (from the manifest), so a file is fetched
//! from `ASSETS` once per isolate rather than once per request: each fetch is a subrequest to
//! the assets service, which `make bench --scenario hotpath` measured as most of an asset's CPU.
//! Content-addressed, an entry can never be stale, whatever the manifest says next.

use crate::error::EdgeError;
use crate::exchange::Exchange;
use crate::pipeline::Flow;
use crate::respond;
use crate::runtime::now_ms;
use breakwater_core::assets::{MANIFEST_PATH, Manifest, NOT_FOUND_PATH, REVALIDATE};
use breakwater_core::conditional;
use breakwater_core::intake::Route;
use breakwater_core::memtier::MemoryTier;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Env, Headers, Method, Response};

/// The binding that holds the built front end.
const BINDING: &str = "ASSETS";
/// How long an isolate trusts its copy of the manifest. In production the manifest only changes
/// with a deployment (new isolates); the short reload lets `make dev` pick up rebuilt assets.
const MANIFEST_TTL_MS: f64 = 2_000.0;
/// Isolate memory for asset bodies (the front end is well under this), and the largest file
/// kept there; larger ones stream from `ASSETS` on every request.
const BODY_MEMORY_BYTES: usize = 4 * 1024 * 1024;
const LARGEST_KEPT: u64 = 512 * 1024;
/// A typical asset, which sizes the memory's admission sketch.
const TYPICAL_ASSET: usize = 16 * 1024;

pub async fn run(ex: &mut Exchange) -> Result<Flow, EdgeError> {
    if ex.route != Route::Assets {
        return Ok(Flow::Next);
    }
    let method = ex.head.method.clone();
    if !matches!(method, Method::Get | Method::Head) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" });
    }
    let manifest = manifest(&ex.env).await?;
    let chosen = choose(&manifest, &ex.path)?;

    let headers = Headers::new();
    headers.set("content-type", &chosen.content_type)?;
    headers.set("cache-control", chosen.cache_control)?;
    headers.set("etag", &chosen.etag)?;
    headers.set("x-content-type-options", "nosniff")?;
    let if_none_match = ex.head.header("if-none-match");
    if chosen.status == 200
        && if_none_match.is_some_and(|inm| conditional::if_none_match(&inm, &chosen.etag))
    {
        return Ok(Flow::Respond(
            Response::builder()
                .with_status(304)
                .with_headers(headers)
                .empty(),
        ));
    }
    let response = match chosen.kept() {
        Some(sha256) => {
            let body = match BODIES.with_borrow_mut(|b| b.get(sha256).cloned()) {
                Some(body) => body,
                None => keep(&ex.env, &chosen, sha256).await?,
            };
            Response::builder()
                .with_status(chosen.status)
                .with_headers(headers)
                .fixed(body.to_vec())
        }
        None => {
            respond::rebuild(fetch(&ex.env, &chosen).await?, headers).with_status(chosen.status)
        }
    };
    Ok(Flow::Respond(if method == Method::Head {
        respond::without_body(response)
    } else {
        response
    }))
}

/// The file to serve for a request path, and how.
struct Chosen {
    path: String,
    status: u16,
    content_type: String,
    cache_control: &'static str,
    etag: String,
    /// The manifest's SHA-256 and size of the body, for a listed file (not the manifest itself).
    content: Option<(String, u64)>,
}

impl Chosen {
    /// The body's SHA-256, when the body may be kept in memory.
    fn kept(&self) -> Option<&str> {
        self.content
            .as_ref()
            .filter(|(_, size)| *size <= LARGEST_KEPT)
            .map(|(sha256, _)| sha256.as_str())
    }
}

thread_local! {
    /// Asset bodies by SHA-256.
    static BODIES: RefCell<MemoryTier<Rc<[u8]>>> =
        RefCell::new(MemoryTier::new(BODY_MEMORY_BYTES, TYPICAL_ASSET));
}

/// The chosen file from `ASSETS`, which must have it.
async fn fetch(env: &Env, chosen: &Chosen) -> Result<Response, EdgeError> {
    let fetched = env
        .assets(BINDING)?
        .fetch(asset_url(&chosen.path), None)
        .await?;
    if fetched.status_code() != 200 {
        return Err(EdgeError::Internal(format!(
            "manifest lists {} but {BINDING} answered {}",
            chosen.path,
            fetched.status_code()
        )));
    }
    Ok(fetched)
}

/// Fetches the chosen file's body and keeps it in memory if it has the manifest's size (a
/// mismatch means `ASSETS` and the manifest disagree: served, never kept).
async fn keep(env: &Env, chosen: &Chosen, sha256: &str) -> Result<Rc<[u8]>, EdgeError> {
    let body: Rc<[u8]> = fetch(env, chosen).await?.bytes().await?.into();
    if chosen
        .content
        .as_ref()
        .is_some_and(|(_, size)| *size == body.len() as u64)
    {
        // A body the memory refuses (too large for it) is simply served from ASSETS next time.
        let _ = BODIES.with_borrow_mut(|b| b.insert(sha256.to_owned(), body.clone(), body.len()));
    }
    Ok(body)
}

/// Manifest entries are served as listed; the manifest itself (scripts read it) revalidates;
/// anything else is the 404 page.
fn choose(manifest: &Manifest, path: &str) -> Result<Chosen, EdgeError> {
    if path == MANIFEST_PATH {
        return Ok(Chosen {
            path: MANIFEST_PATH.to_owned(),
            status: 200,
            content_type: "application/json".to_owned(),
            cache_control: REVALIDATE,
            etag: manifest.etag(),
            content: None,
        });
    }
    let (file, status) = match manifest.resolve(path) {
        Some((file, _)) => (file, 200),
        None => (NOT_FOUND_PATH, 404),
    };
    let entry = manifest.lookup(file).ok_or_else(|| {
        EdgeError::Internal(format!(
            "{NOT_FOUND_PATH} is missing from the asset manifest"
        ))
    })?;
    Ok(Chosen {
        path: file.to_owned(),
        status,
        content_type: entry.content_type.clone(),
        cache_control: entry.cache_control(),
        etag: entry.etag(),
        content: Some((entry.sha256.clone(), entry.size)),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(content: Option<(&str, u64)>) -> Chosen {
        Chosen {
            path: "/css/app.0123456789abcdef.css".into(),
            status: 200,
            content_type: "text/css".into(),
            cache_control: REVALIDATE,
            etag: "\"x\"".into(),
            content: content.map(|(sha, size)| (sha.to_owned(), size)),
        }
    }

    #[test]
    fn only_listed_files_of_a_bounded_size_are_kept_in_memory_by_their_hash() {
        assert_eq!(chosen(Some(("ab12", 1_000))).kept(), Some("ab12"));
        assert_eq!(chosen(Some(("ab12", LARGEST_KEPT))).kept(), Some("ab12"));
        assert_eq!(chosen(Some(("ab12", LARGEST_KEPT + 1))).kept(), None);
        // The manifest itself has no hash of its own: it is never kept.
        assert_eq!(chosen(None).kept(), None);
    }
}
