//! SHA-256 digests of file bodies and of a whole build.

use std::collections::BTreeMap;

use breakwater_core::assets::{BuiltFile, HASH_LEN};
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The build id: a digest over the sorted (logical path, sha256) list, so the same sources always
/// give the same id and any change to any file gives a new one.
pub fn build_id(files: &BTreeMap<String, BuiltFile>) -> String {
    let mut hasher = Sha256::new();
    for (path, file) in files {
        // NUL and newline cannot occur in a served path or a hex digest: the encoding is unambiguous.
        hasher.update(path.as_bytes());
        hasher.update(b"\0");
        hasher.update(file.sha256.as_bytes());
        hasher.update(b"\n");
    }
    let mut id = format!("{:x}", hasher.finalize());
    id.truncate(HASH_LEN);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn build_id_depends_on_paths_and_contents() {
        let one = |path: &str, body: &[u8]| {
            let file = BuiltFile {
                sha256: sha256_hex(body),
                size: body.len() as u64,
            };
            BTreeMap::from([(path.to_string(), file)])
        };
        let id = build_id(&one("/a.css", b"x"));
        assert_eq!(id.len(), HASH_LEN);
        assert_eq!(id, build_id(&one("/a.css", b"x")));
        assert_ne!(id, build_id(&one("/b.css", b"x")));
        assert_ne!(id, build_id(&one("/a.css", b"y")));
    }
}
