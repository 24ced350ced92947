//! `Content-Type` by file extension, for the handful of types a web front end ships.
//!
//! A table rather than a MIME crate: the list is short, the edge binary stays small, and every
//! text type carries an explicit `charset` so browsers never sniff.

/// The type served for names this table does not know; browsers will not render or execute it.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The `Content-Type` for `path`, chosen by its extension (case-insensitive).
///
/// A hashed name (`app.<hash>.css`) has the same extension as its logical name, so both map to
/// the same type.
pub fn content_type_for(path: &str) -> &'static str {
    let file = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return DEFAULT_CONTENT_TYPE;
    };
    if stem.is_empty() {
        return DEFAULT_CONTENT_TYPE;
    }
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "wasm" => "application/wasm",
        _ => DEFAULT_CONTENT_TYPE,
    }
}

/// Whether `path` is an HTML page: pages keep their stable names in links and always revalidate.
pub fn is_html(path: &str) -> bool {
    content_type_for(path).starts_with("text/html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        let cases = [
            ("/index.html", "text/html; charset=utf-8"),
            ("/INDEX.HTM", "text/html; charset=utf-8"),
            ("/css/app.css", "text/css; charset=utf-8"),
            ("/css/app.1a2b3c4d5e6f7a8b.css", "text/css; charset=utf-8"),
            ("/js/app.js", "text/javascript; charset=utf-8"),
            ("/js/worker.mjs", "text/javascript; charset=utf-8"),
            ("/asset-manifest.json", "application/json"),
            ("/js/app.js.map", "application/json"),
            ("/site.webmanifest", "application/manifest+json"),
            ("/img/logo.svg", "image/svg+xml"),
            ("/a.png", "image/png"),
            ("/a.jpg", "image/jpeg"),
            ("/a.jpeg", "image/jpeg"),
            ("/a.gif", "image/gif"),
            ("/a.webp", "image/webp"),
            ("/a.avif", "image/avif"),
            ("/favicon.ico", "image/x-icon"),
            ("/f.woff", "font/woff"),
            ("/f.woff2", "font/woff2"),
            ("/robots.txt", "text/plain; charset=utf-8"),
            ("/sitemap.xml", "application/xml"),
            ("/core.wasm", "application/wasm"),
            ("/LICENSE", DEFAULT_CONTENT_TYPE),
            ("/.css", DEFAULT_CONTENT_TYPE),
            ("/archive.tar.gz", DEFAULT_CONTENT_TYPE),
            ("/dir.css/file", DEFAULT_CONTENT_TYPE),
        ];
        for (path, want) in cases {
            assert_eq!(content_type_for(path), want, "{path}");
        }
    }

    #[test]
    fn html_detection() {
        assert!(is_html("/404.html"));
        assert!(!is_html("/css/app.css"));
    }
}
