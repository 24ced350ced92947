//! Reference rewriting in CSS: `url(...)` (quoted or not) and `@import "..."`.
//!
//! A small scanner rather than a CSS parser crate: it only has to find these two forms while
//! stepping over comments and strings, and the core must stay small enough for the wasm edge.

use super::reference::rewrite_reference;
use super::splice::Splice;

/// `src` with every local reference in `url(...)` and `@import "..."` replaced by what `resolve`
/// returns for it (see [`rewrite_reference`]); everything else is copied unchanged. References
/// that hold a CSS escape (`\`) are left alone rather than half-understood.
pub fn rewrite_css(src: &str, resolve: impl Fn(&str) -> Option<String>) -> String {
    let bytes = src.as_bytes();
    let mut splice = Splice::new(src);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = find(src, i + 2, "*/").map_or(bytes.len(), |end| end + 2);
            }
            b'"' | b'\'' => i = string_end(bytes, i).1,
            b'\\' => i += 2,
            b'u' | b'U' if starts_with_ci(bytes, i, b"url(") && !ident_before(bytes, i) => {
                let (value, next) = url_value(bytes, i + 4);
                if let Some((start, end)) = value {
                    replace(&mut splice, src, start, end, &resolve);
                }
                i = next;
            }
            b'@' if starts_with_ci(bytes, i, b"@import") => {
                let mut j = i + "@import".len();
                while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
                    j += 1;
                }
                if matches!(bytes.get(j), Some(b'"' | b'\'')) {
                    let ((start, end), next) = string_end(bytes, j);
                    replace(&mut splice, src, start, end, &resolve);
                    i = next;
                } else {
                    // `@import url(...)` is handled when the scan reaches `url(`.
                    i = j;
                }
            }
            _ => i += 1,
        }
    }
    splice.finish()
}

fn replace(
    splice: &mut Splice<'_>,
    src: &str,
    start: usize,
    end: usize,
    resolve: &impl Fn(&str) -> Option<String>,
) {
    let value = &src[start..end];
    if value.contains('\\') {
        return;
    }
    if let Some(new) = rewrite_reference(value, resolve) {
        splice.replace(start, end, &new);
    }
}

/// The value range inside `url(` (starting at `i`, just after the parenthesis) and where the scan
/// resumes. No range for an empty or malformed `url(`.
fn url_value(bytes: &[u8], mut i: usize) -> (Option<(usize, usize)>, usize) {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    match bytes.get(i) {
        Some(b'"' | b'\'') => {
            let (range, next) = string_end(bytes, i);
            (Some(range), next)
        }
        _ => {
            let start = i;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b')' => break,
                    b'"' | b'\'' | b'(' | b'\\' => return (None, i),
                    _ if b.is_ascii_whitespace() => break,
                    _ => i += 1,
                }
            }
            let value = (i > start).then_some((start, i));
            (value, i)
        }
    }
}

/// For the string whose opening quote is at `open`: the range of its contents, and the index just
/// past its closing quote. An unterminated string ends at a newline or at the end of input, as in
/// CSS tokenisation.
fn string_end(bytes: &[u8], open: usize) -> ((usize, usize), usize) {
    let quote = bytes.get(open).copied().unwrap_or(b'"');
    let mut i = open + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'\n' => return ((open + 1, i), i),
            _ if b == quote => return ((open + 1, i), i + 1),
            _ => i += 1,
        }
    }
    let end = bytes.len();
    ((open + 1, end), end)
}

/// Whether an identifier character precedes `i`, which makes `url(` part of a longer name.
fn ident_before(bytes: &[u8], i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|before| bytes.get(before))
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80)
}

pub(crate) fn starts_with_ci(bytes: &[u8], i: usize, needle: &[u8]) -> bool {
    bytes
        .get(i..i + needle.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(needle))
}

