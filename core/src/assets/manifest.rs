//! The asset manifest: every servable path with its digest and type, the current hashed name of
//! each logical file, and the history of retained builds.
//!
//! The asset build writes it; the edge loads it and serves a path if and only if the manifest
//! lists it. Its JSON form is versioned so an edge never misreads a manifest from a newer build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ManifestError;
use super::naming::parse_hashed;
use super::paths::is_normal_path;

/// The manifest format this code reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// `Cache-Control` for content-hashed names: the bytes behind such a name never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` for HTML and unhashed names: caches must revalidate with the ETag every time.
pub const REVALIDATE: &str = "no-cache";

/// One servable file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Lowercase hex SHA-256 of the full body as served.
    pub sha256: String,
    pub content_type: String,
    pub size: u64,
    /// Whether the path is a content-hashed name, which may be cached forever.
    pub immutable: bool,
}

impl Entry {
    /// A strong ETag: the first 128 bits of the body's SHA-256, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", &self.sha256[..32.min(self.sha256.len())])
    }

    /// [`IMMUTABLE`] for hashed names, [`REVALIDATE`] otherwise.
    pub fn cache_control(&self) -> &'static str {
        if self.immutable {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

/// One build in the retained history: its id and the hashed paths it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Digest over the build's sorted (logical path, sha256) list: equal sources, equal id.
    pub id: String,
    /// The hashed paths this build wrote, sorted.
    pub files: Vec<String>,
}

/// The asset manifest (see the module docs). Built by [`Manifest::next`] or [`Manifest::from_json`],
/// both of which guarantee the invariants [`Manifest::from_json`] checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub(crate) version: u64,
    /// The id of the current build (the first entry of `builds`).
    pub(crate) build: String,
    /// Logical path → hashed path, for the current build.
    pub(crate) current: BTreeMap<String, String>,
    /// Every servable path: the current unhashed names and the hashed names of retained builds.
    pub(crate) files: BTreeMap<String, Entry>,
    /// Retained builds, newest first.
    pub(crate) builds: Vec<Build>,
}

