//! Why an asset build failed; every variant names the file involved and the reason.

use std::io;
use std::path::PathBuf;

use breakwater_core::assets::ManifestError;

/// A failed asset build. Nothing has been pruned and the previous manifest is still in place, so
/// the edge keeps serving the last good build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("--keep-builds must be at least 1 (the current build is always kept)")]
    ZeroKeepBuilds,
    #[error("source directory {0} does not exist")]
    SourceMissing(PathBuf),
    #[error("source {0} is not a directory")]
    SourceNotDirectory(PathBuf),
    #[error(
        "output directory {out} is inside the source directory {src}; choose an output outside it"
    )]
    OutputInsideSource { src: PathBuf, out: PathBuf },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: file names must be UTF-8 without backslashes or control characters to be served")]
    UnservableName(PathBuf),
    #[error("{0}: this name is reserved for the asset manifest")]
    ReservedName(PathBuf),
    #[error("{0}: HTML and CSS must be UTF-8 so their references can be rewritten")]
    NotUtf8(PathBuf),
    #[error("reference cycle between {}: each file's hashed name depends on the other's", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("previous manifest {path} cannot be used; delete the output directory to start afresh")]
    PreviousManifest {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
    #[error("cannot build the manifest")]
    Manifest(#[from] ManifestError),
    #[error(
        "{path}: content hash {actual} does not match the manifest's {expected}; the file changed after it was \
         built (delete it, or the output directory, and rebuild)"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{0}: listed in the manifest but missing (delete the output directory and rebuild)")]
    MissingOutput(PathBuf),
}

impl BuildError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
