//! The corpus on disk (`fuzz/corpus/<target>/`: seed inputs, checked in) and the artifacts a
//! crash leaves (`fuzz/artifacts/<target>/`, ignored by git).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// `fuzz/` of this crate, where the corpus and artifacts live by default.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default corpus directory.
pub fn default_corpus() -> PathBuf {
    crate_dir().join("corpus")
}

/// The default artifacts directory.
pub fn default_artifacts() -> PathBuf {
    crate_dir().join("artifacts")
}

/// Every file of `dir/<target>/`, sorted by name, with its contents; none if the directory is
/// missing.
pub fn load(dir: &Path, target: &str) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let dir = dir.join(target);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_file() {
            let bytes = fs::read(&path)?;
            files.push((path, bytes));
        }
    }
    files.sort();
    Ok(files)
}

/// FNV-1a over `bytes`: a stable name for an input.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes `bytes` to `dir/<target>/<prefix>-<digest>` and returns the path.
pub fn write_artifact(dir: &Path, target: &str, prefix: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let dir = dir.join(target);
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{prefix}-{:016x}", digest(bytes)));
    fs::write(&path, bytes)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_named_by_content_and_load_back() {
        let dir = std::env::temp_dir().join(format!("breakwater-fuzz-{}", std::process::id()));
        let path = write_artifact(&dir, "t", "crash", b"abc").unwrap();
        assert!(path.ends_with(format!("t/crash-{:016x}", digest(b"abc"))));
        let loaded = load(&dir, "t").unwrap();
        assert_eq!(loaded, vec![(path, b"abc".to_vec())]);
        assert!(load(&dir, "missing").unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
