//! Content-hashed file names: `/css/app.css` + digest ↔ `/css/app.<16 hex>.css`.
//!
//! The hash goes before the extension so the served name keeps the extension that picks its
//! `Content-Type`. Sixteen hex digits (64 bits) make an accidental collision between two versions
//! of one file vanishingly unlikely while keeping URLs short.

/// How many hex digits of the SHA-256 digest go into a hashed name.
pub const HASH_LEN: usize = 16;

/// The hashed name of `path` for a body whose SHA-256 is `sha256_hex`.
///
/// Only the last path segment changes: `/css/app.css` → `/css/app.<hash>.css`; a name without an
/// extension (`/LICENSE`, `/.env`, `/a.`) gets the hash appended: `/LICENSE.<hash>`. The extension
/// is what follows the last dot, provided something precedes that dot and something follows it,
/// which is exactly the rule [`parse_hashed`] inverts.
pub fn hashed_name(path: &str, sha256_hex: &str) -> String {
    let hash = &sha256_hex[..HASH_LEN.min(sha256_hex.len())];
    let (dir, file) = split_file(path);
    match split_extension(file) {
        Some((stem, ext)) => format!("{dir}{stem}.{hash}.{ext}"),
        None => format!("{dir}{file}.{hash}"),
    }
}

/// The inverse of [`hashed_name`]: `/css/app.<hash>.css` → (`/css/app.css`, `<hash>`).
///
/// `None` when the last segment carries no [`HASH_LEN`]-digit lowercase hex hash in the position
/// `hashed_name` puts it.
pub fn parse_hashed(path: &str) -> Option<(String, &str)> {
    let (dir, file) = split_file(path);
    // `stem.<hash>.ext`, where `stem` would itself have had `ext` as its extension.
    if let Some((rest, ext)) = split_extension(file)
        && let Some((stem, hash)) = rest.rsplit_once('.')
        && !stem.is_empty()
        && is_hash(hash)
    {
        return Some((format!("{dir}{stem}.{ext}"), hash));
    }
    // `name.<hash>`, where `name` has no extension of its own: had it one, the branch above
    // would be the form `hashed_name` produced, so the two forms never overlap.
    let (name, hash) = file.rsplit_once('.')?;
    if is_hash(hash) && split_extension(name).is_none() {
        return Some((format!("{dir}{name}"), hash));
    }
    None
}

/// Whether `s` is a hash as it appears in a hashed name: [`HASH_LEN`] lowercase hex digits.
pub fn is_hash(s: &str) -> bool {
    s.len() == HASH_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// (`"/css/"`, `"app.css"`): the directory part keeps its trailing slash.
fn split_file(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    }
}

/// (`stem`, `ext`) when the file name has an extension: a last dot with something on both sides.
fn split_extension(file: &str) -> Option<(&str, &str)> {
    let (stem, ext) = file.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some((stem, ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DIGEST: &str = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";
    const H: &str = "1a2b3c4d5e6f7a8b";

    #[test]
    fn hashed_names() {
        let cases = [
            ("/css/app.css", "/css/app.1a2b3c4d5e6f7a8b.css"),
            ("/index.html", "/index.1a2b3c4d5e6f7a8b.html"),
            ("/vendor/lib.min.js", "/vendor/lib.min.1a2b3c4d5e6f7a8b.js"),
            ("/LICENSE", "/LICENSE.1a2b3c4d5e6f7a8b"),
            ("/.env", "/.env.1a2b3c4d5e6f7a8b"),
            ("/a.", "/a..1a2b3c4d5e6f7a8b"),
            ("/dir.d/file", "/dir.d/file.1a2b3c4d5e6f7a8b"),
        ];
        for (path, want) in cases {
            assert_eq!(hashed_name(path, DIGEST), want, "{path}");
            assert_eq!(parse_hashed(want), Some((path.to_string(), H)), "{want}");
        }
    }

    #[test]
    fn unhashed_names_do_not_parse() {
        for path in [
            "/css/app.css",
            "/LICENSE",
            "/app.1A2B3C4D5E6F7A8B.css",  // uppercase is never produced
            "/app.1a2b3c4d5e6f7a8.css",   // 15 digits
            "/app.1a2b3c4d5e6f7a8bc.css", // 17 digits
            "/.1a2b3c4d5e6f7a8b.css",     // the stem would be empty
            "/",
        ] {
            assert_eq!(parse_hashed(path), None, "{path}");
        }
    }

    proptest! {
        #[test]
        fn parse_inverts_hashed_name(
            dir in "(/[a-z0-9._-]{1,8}){0,3}",
            file in "[a-zA-Z0-9._-]{0,20}",
            digest in "[0-9a-f]{64}",
        ) {
            let path = format!("{dir}/{file}");
            let hashed = hashed_name(&path, &digest);
            prop_assert_eq!(parse_hashed(&hashed), Some((path, &digest[..HASH_LEN])));
        }

        #[test]
        fn parsed_names_hash_back(path in "(/[a-z0-9.]{1,6}){1,3}\\.[0-9a-f]{16}(\\.[a-z]{1,4})?") {
            if let Some((logical, hash)) = parse_hashed(&path) {
                prop_assert_eq!(hashed_name(&logical, hash), path);
            }
        }
    }
}
