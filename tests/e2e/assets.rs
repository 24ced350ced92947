//! Static assets through the edge: caching headers, revalidation, rebuild retention, 404s and
//! traversal.

use crate::harness::Env;
use sha2::{Digest, Sha256};

pub const CASES: [(&str, crate::Case); 8] = [
    (
        "assets::manifest_is_served_for_scripts",
        manifest_is_served_for_scripts,
    ),
    (
        "assets::front_page_revalidates_with_a_strong_etag",
        front_page_revalidates_with_a_strong_etag,
    ),
    ("assets::if_none_match_gives_304", if_none_match_gives_304),
    (
        "assets::hashed_assets_are_immutable_and_match_their_hash",
        hashed_assets_are_immutable_and_match_their_hash,
    ),
    (
        "assets::previous_build_stays_reachable",
        previous_build_stays_reachable,
    ),
    (
        "assets::unknown_paths_get_the_404_page",
        unknown_paths_get_the_404_page,
    ),
    (
        "assets::traversal_never_reaches_a_file",
        traversal_never_reaches_a_file,
    ),
    ("assets::head_and_wrong_methods", head_and_wrong_methods),
];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn front_page_revalidates_with_a_strong_etag(env: &Env) -> Result<(), String> {
    let r = env.get("/", &[])?;
    check(r.status == 200, || format!("GET / was {}", r.status))?;
    check(
        r.header("content-type") == Some("text/html; charset=utf-8"),
        || format!("{:?}", r.headers),
    )?;
    check(r.header("cache-control") == Some("no-cache"), || {
        format!("cache-control {:?}", r.header("cache-control"))
    })?;
    let etag = r.header("etag").unwrap_or_default();
    check(etag.starts_with('"') && !etag.starts_with("W/"), || {
        format!("etag {etag:?} is not strong")
    })?;
    // The page links the current hashed stylesheet, not the unhashed name.
    let css = &env.second_build.current()["/css/app.css"];
    check(r.text().contains(css.as_str()), || {
        format!("index.html does not reference {css}")
    })
}

fn manifest_is_served_for_scripts(env: &Env) -> Result<(), String> {
    let r = env.get("/asset-manifest.json", &[])?;
    check(r.status == 200, || format!("status {}", r.status))?;
    check(r.header("cache-control") == Some("no-cache"), || {
        format!("{:?}", r.header("cache-control"))
    })?;
    let served =
        breakwater_core::assets::Manifest::from_json(&r.text()).map_err(|e| e.to_string())?;
    check(served.current() == env.second_build.current(), || {
        "served manifest is not the latest build's".into()
    })?;
    let etag = r.header("etag").ok_or("no etag")?;
    let again = env.get("/asset-manifest.json", &[("if-none-match", etag)])?;
    check(again.status == 304, || {
        format!("revalidation was {}", again.status)
    })
}

fn if_none_match_gives_304(env: &Env) -> Result<(), String> {
    let first = env.get("/", &[])?;
    let etag = first.header("etag").ok_or("no etag")?.to_owned();
    let again = env.get("/", &[("if-none-match", &etag)])?;
    check(again.status == 304, || {
        format!("revalidation was {}", again.status)
    })?;
    check(again.body.is_empty(), || "a 304 carried a body".into())?;
    check(again.header("etag") == Some(etag.as_str()), || {
        "304 without the same etag".into()
    })?;
    let stale = env.get("/", &[("if-none-match", "\"not-the-current-tag\"")])?;
    check(stale.status == 200 && !stale.body.is_empty(), || {
        format!("a stale tag got {}", stale.status)
    })
}

fn hashed_assets_are_immutable_and_match_their_hash(env: &Env) -> Result<(), String> {
    let current = env.second_build.current();
    check(current.len() >= 5, || {
        format!("only {} assets in the manifest", current.len())
    })?;
    for (logical, hashed) in current {
        let r = env.get(hashed, &[])?;
        check(r.status == 200, || format!("{hashed} was {}", r.status))?;
        check(
            r.header("cache-control") == Some("public, max-age=31536000, immutable"),
            || format!("{hashed}: cache-control {:?}", r.header("cache-control")),
        )?;
        let want_type = env
            .second_build
            .lookup(hashed)
            .map(|e| e.content_type.clone())
            .unwrap_or_default();
        check(r.header("content-type") == Some(want_type.as_str()), || {
            format!("{hashed}: content-type {:?}", r.header("content-type"))
        })?;
        let digest = hex(&Sha256::digest(&r.body));
        let (_, name_hash) = breakwater_core::assets::parse_hashed(hashed)
            .ok_or(format!("{hashed} is not a hashed name"))?;
        check(digest.starts_with(name_hash), || {
            format!("{hashed}: body sha256 {digest} does not match the name")
        })?;
        // The unhashed name serves the same bytes, but revalidates.
        let plain = env.get(logical, &[])?;
        check(plain.body == r.body, || {
            format!("{logical} and {hashed} differ")
        })?;
        check(plain.header("cache-control") == Some("no-cache"), || {
            format!("{logical}: {:?}", plain.header("cache-control"))
        })?;
    }
    Ok(())
}

