//! Static asset versioning: content-hashed names, the manifest the edge serves from, and the
//! reference rewriting the asset build applies to HTML and CSS.
//!
//! The asset build (`breakwater-assetgen`) does the file I/O and hashing; everything it decides
//! (names, types, which builds to keep, how references change) lives here as pure functions, and
//! the edge answers static requests from the same [`Manifest`] type.

mod css;
mod error;
mod html;
mod manifest;
mod mime;
mod naming;
mod paths;
mod reference;
mod retention;
mod splice;

pub use css::rewrite_css;
pub use error::ManifestError;
pub use html::rewrite_html;
pub use manifest::{Build, Entry, FORMAT_VERSION, IMMUTABLE, Manifest, REVALIDATE};
pub use mime::{DEFAULT_CONTENT_TYPE, content_type_for, is_html};
pub use naming::{HASH_LEN, hashed_name, is_hash, parse_hashed};
pub use paths::{is_normal_path, resolve_relative};
pub use reference::{hashed_resolver, rewrite_reference};
pub use retention::{BuiltFile, NextBuild};

/// Where the asset build writes the manifest, as a URL path in the asset store.
pub const MANIFEST_PATH: &str = "/asset-manifest.json";

/// The page served, with status 404, for paths that are not assets and not routed elsewhere.
pub const NOT_FOUND_PATH: &str = "/404.html";
