//! Asset URL paths: resolving a reference against the file that makes it, without ever leaving
//! the asset root, and recognising a path that is already in normal form.

/// The absolute, normalised path that `reference` names when it appears in `base_file`.
///
/// `base_file` is the absolute path of the referring file (`/css/app.css`); `reference` is either
/// absolute (`/img/a.svg`) or relative to the referring file's directory (`../img/a.svg`,
/// `./a.svg`, `a.svg`). `.` and empty segments are dropped and `..` goes up one directory.
/// `None` when the reference climbs above the root, or holds a backslash or NUL (which some
/// servers treat as separators): such a reference can never name an asset.
///
/// The reference must already be stripped of any `?query` or `#fragment`.
pub fn resolve_relative(base_file: &str, reference: &str) -> Option<String> {
    if reference.contains(['\\', '\0']) || base_file.contains(['\\', '\0']) {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    let (start, rest) = match reference.strip_prefix('/') {
        Some(rest) => ("", rest),
        None => (
            base_file.rsplit_once('/').map_or("", |(dir, _)| dir),
            reference,
        ),
    };
    for segment in start.split('/').chain(rest.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            name => segments.push(name),
        }
    }
    // A reference to a directory (`img/`, `.`, `..`) keeps its trailing slash, so it can never be
    // mistaken for a file of the same name.
    let last = rest.rsplit('/').next().unwrap_or("");
    let trailing = if matches!(last, "" | "." | "..") && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    Some(format!("/{}{trailing}", segments.join("/")))
}

/// Whether `path` is an absolute asset path in normal form: it starts with `/`, and no segment is
/// empty, `.` or `..`, and it holds no backslash, NUL or other control character.
///
/// Manifests only hold such paths, so a request path that is not in normal form can never match
/// one: traversal attempts fail by construction, not by a filter that could be bypassed.
pub fn is_normal_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !path.contains(|c: char| c == '\\' || c.is_control())
        && rest.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resolves_references() {
        let cases = [
            ("/css/app.css", "../img/a.svg", Some("/img/a.svg")),
            ("/css/app.css", "img/a.svg", Some("/css/img/a.svg")),
            ("/css/app.css", "./img/a.svg", Some("/css/img/a.svg")),
            ("/css/app.css", "/img/a.svg", Some("/img/a.svg")),
            ("/index.html", "css/app.css", Some("/css/app.css")),
            ("/index.html", "./favicon.svg", Some("/favicon.svg")),
            ("/a/b/c.css", "../../x.png", Some("/x.png")),
            ("/a/b/c.css", "..//./x.png", Some("/a/x.png")),
            ("/a/b/c.css", "../", Some("/a/")),
            ("/a/b/c.css", ".", Some("/a/b/")),
            ("/index.html", ".", Some("/")),
            ("/index.html", "/", Some("/")),
            ("/css/app.css", "../../etc/passwd", None),
            ("/index.html", "../x", None),
            ("/index.html", "/../x", None),
            ("/index.html", "a\\..\\..\\x", None),
            ("/index.html", "a\0", None),
        ];
        for (base, reference, want) in cases {
            assert_eq!(
                resolve_relative(base, reference).as_deref(),
                want,
                "{base} + {reference}"
            );
        }
    }

    #[test]
    fn normal_paths() {
        for ok in ["/index.html", "/css/app.css", "/a..b/c"] {
            assert!(is_normal_path(ok), "{ok}");
        }
        for bad in [
            "",
            "index.html",
            "/",
            "//x",
            "/a/../b",
            "/./a",
            "/a/",
            "/a\\b",
            "/a\0",
            "/a\nb",
        ] {
            assert!(!is_normal_path(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_escapes_the_root(
            base in "(/[a-z.]{1,4}){1,4}",
            reference in "/?((\\.\\.|\\.|[a-z]{1,3}|)/){0,6}[a-z.]{0,4}",
        ) {
            if let Some(resolved) = resolve_relative(&base, &reference) {
                prop_assert!(resolved.starts_with('/'));
                prop_assert!(!resolved.contains("//"), "{}", resolved);
                prop_assert!(resolved.split('/').all(|s| s != ".." && s != "."), "{}", resolved);
            }
        }

        #[test]
        fn resolved_files_are_normal(base in "(/[a-z]{1,4}){1,3}", reference in "(\\.\\./|\\./|[a-z]{1,3}/){0,5}[a-z]{1,4}") {
            if let Some(resolved) = resolve_relative(&base, &reference) {
                prop_assert!(is_normal_path(&resolved), "{}", resolved);
            }
        }

        #[test]
        fn normal_paths_resolve_to_themselves(path in "(/[a-z0-9_-][a-z0-9._-]{0,6}){1,4}") {
            prop_assume!(is_normal_path(&path));
            prop_assert_eq!(resolve_relative("/any/file.html", &path), Some(path));
        }
    }
}