fn previous_build_stays_reachable(env: &Env) -> Result<(), String> {
    let old = &env.first_build.current()["/css/app.css"];
    let new = &env.second_build.current()["/css/app.css"];
    check(old != new, || {
        "the rebuild did not change the stylesheet's hash".into()
    })?;
    let r = env.get(old, &[])?;
    check(r.status == 200, || {
        format!("old stylesheet {old} was {}", r.status)
    })?;
    check(!r.text().contains("second build"), || {
        "the old URL served the new content".into()
    })?;
    check(
        r.header("cache-control") == Some("public, max-age=31536000, immutable"),
        || "old asset not immutable".into(),
    )?;
    let on_disk =
        std::fs::read(env.dist.join(old.trim_start_matches('/'))).map_err(|e| e.to_string())?;
    check(r.body == on_disk, || {
        "old asset bytes differ from the first build's file".into()
    })
}

fn unknown_paths_get_the_404_page(env: &Env) -> Result<(), String> {
    for path in [
        "/no-such-page",
        "/css/app.0000000000000000.css",
        "/Cargo.toml",
        "/asset-manifest.json.bak",
    ] {
        let r = env.get(path, &[])?;
        check(r.status == 404, || format!("{path} was {}", r.status))?;
        check(
            r.header("content-type") == Some("text/html; charset=utf-8"),
            || format!("{path}: {:?}", r.header("content-type")),
        )?;
        check(r.text().contains("<html"), || {
            format!("{path}: not the 404 page")
        })?;
        check(!r.text().contains("[workspace]"), || {
            format!("{path} leaked a repository file")
        })?;
    }
    Ok(())
}

fn traversal_never_reaches_a_file(env: &Env) -> Result<(), String> {
    // Each payload is sent byte for byte. Whatever the runtime's URL parser does first, the answer
    // is a 400 or the 404 page, and never bytes from outside the manifest.
    let payloads = [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fCargo.toml",
        "/..%5c..%5cCargo.toml",
        "/index.html%00.css",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/%252e%252e/Cargo.toml",
        "//etc/passwd",
        "/css/..;/..;/Cargo.toml",
    ];
    for payload in payloads {
        let (status, text) = env.raw("GET", payload)?;
        check(status == 400 || status == 404, || {
            format!("{payload}: status {status}")
        })?;
        check(
            !text.contains("root:") && !text.contains("[workspace]"),
            || format!("{payload} leaked a file"),
        )?;
    }
    // Encoded separators and NUL survive any URL normalisation, so intake itself must refuse them.
    for payload in ["/..%2fCargo.toml", "/index.html%00", "/a%5c..%5cb"] {
        let (status, text) = env.raw("GET", payload)?;
        check(status == 400, || format!("{payload}: status {status}"))?;
        check(
            text.contains("application/problem+json") && text.contains("bad-path"),
            || format!("{payload}: {text}"),
        )?;
    }
    Ok(())
}

fn head_and_wrong_methods(env: &Env) -> Result<(), String> {
    let hashed = &env.second_build.current()["/js/app.js"];
    let head = env.request("HEAD", hashed, &[])?;
    check(head.status == 200 && head.body.is_empty(), || {
        format!(
            "HEAD {hashed}: {} with {} bytes",
            head.status,
            head.body.len()
        )
    })?;
    check(head.header("etag").is_some(), || "HEAD without etag".into())?;
    let post = env.request("POST", "/index.html", &[])?;
    check(post.status == 405, || {
        format!("POST /index.html was {}", post.status)
    })?;
    check(post.header("allow") == Some("GET, HEAD"), || {
        format!("allow {:?}", post.header("allow"))
    })?;
    check(
        post.header("content-type") == Some("application/problem+json"),
        || "405 is not problem+json".into(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
