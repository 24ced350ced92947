//! Reference rewriting in HTML: `src`, `href`, `poster`, `srcset`/`imagesrcset`, inline `style`
//! attributes and `<style>` elements, and the `content` of `og:image`/`twitter:image` meta tags.
//!
//! A tokenizer for tags and attributes only, not a DOM parser: it steps over comments, doctypes
//! and the raw text of `<script>`, `<textarea>` and `<title>`, and copies everything it does not
//! rewrite byte for byte. A full HTML5 parser would multiply the wasm size of the core for no gain
//! in what gets rewritten.

use super::css::{find, rewrite_css, starts_with_ci};
use super::reference::rewrite_reference;
use super::splice::Splice;

/// `src` with every local reference in the attributes listed in the module docs replaced by what
/// `resolve` returns for it (see [`rewrite_reference`]); everything else is copied unchanged.
pub fn rewrite_html(src: &str, resolve: impl Fn(&str) -> Option<String>) -> String {
    let bytes = src.as_bytes();
    let mut splice = Splice::new(src);
    let mut i = 0;
    while let Some(lt) = find(src, i, "<") {
        i = lt + 1;
        let next = bytes.get(i).copied().unwrap_or(b' ');
        if src[lt..].starts_with("<!--") {
            i = find(src, lt + 4, "-->").map_or(bytes.len(), |end| end + 3);
        } else if matches!(next, b'!' | b'?' | b'/') {
            i = find(src, i, ">").map_or(bytes.len(), |end| end + 1);
        } else if next.is_ascii_alphabetic() {
            let tag = parse_tag(bytes, i);
            rewrite_attributes(src, &tag, &mut splice, &resolve);
            i = tag.end;
            let raw_text = ["script", "style", "textarea", "title"];
            if !tag.self_closing && raw_text.contains(&tag.name.as_str()) {
                let close = find_close(bytes, i, &tag.name);
                if tag.name == "style" {
                    let css = &src[i..close];
                    let rewritten = rewrite_css(css, &resolve);
                    if rewritten != css {
                        splice.replace(i, close, &rewritten);
                    }
                }
                i = close;
            }
        }
    }
    splice.finish()
}

/// A start tag: its lower-cased name, attributes and where it ends.
struct Tag {
    name: String,
    attrs: Vec<Attr>,
    self_closing: bool,
    /// Index just past the closing `>` (or the end of input).
    end: usize,
}

/// An attribute with a value: its lower-cased name and the byte range of the value (inside quotes).
struct Attr {
    name: String,
    value: (usize, usize),
}

/// Tokenizes the start tag whose name begins at `i`, following the HTML attribute syntax: names
/// end at whitespace, `/`, `>` or `=`; values are double-quoted, single-quoted or unquoted.
fn parse_tag(bytes: &[u8], mut i: usize) -> Tag {
    let start = i;
    while bytes
        .get(i)
        .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>'))
    {
        i += 1;
    }
    let name =
        String::from_utf8_lossy(bytes.get(start..i).unwrap_or_default()).to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match bytes.get(i) {
            None => break,
            Some(b'>') => {
                i += 1;
                break;
            }
            Some(b'/') => {
                self_closing = bytes.get(i + 1) == Some(&b'>');
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_start = i;
        i += 1; // a name may start with `=`
        while bytes
            .get(i)
            .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>' | b'='))
        {
            i += 1;
        }
        let attr_name = String::from_utf8_lossy(bytes.get(name_start..i).unwrap_or_default())
            .to_ascii_lowercase();
        let mut j = i;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') {
            continue; // a boolean attribute; `j` is rescanned as the next name
        }
        j += 1;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let value = match bytes.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = bytes
                    .get(j + 1..)
                    .unwrap_or_default()
                    .iter()
                    .position(|&b| b == q)
                    .map_or(bytes.len(), |p| j + 1 + p);
                i = (end + 1).min(bytes.len());
                (j + 1, end)
            }
            _ => {
                let start = j;
                while bytes
                    .get(j)
                    .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>')
                {
                    j += 1;
                }
                i = j;
                (start, j)
            }
        };
        attrs.push(Attr {
            name: attr_name,
            value,
        });
    }
    Tag {
        name,
        attrs,
        self_closing,
        end: i,
    }
}

