//! One reference found in HTML or CSS: is it local, and what does it become once resolved?
//!
//! Shared by the HTML and CSS rewriters so both treat external URLs, `data:` URLs, fragments and
//! query strings identically.

use std::collections::BTreeMap;

use super::mime::is_html;
use super::paths::resolve_relative;

/// The rewritten form of `reference`, or `None` to leave it exactly as written.
///
/// Only local references are offered to `resolve`: those without a scheme (`https:`, `data:`,
/// `mailto:`), not protocol-relative (`//host`), not empty and not a bare `#fragment` or `?query`.
/// `resolve` sees the reference without its `?query`/`#fragment` suffix, which is put back after
/// the replacement. Surrounding whitespace (legal inside HTML attribute values) is kept as it was.
pub fn rewrite_reference(
    reference: &str,
    resolve: &impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let is_space = |c: char| c.is_ascii_whitespace();
    let start = reference.len() - reference.trim_start_matches(is_space).len();
    let trimmed = reference[start..].trim_end_matches(is_space);
    let (lead, trail) = (&reference[..start], &reference[start + trimmed.len()..]);
    let split = trimmed.find(['?', '#']).unwrap_or(trimmed.len());
    let (path, suffix) = trimmed.split_at(split);
    if !is_local(path) {
        return None;
    }
    let replaced = resolve(path)?;
    Some(format!("{lead}{replaced}{suffix}{trail}"))
}

/// Whether `path` (a reference without its suffix) names a file on this site.
fn is_local(path: &str) -> bool {
    !path.is_empty() && !path.starts_with("//") && !has_scheme(path)
}

/// `scheme:` per RFC 3986: a letter, then letters, digits, `+`, `-` or `.`, then a colon, all
/// before any `/`. (`a/b:c` is a relative path whose segment happens to contain a colon.)
fn has_scheme(reference: &str) -> bool {
    let Some(colon) = reference.find(':') else {
        return false;
    };
    let scheme = &reference[..colon];
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The resolver the asset build uses for a file at `base_file`: a reference that resolves to a
/// logical path in `current` becomes that path's hashed name.
///
/// HTML pages are left alone: a link to a page keeps the page's stable name, which revalidates,
/// so bookmarks and shared links keep working across deploys.
pub fn hashed_resolver<'a>(
    base_file: &'a str,
    current: &'a BTreeMap<String, String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |reference| {
        let logical = resolve_relative(base_file, reference)?;
        if is_html(&logical) {
            return None;
        }
        current.get(&logical).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(path: &str) -> Option<String> {
        Some(path.to_uppercase())
    }

    #[test]
    fn local_references_are_rewritten_with_their_suffix() {
        let cases = [
            ("/a.css", Some("/A.CSS")),
            ("a.css?v=1", Some("A.CSS?v=1")),
            ("../a.svg#icon", Some("../A.SVG#icon")),
            ("a.svg?x#y", Some("A.SVG?x#y")),
            (" a.css ", Some(" A.CSS ")),
            ("\n a.css\t", Some("\n A.CSS\t")),
            ("https://cdn.example/a.css", None),
            ("HTTP://cdn.example/a.css", None),
            ("//cdn.example/a.css", None),
            ("data:image/png;base64,AAAA", None),
            ("mailto:shop@example.com", None),
            ("javascript:void(0)", None),
            ("#top", None),
            ("?page=2", None),
            ("", None),
            ("dir/a:b.css", Some("DIR/A:B.CSS")),
        ];
        for (reference, want) in cases {
            assert_eq!(
                rewrite_reference(reference, &upper).as_deref(),
                want,
                "{reference:?}"
            );
        }
    }

    #[test]
    fn hashed_resolver_maps_known_non_html_files() {
        let current: BTreeMap<String, String> = [
            ("/img/a.svg", "/img/a.0000000000000000.svg"),
            ("/about.html", "/about.1111111111111111.html"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let resolve = hashed_resolver("/css/app.css", &current);
        assert_eq!(
            resolve("../img/a.svg").as_deref(),
            Some("/img/a.0000000000000000.svg")
        );
        assert_eq!(
            resolve("/img/a.svg").as_deref(),
            Some("/img/a.0000000000000000.svg")
        );
        assert_eq!(resolve("img/a.svg"), None, "/css/img/a.svg is not an asset");
        assert_eq!(
            resolve("../about.html"),
            None,
            "pages keep their stable names"
        );
        assert_eq!(resolve("../../img/a.svg"), None, "above the root");
    }
}