/// The byte offset of `needle` in `src` at or after `from`.
pub(crate) fn find(src: &str, from: usize, needle: &str) -> Option<usize> {
    src.get(from..)?.find(needle).map(|at| from + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Resolves anything under `/img/` or `/css/` to a visibly different name.
    fn resolve(path: &str) -> Option<String> {
        let known = [
            "../img/a.svg",
            "/img/a.svg",
            "b.css",
            "/css/b.css",
            "../img/b c.svg",
        ];
        known.contains(&path).then(|| format!("H[{path}]"))
    }

    #[test]
    fn rewrites_urls_and_imports() {
        let cases = [
            (
                "a{background:url(../img/a.svg)}",
                "a{background:url(H[../img/a.svg])}",
            ),
            (
                "a{background:url( '../img/a.svg' )}",
                "a{background:url( 'H[../img/a.svg]' )}",
            ),
            (
                r#"a{background:URL("/img/a.svg#x")}"#,
                r#"a{background:URL("H[/img/a.svg]#x")}"#,
            ),
            (r#"@import "b.css";"#, r#"@import "H[b.css]";"#),
            ("@import 'b.css' screen;", "@import 'H[b.css]' screen;"),
            ("@import url(/css/b.css);", "@import url(H[/css/b.css]);"),
            (
                "a{b:url(../img/a.svg?v=2)}",
                "a{b:url(H[../img/a.svg]?v=2)}",
            ),
            (
                "a{b:url('../img/b c.svg')}",
                "a{b:url('H[../img/b c.svg]')}",
            ),
            // Left alone: unknown, external, data, escaped, commented out, inside strings.
            ("a{b:url(unknown.png)}", "a{b:url(unknown.png)}"),
            (
                "a{b:url(https://x.test/a.svg)}",
                "a{b:url(https://x.test/a.svg)}",
            ),
            (
                "a{b:url(//x.test/img/a.svg)}",
                "a{b:url(//x.test/img/a.svg)}",
            ),
            (
                "a{b:url(data:image/svg+xml;utf8,<svg/>)}",
                "a{b:url(data:image/svg+xml;utf8,<svg/>)}",
            ),
            (r"a{b:url(../img/\61.svg)}", r"a{b:url(../img/\61.svg)}"),
            ("/* url(../img/a.svg) */", "/* url(../img/a.svg) */"),
            (
                r#"a{content:"url(../img/a.svg)"}"#,
                r#"a{content:"url(../img/a.svg)"}"#,
            ),
            ("a{b:myurl(../img/a.svg)}", "a{b:myurl(../img/a.svg)}"),
            ("a{b:url()}", "a{b:url()}"),
            ("a{b:url(", "a{b:url("),
            ("a{b:url('../img/a.svg", "a{b:url('H[../img/a.svg]"),
            ("/* unterminated", "/* unterminated"),
        ];
        for (src, want) in cases {
            assert_eq!(rewrite_css(src, resolve), want, "{src}");
        }
    }

    #[test]
    fn non_ascii_text_is_preserved() {
        let src = "/* é */ a::before{content:\"→\"} b{c:url(/img/a.svg)} ü{}";
        assert_eq!(
            rewrite_css(src, resolve),
            "/* é */ a::before{content:\"→\"} b{c:url(H[/img/a.svg])} ü{}"
        );
    }

    proptest! {
        #[test]
        fn text_without_references_is_unchanged(src in "[^u@]{0,200}") {
            prop_assert_eq!(rewrite_css(&src, |_| Some("X".into())), src);
        }

        #[test]
        fn refusing_resolver_is_identity(src in "(url\\(|@import |[\"'()/*\\\\ ]|[a-z./]{1,8}|é){0,40}") {
            prop_assert_eq!(rewrite_css(&src, |_| None), src);
        }

        #[test]
        fn never_panics_and_keeps_text_outside_references(src in "\\PC{0,200}") {
            let out = rewrite_css(&src, |p| Some(p.to_string()));
            prop_assert_eq!(out, src);
        }
    }
}