fn rewrite_attributes(
    src: &str,
    tag: &Tag,
    splice: &mut Splice<'_>,
    resolve: &impl Fn(&str) -> Option<String>,
) {
    let is_image_meta = tag.name == "meta"
        && tag.attrs.iter().any(|a| {
            let v = src[a.value.0..a.value.1].to_ascii_lowercase();
            matches!(a.name.as_str(), "property" | "name")
                && matches!(v.as_str(), "og:image" | "twitter:image")
        });
    for attr in &tag.attrs {
        let (start, end) = attr.value;
        let value = &src[start..end];
        let rewritten = match attr.name.as_str() {
            "src" | "href" | "poster" => rewrite_reference(value, resolve),
            "content" if is_image_meta => rewrite_reference(value, resolve),
            "srcset" | "imagesrcset" => rewrite_srcset(value, resolve),
            "style" => Some(rewrite_css(value, resolve)).filter(|css| css != value),
            _ => None,
        };
        if let Some(new) = rewritten {
            splice.replace(start, end, &new);
        }
    }
}

/// Rewrites the URL of each candidate in a `srcset` (`a.png 1x, b.png 2x`), keeping descriptors,
/// commas and spacing as they were.
fn rewrite_srcset(value: &str, resolve: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let bytes = value.as_bytes();
    let mut splice = Splice::new(value);
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
        {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
            i += 1;
        }
        // A URL followed directly by commas ends before them (the candidate has no descriptor).
        let mut end = i;
        while end > start && bytes.get(end - 1) == Some(&b',') {
            end -= 1;
        }
        if end > start
            && let Some(new) = rewrite_reference(&value[start..end], resolve)
        {
            splice.replace(start, end, &new);
            changed = true;
        }
        // Skip the descriptors up to the next candidate (unless the URL itself ended with a comma).
        if end == i {
            while bytes.get(i).is_some_and(|b| *b != b',') {
                i += 1;
            }
        }
    }
    changed.then(|| splice.finish())
}

