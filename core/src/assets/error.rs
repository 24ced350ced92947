//! Why a manifest could not be read or built.

/// A manifest that cannot be trusted: the asset build stops, and the edge keeps its last good one.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for this format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest has no \"version\" field")]
    MissingVersion,
    #[error("manifest version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(String),
    #[error("manifest lists {0:?}, which is not an absolute path in normal form")]
    InvalidPath(String),
    #[error("manifest entry {0:?} has a sha256 that is not 64 lowercase hex digits")]
    InvalidDigest(String),
    #[error("manifest entry {0:?} is marked immutable but its name does not carry its sha256")]
    NameHashMismatch(String),
    #[error("manifest refers to {0:?}, which it does not list as a servable file")]
    Dangling(String),
    #[error("manifest has no builds")]
    NoBuilds,
    #[error("keep_builds must be at least 1 (the current build is always kept)")]
    ZeroKeepBuilds,
    #[error("{0:?} is both a source file and the hashed name of another file")]
    NameCollision(String),
}
