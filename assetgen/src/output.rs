//! The output directory: atomic writes, integrity checks and pruning, confined to paths the
//! manifest names.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use breakwater_core::assets::{MANIFEST_PATH, Manifest};

use crate::digest::sha256_hex;
use crate::error::BuildError;

/// The output directory of a build.
pub struct Output {
    root: PathBuf,
}

impl Output {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Where the file served at URL path `path` lives. Manifest paths are in normal form (no `..`,
    /// no empty segment), so the result is always inside the output directory.
    pub fn file(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The manifest of the previous build, if there is one.
    pub fn previous_manifest(&self) -> Result<Option<Manifest>, BuildError> {
        let file = self.file(MANIFEST_PATH);
        let json = match fs::read_to_string(&file) {
            Ok(json) => json,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BuildError::io("reading", file)(e)),
        };
        Manifest::from_json(&json)
            .map(Some)
            .map_err(|source| BuildError::PreviousManifest { path: file, source })
    }

    /// Writes `bytes` to the file for `path` unless it already holds exactly them. Returns whether
    /// it wrote.
    pub fn write_if_changed(&self, path: &str, bytes: &[u8]) -> Result<bool, BuildError> {
        let file = self.file(path);
        match fs::read(&file) {
            Ok(existing) if existing == bytes => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BuildError::io("reading", file)(e)),
        }
        write_atomic(&file, bytes)?;
        Ok(true)
    }

    /// Writes a hashed file unless it exists. An existing one is left for [`Output::verify`]:
    /// overwriting it would hide a corrupted output instead of failing the build.
    pub fn write_if_missing(&self, path: &str, bytes: &[u8]) -> Result<bool, BuildError> {
        let file = self.file(path);
        if file
            .try_exists()
            .map_err(BuildError::io("checking", &file))?
        {
            return Ok(false);
        }
        write_atomic(&file, bytes)?;
        Ok(true)
    }

    /// Re-hashes every file the manifest lists, retained earlier builds included, and fails on
    /// the first whose bytes are not the ones the manifest (and, for hashed names, the name) says.
    pub fn verify(&self, manifest: &Manifest) -> Result<(), BuildError> {
        for (path, entry) in manifest.files() {
            let file = self.file(path);
            let bytes = match fs::read(&file) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(BuildError::MissingOutput(file));
                }
                Err(e) => return Err(BuildError::io("reading", file)(e)),
            };
            let actual = sha256_hex(&bytes);
            if actual != entry.sha256 {
                return Err(BuildError::HashMismatch {
                    path: file,
                    expected: entry.sha256.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }

    /// Deletes the files for `paths` (which came from the previous manifest); returns how many
    /// existed. Directories left empty are removed too, up to the output root.
    pub fn prune(&self, paths: &[String]) -> Result<usize, BuildError> {
        let mut removed = 0;
        for path in paths {
            let file = self.file(path);
            match fs::remove_file(&file) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(BuildError::io("deleting", file)(e)),
            }
            let mut dir = file.parent();
            while let Some(d) = dir.filter(|d| *d != self.root) {
                // Fails (harmlessly) as soon as a directory still holds something.
                if fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(removed)
    }

    /// Writes the manifest last, so it never names a file that is not on disk yet.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<bool, BuildError> {
        self.write_if_changed(MANIFEST_PATH, manifest.to_json().as_bytes())
    }
}

/// Writes through a temporary file in the same directory and renames it into place, so a reader
/// (the edge under `wrangler dev`, or a crash half-way) never sees a partial file.
fn write_atomic(file: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(BuildError::io("creating", dir))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = fs::File::create(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&temp, file));
    written.map_err(|e| {
        let _ = fs::remove_file(&temp);
        BuildError::io("writing", file)(e)
    })
}