/// Where the raw text of a `<name>` element ends: the `<` of its `</name` closing tag, or the end.
fn find_close(bytes: &[u8], mut i: usize, name: &str) -> usize {
    let needle = format!("</{name}");
    while i < bytes.len() {
        if starts_with_ci(bytes, i, needle.as_bytes())
            && bytes
                .get(i + needle.len())
                .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>'))
        {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resolve(path: &str) -> Option<String> {
        let known = [
            "/css/app.css",
            "css/app.css",
            "/img/a.svg",
            "img/a.svg",
            "img/b.svg",
            "/favicon.svg",
        ];
        known.contains(&path).then(|| format!("H[{path}]"))
    }

    #[test]
    fn rewrites_reference_attributes() {
        let cases = [
            (
                r#"<link rel="stylesheet" href="/css/app.css">"#,
                r#"<link rel="stylesheet" href="H[/css/app.css]">"#,
            ),
            (
                r#"<link rel=icon href=/favicon.svg>"#,
                r#"<link rel=icon href=H[/favicon.svg]>"#,
            ),
            (
                "<img src='img/a.svg' alt=''>",
                "<img src='H[img/a.svg]' alt=''>",
            ),
            (
                r#"<IMG SRC = "img/a.svg?x=1#f">"#,
                r#"<IMG SRC = "H[img/a.svg]?x=1#f">"#,
            ),
            (
                r#"<img src="/img/a.svg"/>"#,
                r#"<img src="H[/img/a.svg]"/>"#,
            ),
            (r#"<img src=/img/a.svg/>"#, r#"<img src=/img/a.svg/>"#), // unquoted: the `/` is part of the value
            (
                r#"<video poster="img/a.svg">"#,
                r#"<video poster="H[img/a.svg]">"#,
            ),
            (
                r#"<img srcset="img/a.svg 1x, img/b.svg 2x, https://x.test/c.png 3x">"#,
                r#"<img srcset="H[img/a.svg] 1x, H[img/b.svg] 2x, https://x.test/c.png 3x">"#,
            ),
            // Per the srcset grammar a comma only ends a URL at its end (`a.svg,b.svg` is one URL).
            (
                r#"<img srcset="img/a.svg,img/b.svg">"#,
                r#"<img srcset="img/a.svg,img/b.svg">"#,
            ),
            (
                "<img srcset=\"img/a.svg,\nimg/b.svg 2x\">",
                "<img srcset=\"H[img/a.svg],\nH[img/b.svg] 2x\">",
            ),
            (
                r#"<div style="background:url(/img/a.svg)">"#,
                r#"<div style="background:url(H[/img/a.svg])">"#,
            ),
            (
                "<style>a{b:url(img/a.svg)}</style>",
                "<style>a{b:url(H[img/a.svg])}</style>",
            ),
            (
                r#"<meta property="og:image" content="/img/a.svg"><meta name="x" content="/img/a.svg">"#,
                r#"<meta property="og:image" content="H[/img/a.svg]"><meta name="x" content="/img/a.svg">"#,
            ),
            (
                r#"<script type="module" src="/img/a.svg"></script>"#,
                r#"<script type="module" src="H[/img/a.svg]"></script>"#,
            ),
            (
                r##"<a data-src="/img/a.svg" href="#top">"##,
                r##"<a data-src="/img/a.svg" href="#top">"##,
            ),
        ];
        for (src, want) in cases {
            assert_eq!(rewrite_html(src, resolve), want, "{src}");
        }
    }

    #[test]
    fn leaves_non_markup_alone() {
        let untouched = [
            r#"<!-- <img src="/img/a.svg"> -->"#,
            r#"<script>const s = '<img src="/img/a.svg">';</script>"#,
            r#"<textarea><img src="/img/a.svg"></textarea>"#,
            r#"<title>src="/img/a.svg"</title>"#,
            r#"<!doctype html><p>src="/img/a.svg" is text</p>"#,
            r#"<a href="https://example.com/img/a.svg">"#,
            r#"<img src="data:image/svg+xml,<svg/>">"#,
            r#"<img src="unknown.png">"#,
            "<img src=",
            "<img src=\"/img/a.svg",
            "< img src=/img/a.svg>",
            "a < b > c",
        ];
        for src in untouched {
            let want = if src == "<img src=\"/img/a.svg" {
                "<img src=\"H[/img/a.svg]"
            } else {
                src
            };
            assert_eq!(rewrite_html(src, resolve), want, "{src}");
        }
    }

    #[test]
    fn a_document() {
        let src = "<!doctype html>\n<html lang=\"en\"><head>\n<link rel=\"stylesheet\" href=\"css/app.css\">\n\
                   <script>if (a < b) { x = \"</scriptx>\"; }</script>\n</head>\n\
                   <body><img src=\"/img/a.svg\" alt=\"Café\"></body></html>\n";
        let want = "<!doctype html>\n<html lang=\"en\"><head>\n<link rel=\"stylesheet\" href=\"H[css/app.css]\">\n\
                    <script>if (a < b) { x = \"</scriptx>\"; }</script>\n</head>\n\
                    <body><img src=\"H[/img/a.svg]\" alt=\"Café\"></body></html>\n";
        assert_eq!(rewrite_html(src, resolve), want);
    }

    proptest! {
        #[test]
        fn text_without_markup_is_unchanged(src in "[^<]{0,200}") {
            prop_assert_eq!(rewrite_html(&src, |_| Some("X".into())), src);
        }

        #[test]
        fn refusing_resolver_is_identity(src in "(<|>|/|=|\"|'| |src|href|srcset|style|img|url\\(|é|[a-z./]{1,6}){0,50}") {
            prop_assert_eq!(rewrite_html(&src, |_| None), src);
        }

        #[test]
        fn identity_resolver_is_identity(src in "\\PC{0,200}") {
            prop_assert_eq!(rewrite_html(&src, |p| Some(p.to_string())), src);
        }
    }
}