impl Manifest {
    /// Parses and checks a manifest: the version must be [`FORMAT_VERSION`]; every path must be in
    /// normal form; every hashed entry's name must carry its own digest; `current` and `builds`
    /// must only name listed files.
    pub fn from_json(s: &str) -> Result<Manifest, ManifestError> {
        let value: serde_json::Value = serde_json::from_str(s)?;
        match value.get("version").map(serde_json::Value::as_u64) {
            None => return Err(ManifestError::MissingVersion),
            Some(Some(FORMAT_VERSION)) => {}
            Some(other) => {
                return Err(ManifestError::UnsupportedVersion(other.map_or_else(
                    || {
                        value
                            .get("version")
                            .map_or_else(String::new, ToString::to_string)
                    },
                    |v| v.to_string(),
                )));
            }
        }
        let manifest: Manifest = serde_json::from_value(value)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Pretty JSON; deterministic because every map is ordered.
    #[expect(
        clippy::expect_used,
        reason = "strings, numbers and ordered maps always serialise"
    )]
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        json.push('\n');
        json
    }

    /// The entry for a servable URL path, exactly as requested. Anything not listed, including
    /// every path that is not in normal form (`/../x`, `//x`, `/a/./b`), is not an asset.
    pub fn lookup(&self, url_path: &str) -> Option<&Entry> {
        self.files.get(url_path)
    }

    /// Like [`Manifest::lookup`], but a directory path (`/`, `/docs/`) serves its `index.html`.
    /// Returns the file path to fetch from the asset store with its entry.
    pub fn resolve<'a>(&'a self, url_path: &str) -> Option<(&'a str, &'a Entry)> {
        let (path, entry) = match url_path.strip_suffix('/') {
            Some(dir) => self.files.get_key_value(&format!("{dir}/index.html"))?,
            None => self.files.get_key_value(url_path)?,
        };
        Some((path.as_str(), entry))
    }

    /// Logical path → current hashed path (`/js/app.js` → `/js/app.<hash>.js`), for scripts that
    /// build asset URLs at run time.
    pub fn current(&self) -> &BTreeMap<String, String> {
        &self.current
    }

    /// Every servable path and its entry, in path order.
    pub fn files(&self) -> &BTreeMap<String, Entry> {
        &self.files
    }

    /// The id of the current build.
    pub fn build_id(&self) -> &str {
        &self.build
    }

    /// Retained builds, newest (the current one) first.
    pub fn builds(&self) -> &[Build] {
        &self.builds
    }

    /// A strong ETag for the manifest itself. The build history determines the whole manifest,
    /// so the ids of the retained builds identify its body.
    pub fn etag(&self) -> String {
        let ids: Vec<&str> = self.builds.iter().map(|b| b.id.as_str()).collect();
        format!("\"v{}-{}\"", self.version, ids.join("-"))
    }

    pub(crate) fn validate(&self) -> Result<(), ManifestError> {
        for (path, entry) in &self.files {
            if !is_normal_path(path) {
                return Err(ManifestError::InvalidPath(path.clone()));
            }
            let digest = &entry.sha256;
            if digest.len() != 64
                || !digest
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(ManifestError::InvalidDigest(path.clone()));
            }
            if entry.immutable
                && !parse_hashed(path).is_some_and(|(_, hash)| digest.starts_with(hash))
            {
                return Err(ManifestError::NameHashMismatch(path.clone()));
            }
        }
        for (logical, hashed) in &self.current {
            let unhashed = self.files.get(logical).filter(|e| !e.immutable);
            let hashed_entry = self.files.get(hashed).filter(|e| e.immutable);
            match (unhashed, hashed_entry) {
                (Some(a), Some(b)) if a.sha256 == b.sha256 => {}
                _ => return Err(ManifestError::Dangling(logical.clone())),
            }
        }
        let Some(newest) = self.builds.first() else {
            return Err(ManifestError::NoBuilds);
        };
        if newest.id != self.build {
            return Err(ManifestError::Dangling(self.build.clone()));
        }
        for path in self.builds.iter().flat_map(|b| &b.files) {
            if !self.files.get(path).is_some_and(|e| e.immutable) {
                return Err(ManifestError::Dangling(path.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::{BuiltFile, hashed_name};

    fn digest(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn sample() -> Manifest {
        let files = [
            (
                "/index.html".to_string(),
                BuiltFile {
                    sha256: digest('a'),
                    size: 10,
                },
            ),
            (
                "/css/app.css".to_string(),
                BuiltFile {
                    sha256: digest('b'),
                    size: 20,
                },
            ),
        ]
        .into_iter()
        .collect();
        Manifest::next(None, "0123456789abcdef", &files, 3)
            .unwrap()
            .manifest
    }

    #[test]
    fn json_round_trip_is_exact() {
        let m = sample();
        let json = m.to_json();
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
        assert_eq!(Manifest::from_json(&json).unwrap().to_json(), json);
        assert!(json.starts_with("{\n  \"version\": 1,"), "{json}");
    }

    #[test]
    fn lookup_serves_exactly_the_listed_paths() {
        let m = sample();
        let hashed = hashed_name("/css/app.css", &digest('b'));
        let entry = m.lookup(&hashed).unwrap();
        assert!(entry.immutable);
        assert_eq!(entry.cache_control(), IMMUTABLE);
        assert_eq!(entry.content_type, "text/css; charset=utf-8");
        let page = m.lookup("/index.html").unwrap();
        assert_eq!(page.cache_control(), REVALIDATE);
        assert_eq!(page.etag(), format!("\"{}\"", "a".repeat(32)));
        for miss in [
            "/",
            "/nope.css",
            "/css/../index.html",
            "//index.html",
            "/css/app.css/",
            "index.html",
        ] {
            assert_eq!(m.lookup(miss), None, "{miss}");
        }
        assert_eq!(m.current()["/css/app.css"], hashed);
        assert_eq!(m.resolve("/").map(|(p, _)| p), Some("/index.html"));
        assert_eq!(m.resolve("/css/").map(|(p, _)| p), None);
        assert_eq!(m.etag(), "\"v1-0123456789abcdef\"");
    }

    proptest::proptest! {
        /// Serving is decided by manifest membership alone: whatever a request path looks like,
        /// only a listed path (always in normal form) is found.
        #[test]
        fn only_listed_paths_are_served(path in "(/(\\.\\.|\\.|%2e%2e|index\\.html|css|app\\.css|)){1,4}/?") {
            let m = sample();
            let found = m.lookup(&path).is_some();
            proptest::prop_assert_eq!(found, m.files().contains_key(&path));
            proptest::prop_assert!(!found || is_normal_path(&path), "{}", path);
        }
    }

    #[test]
    fn rejects_bad_manifests() {
        let good = sample().to_json();
        let hashed = hashed_name("/css/app.css", &digest('b'));
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "JSON"),
            ("{}".into(), "no \"version\""),
            (
                good.replace("\"version\": 1", "\"version\": 2"),
                "version 2 is not supported",
            ),
            (
                good.replace("\"version\": 1", "\"version\": \"1\""),
                "version \"1\" is not supported",
            ),
            (
                good.replace("\"/index.html\"", "\"/../index.html\""),
                "normal form",
            ),
            (
                good.replacen(&digest('a'), &digest('A'), 1),
                "64 lowercase hex",
            ),
            (
                good.replace(&hashed, &hashed_name("/css/app.css", &digest('c'))),
                "does not carry",
            ),
            (
                good.replace("\"id\": \"0123456789abcdef\"", "\"id\": \"x\""),
                "\"0123456789abcdef\"",
            ),
        ];
        for (json, want) in cases {
            let err = Manifest::from_json(&json).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }
}
