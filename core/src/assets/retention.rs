//! The next manifest from the previous one and a new build: which builds stay reachable and which
//! files fall off the end.
//!
//! A page loaded before a deploy keeps requesting the hashed names it was served, so the hashed
//! files of the last `keep_builds` builds stay listed; only files of builds beyond that, and
//! unhashed names that left the sources, are pruned.

use std::collections::{BTreeMap, BTreeSet};

use super::error::ManifestError;
use super::manifest::{Build, Entry, FORMAT_VERSION, Manifest};
use super::mime::content_type_for;
use super::naming::hashed_name;
use super::paths::is_normal_path;

/// A file of the new build, after reference rewriting: the digest and size of the bytes served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFile {
    pub sha256: String,
    pub size: u64,
}

/// The outcome of [`Manifest::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextBuild {
    pub manifest: Manifest,
    /// Paths the previous manifest listed and the new one does not: safe to delete, sorted.
    pub prune: Vec<String>,
    /// How many earlier builds stay reachable besides the new one.
    pub kept_earlier: usize,
}

impl Manifest {
    /// The manifest after a build of `files` (logical path → built file) with id `build_id`,
    /// keeping at most `keep_builds` builds, the new one included.
    ///
    /// Rebuilding sources the history already holds moves that build to the front instead of
    /// adding a second entry, so an identical rebuild changes nothing.
    pub fn next(
        previous: Option<&Manifest>,
        build_id: &str,
        files: &BTreeMap<String, BuiltFile>,
        keep_builds: usize,
    ) -> Result<NextBuild, ManifestError> {
        if keep_builds == 0 {
            return Err(ManifestError::ZeroKeepBuilds);
        }
        let mut entries = BTreeMap::new();
        let mut current = BTreeMap::new();
        for (logical, file) in files {
            if !is_normal_path(logical) {
                return Err(ManifestError::InvalidPath(logical.clone()));
            }
            let entry = |immutable| Entry {
                sha256: file.sha256.clone(),
                content_type: content_type_for(logical).to_string(),
                size: file.size,
                immutable,
            };
            entries.insert(logical.clone(), entry(false));
            current.insert(logical.clone(), hashed_name(logical, &file.sha256));
        }
        for (logical, hashed) in &current {
            // Inserted for every logical name just above.
            if let Some(entry) = entries.get(logical).cloned() {
                insert_hashed(&mut entries, hashed, &entry)?;
            }
        }
        let newest = Build {
            id: build_id.to_string(),
            files: current.values().cloned().collect(),
        };

        let earlier: Vec<&Build> = previous
            .map(|p| {
                p.builds
                    .iter()
                    .filter(|b| b.id != build_id)
                    .take(keep_builds - 1)
                    .collect()
            })
            .unwrap_or_default();
        for path in earlier.iter().flat_map(|b| &b.files) {
            // `previous` passed validation, so every file of its builds is listed.
            let entry = previous
                .and_then(|p| p.files.get(path))
                .ok_or_else(|| ManifestError::Dangling(path.clone()))?;
            insert_hashed(&mut entries, path, entry)?;
        }

        let mut builds = vec![newest];
        builds.extend(earlier.into_iter().cloned());
        let manifest = Manifest {
            version: FORMAT_VERSION,
            build: build_id.to_string(),
            current,
            files: entries,
            builds,
        };
        manifest.validate()?;
        let kept: BTreeSet<&String> = manifest.files.keys().collect();
        let prune = previous
            .map(|p| {
                p.files
                    .keys()
                    .filter(|path| !kept.contains(path))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let kept_earlier = manifest.builds.len() - 1;
        Ok(NextBuild {
            manifest,
            prune,
            kept_earlier,
        })
    }
}

/// Lists a hashed path; it may already be there with the same bytes (a file unchanged between
/// builds), but never as an unhashed source name or with other bytes.
fn insert_hashed(
    entries: &mut BTreeMap<String, Entry>,
    path: &str,
    entry: &Entry,
) -> Result<(), ManifestError> {
    let hashed = Entry {
        immutable: true,
        ..entry.clone()
    };
    match entries.get(path) {
        None => {
            entries.insert(path.to_string(), hashed);
            Ok(())
        }
        Some(existing) if *existing == hashed => Ok(()),
        Some(_) => Err(ManifestError::NameCollision(path.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A build from (logical path, one-character digest) pairs; the id is derived from them.
    fn build(files: &[(&str, char)]) -> (String, BTreeMap<String, BuiltFile>) {
        let id: String = files.iter().map(|(p, c)| format!("{p}={c};")).collect();
        let files = files
            .iter()
            .map(|(p, c)| {
                (
                    p.to_string(),
                    BuiltFile {
                        sha256: c.to_string().repeat(64),
                        size: 1,
                    },
                )
            })
            .collect();
        (id, files)
    }

    fn next(prev: Option<&Manifest>, files: &[(&str, char)], keep: usize) -> NextBuild {
        let (id, files) = build(files);
        Manifest::next(prev, &id, &files, keep).unwrap()
    }

    #[test]
    fn earlier_builds_stay_servable_until_they_fall_off() {
        let b1 = next(None, &[("/a.css", '1'), ("/b.js", '0')], 2);
        assert_eq!(b1.kept_earlier, 0);
        assert!(b1.prune.is_empty());
        let b2 = next(Some(&b1.manifest), &[("/a.css", '2'), ("/b.js", '0')], 2);
        assert_eq!(b2.kept_earlier, 1);
        assert!(
            b2.manifest
                .lookup(&hashed_name("/a.css", &"1".repeat(64)))
                .is_some()
        );
        assert!(
            b2.manifest
                .lookup(&hashed_name("/a.css", &"2".repeat(64)))
                .is_some()
        );
        assert!(b2.prune.is_empty());
        let b3 = next(Some(&b2.manifest), &[("/a.css", '3'), ("/b.js", '0')], 2);
        assert_eq!(b3.kept_earlier, 1);
        assert_eq!(b3.prune, vec![hashed_name("/a.css", &"1".repeat(64))]);
        // `/b.js` never changed: its hashed name belongs to the current build and stays.
        assert!(
            b3.manifest
                .lookup(&hashed_name("/b.js", &"0".repeat(64)))
                .is_some()
        );
    }

    #[test]
    fn identical_rebuild_changes_nothing() {
        let b1 = next(None, &[("/a.css", '1')], 5);
        let again = next(Some(&b1.manifest), &[("/a.css", '1')], 5);
        assert_eq!(again.manifest, b1.manifest);
        assert!(again.prune.is_empty());
        assert_eq!(again.manifest.builds().len(), 1);
    }

    #[test]
    fn removed_sources_lose_their_unhashed_name_only() {
        let b1 = next(None, &[("/a.css", '1'), ("/old.txt", '9')], 5);
        let b2 = next(Some(&b1.manifest), &[("/a.css", '1')], 5);
        assert_eq!(b2.prune, vec!["/old.txt".to_string()]);
        assert!(
            b2.manifest
                .lookup(&hashed_name("/old.txt", &"9".repeat(64)))
                .is_some()
        );
        assert!(!b2.manifest.current().contains_key("/old.txt"));
    }

    #[test]
    fn rejects_zero_keep_invalid_paths_and_collisions() {
        let (id, files) = build(&[("/a.css", '1')]);
        assert!(matches!(
            Manifest::next(None, &id, &files, 0),
            Err(ManifestError::ZeroKeepBuilds)
        ));
        let (id, files) = build(&[("/../a.css", '1')]);
        assert!(matches!(
            Manifest::next(None, &id, &files, 1),
            Err(ManifestError::InvalidPath(_))
        ));
        let hashed = hashed_name("/a.css", &"1".repeat(64));
        let (id, files) = build(&[("/a.css", '1'), (&hashed, '2')]);
        assert!(
            matches!(Manifest::next(None, &id, &files, 1), Err(ManifestError::NameCollision(p)) if p == hashed)
        );
    }

    proptest! {
        /// Over any sequence of builds: history never exceeds `keep`, the last `keep` builds' files
        /// are all servable, and a pruned path is never still listed.
        #[test]
        fn retention_invariants(
            keep in 1usize..4,
            builds in prop::collection::vec(prop::collection::btree_map("/[a-c]\\.(css|js)", "[0-9a-f]", 1..4), 1..8),
        ) {
            let mut previous: Option<Manifest> = None;
            let mut history: Vec<BTreeMap<String, BuiltFile>> = Vec::new();
            for sources in &builds {
                let files: Vec<(&str, char)> =
                    sources.iter().map(|(p, c)| (p.as_str(), c.chars().next().unwrap())).collect();
                let (id, built) = build(&files);
                let out = Manifest::next(previous.as_ref(), &id, &built, keep).unwrap();
                let m = &out.manifest;
                prop_assert!(m.builds().len() <= keep);
                prop_assert_eq!(m.builds().len(), out.kept_earlier + 1);
                history.retain(|b| b != &built);
                history.push(built);
                for retained in history.iter().rev().take(keep) {
                    for (logical, f) in retained {
                        prop_assert!(m.lookup(&hashed_name(logical, &f.sha256)).is_some_and(|e| e.immutable));
                    }
                }
                for path in &out.prune {
                    prop_assert!(m.lookup(path).is_none());
                    prop_assert!(previous.as_ref().unwrap().lookup(path).is_some());
                }
                prop_assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m.clone());
                previous = Some(out.manifest);
            }
        }
    }
}
