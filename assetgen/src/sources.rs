//! The source tree: every file under `--src` with the URL path it will be served at.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use breakwater_core::assets::{MANIFEST_PATH, is_normal_path};
use walkdir::WalkDir;

use crate::error::BuildError;

/// A source file as read from disk.
#[derive(Debug)]
pub struct Source {
    /// Where it was read from, for error messages.
    pub file: PathBuf,
    pub bytes: Vec<u8>,
}

/// Reads every file under `src`, keyed by URL path (`static/css/app.css` → `/css/app.css`).
///
/// Dotfiles and dot-directories (`.DS_Store`, `.git/`) are skipped: they are editor and VCS
/// clutter, never part of the site. Symlinks are followed, so the output is self-contained.
pub fn read_sources(src: &Path) -> Result<BTreeMap<String, Source>, BuildError> {
    let mut sources = BTreeMap::new();
    let walk = WalkDir::new(src)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(src).to_path_buf();
            BuildError::io("reading", path)(e.into())
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let file = entry.path();
        let logical = url_path(src, file)?;
        if logical == MANIFEST_PATH {
            return Err(BuildError::ReservedName(file.to_path_buf()));
        }
        let bytes = fs::read(file).map_err(BuildError::io("reading", file))?;
        sources.insert(
            logical,
            Source {
                file: file.to_path_buf(),
                bytes,
            },
        );
    }
    Ok(sources)
}

/// `/`-separated URL path of `file` relative to `src`, whatever the platform's separator.
fn url_path(src: &Path, file: &Path) -> Result<String, BuildError> {
    let unservable = || BuildError::UnservableName(file.to_path_buf());
    let relative = file.strip_prefix(src).map_err(|_| unservable())?;
    let mut path = String::new();
    for part in relative.components() {
        path.push('/');
        path.push_str(part.as_os_str().to_str().ok_or_else(unservable)?);
    }
    if !is_normal_path(&path) {
        return Err(unservable());
    }
    Ok(path)
}
