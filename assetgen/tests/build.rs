//! The asset build end to end on temporary directories: hashing, rewriting, retention, integrity.

use std::fs;
use std::path::{Path, PathBuf};

use breakwater_assetgen::{BuildError, Options, Report, build, sha256_hex};
use breakwater_core::assets::{IMMUTABLE, MANIFEST_PATH, Manifest, REVALIDATE, parse_hashed};
use tempfile::TempDir;

struct Site {
    _dir: TempDir,
    src: PathBuf,
    out: PathBuf,
}

impl Site {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Site {
            src: dir.path().join("static"),
            out: dir.path().join("dist"),
            _dir: dir,
        };
        fs::create_dir_all(&site.src).unwrap();
        for (path, body) in files {
            site.put(path, body);
        }
        site
    }

    fn put(&self, path: &str, body: &str) {
        let file = self.src.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, body).unwrap();
    }

    fn build(&self, keep_builds: usize) -> Result<Report, BuildError> {
        build(&Options {
            src: self.src.clone(),
            out: self.out.clone(),
            keep_builds,
        })
    }

    fn out_file(&self, url_path: &str) -> PathBuf {
        self.out.join(url_path.trim_start_matches('/'))
    }

    fn read(&self, url_path: &str) -> String {
        fs::read_to_string(self.out_file(url_path)).unwrap()
    }
}

fn shop() -> Site {
    Site::new(&[
        (
            "index.html",
            r#"<link rel="stylesheet" href="css/app.css"><img src="/img/logo.svg" alt=""><script type="module" src="/js/app.js"></script><a href="/404.html">x</a>"#,
        ),
        ("404.html", r#"<link rel="stylesheet" href="/css/app.css">"#),
        (
            "css/app.css",
            "@import 'base.css';\nbody{background:url(../img/bg.svg)}",
        ),
        (
            "css/base.css",
            "h1{background:url(\"/img/logo.svg?v=1#i\")}",
        ),
        ("img/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>"),
        (
            "img/bg.svg",
            "<svg xmlns='http://www.w3.org/2000/svg'><rect/></svg>",
        ),
        (
            "js/app.js",
            "fetch('/asset-manifest.json');\nconst u = '/img/logo.svg';\n",
        ),
        (".DS_Store", "junk"),
        (".git/config", "junk"),
    ])
}

#[test]
fn hashes_match_contents_and_names() {
    let site = shop();
    let report = site.build(5).unwrap();
    assert_eq!(report.hashed, 7, "dotfiles are skipped");
    let m = &report.manifest;
    for (path, entry) in m.files() {
        let body = fs::read(site.out_file(path)).unwrap();
        assert_eq!(sha256_hex(&body), entry.sha256, "{path}");
        assert_eq!(body.len() as u64, entry.size, "{path}");
        if entry.immutable {
            let (_, hash) = parse_hashed(path).unwrap();
            assert!(entry.sha256.starts_with(hash), "{path}");
            assert_eq!(entry.cache_control(), IMMUTABLE);
        } else {
            assert_eq!(entry.cache_control(), REVALIDATE);
        }
    }
    assert_eq!(
        m.files().len(),
        14,
        "an unhashed and a hashed name per source file"
    );
    let on_disk = Manifest::from_json(&site.read(MANIFEST_PATH)).unwrap();
    assert_eq!(&on_disk, m);
    assert!(!site.out.join(".DS_Store").exists());
}

#[test]
fn references_are_rewritten_to_hashed_names() {
    let site = shop();
    let m = site.build(5).unwrap().manifest;
    let cur = m.current();
    let index = site.read("/index.html");
    assert!(
        index.contains(&format!(r#"href="{}""#, cur["/css/app.css"])),
        "{index}"
    );
    assert!(
        index.contains(&format!(r#"src="{}""#, cur["/img/logo.svg"])),
        "{index}"
    );
    assert!(
        index.contains(&format!(r#"src="{}""#, cur["/js/app.js"])),
        "{index}"
    );
    assert!(
        index.contains(r#"href="/404.html""#),
        "pages keep stable names: {index}"
    );
    let app = site.read("/css/app.css");
    assert!(
        app.contains(&format!("@import '{}'", cur["/css/base.css"])),
        "{app}"
    );
    assert!(
        app.contains(&format!("url({})", cur["/img/bg.svg"])),
        "nested relative ref: {app}"
    );
    let base = site.read("/css/base.css");
    assert!(
        base.contains(&format!("url(\"{}?v=1#i\")", cur["/img/logo.svg"])),
        "{base}"
    );
    assert_eq!(
        site.read("/js/app.js"),
        fs::read_to_string(site.src.join("js/app.js")).unwrap(),
        "JS is not rewritten"
    );
    assert_eq!(
        site.read(&cur["/css/app.css"]),
        app,
        "the hashed copy has the rewritten body"
    );
}

#[test]
fn content_types_are_recorded() {
    let site = shop();
    let m = site.build(5).unwrap().manifest;
    let types = [
        ("/index.html", "text/html; charset=utf-8"),
        ("/css/app.css", "text/css; charset=utf-8"),
        ("/js/app.js", "text/javascript; charset=utf-8"),
        ("/img/logo.svg", "image/svg+xml"),
    ];
    for (path, want) in types {
        assert_eq!(m.lookup(path).unwrap().content_type, want);
        assert_eq!(m.lookup(&m.current()[path]).unwrap().content_type, want);
    }
}

#[test]
fn a_change_keeps_the_old_hashed_files_servable() {
    let site = shop();
    let first = site.build(5).unwrap().manifest;
    site.put(
        "img/bg.svg",
        "<svg xmlns='http://www.w3.org/2000/svg'><circle/></svg>",
    );
    let second = site.build(5).unwrap();
    assert_eq!(second.kept_earlier, 1);
    let m = &second.manifest;
    // The image changed, so did the CSS that names it and the page that names that CSS; the CSS
    // that does not reference the image kept its name.
    for logical in ["/img/bg.svg", "/css/app.css", "/index.html"] {
        assert_ne!(first.current()[logical], m.current()[logical], "{logical}");
    }
    assert_eq!(
        first.current()["/css/base.css"],
        m.current()["/css/base.css"]
    );
    for old in first.current().values() {
        assert!(
            m.lookup(old).is_some_and(|e| e.immutable),
            "{old} still servable"
        );
        assert!(site.out_file(old).exists(), "{old} still on disk");
    }
}

#[test]
fn retention_prunes_builds_beyond_the_limit() {
    let site = Site::new(&[("a.css", "a{color:red}"), ("keep.txt", "same")]);
    let b1 = site.build(2).unwrap().manifest;
    site.put("a.css", "a{color:green}");
    let b2 = site.build(2).unwrap().manifest;
    site.put("a.css", "a{color:blue}");
    let b3 = site.build(2).unwrap();
    let first = &b1.current()["/a.css"];
    assert_eq!(b3.pruned, 1);
    assert!(!site.out_file(first).exists(), "first build's file deleted");
    assert!(b3.manifest.lookup(first).is_none(), "and unlisted");
    assert!(b3.manifest.lookup(&b2.current()["/a.css"]).is_some());
    assert!(site.out_file(&b2.current()["/a.css"]).exists());
    assert!(
        b3.manifest.lookup(&b1.current()["/keep.txt"]).is_some(),
        "unchanged file is current"
    );
    assert_eq!(b3.manifest.builds().len(), 2);
}

#[test]
fn removed_sources_lose_their_unhashed_copy() {
    let site = Site::new(&[("a.css", "a{}"), ("old.txt", "bye")]);
    let b1 = site.build(5).unwrap().manifest;
    fs::remove_file(site.src.join("old.txt")).unwrap();
    let b2 = site.build(5).unwrap();
    assert!(b2.manifest.lookup("/old.txt").is_none());
    assert!(!site.out.join("old.txt").exists());
    assert!(
        b2.manifest.lookup(&b1.current()["/old.txt"]).is_some(),
        "the hashed copy stays for open pages"
    );
}

#[test]
fn unknown_files_in_the_output_are_never_deleted() {
    let site = Site::new(&[("a.css", "1")]);
    site.build(1).unwrap();
    fs::write(site.out.join("mine.txt"), "not the build's").unwrap();
    site.put("a.css", "2");
    site.build(1).unwrap();
    site.put("a.css", "3");
    site.build(1).unwrap();
    assert!(site.out.join("mine.txt").exists());
}

#[test]
fn a_corrupted_hashed_file_fails_the_build_naming_it() {
    let site = shop();
    let m = site.build(5).unwrap().manifest;
    let victim = m.current()["/img/logo.svg"].clone();
    fs::write(site.out_file(&victim), "tampered").unwrap();
    let err = site.build(5).unwrap_err();
    assert!(matches!(err, BuildError::HashMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains(victim.trim_start_matches('/')),
        "{err}"
    );
    // Also for a file of a retained earlier build.
    fs::write(
        site.out_file(&victim),
        fs::read(site.src.join("img/logo.svg")).unwrap(),
    )
    .unwrap();
    site.put(
        "img/logo.svg",
        "<svg xmlns='http://www.w3.org/2000/svg'><path/></svg>",
    );
    site.build(5).unwrap();
    fs::write(site.out_file(&victim), "tampered again").unwrap();
    site.put(
        "img/logo.svg",
        "<svg xmlns='http://www.w3.org/2000/svg'><g/></svg>",
    );
    let err = site.build(5).unwrap_err().to_string();
    assert!(err.contains(victim.trim_start_matches('/')), "{err}");
}

#[test]
fn identical_rebuild_is_a_no_op() {
    let site = shop();
    let first = site.build(5).unwrap();
    let json = site.read(MANIFEST_PATH);
    let again = site.build(5).unwrap();
    assert_eq!(again.manifest, first.manifest);
    assert_eq!(site.read(MANIFEST_PATH), json);
    assert_eq!((again.written, again.pruned, again.kept_earlier), (0, 0, 0));
    assert_eq!(again.manifest.builds().len(), 1);
}

#[test]
fn reference_cycles_are_named() {
    let site = Site::new(&[
        ("a.css", "@import 'b.css';"),
        ("b.css", "@import url(/a.css);"),
    ]);
    let err = site.build(5).unwrap_err();
    let BuildError::Cycle(files) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(files, &["/a.css", "/b.css", "/a.css"]);
    assert!(
        err.to_string().contains("/a.css → /b.css → /a.css"),
        "{err}"
    );
}

#[test]
fn bad_inputs_give_clear_errors() {
    let site = Site::new(&[]);
    let missing = Options {
        src: site.src.join("nope"),
        out: site.out.clone(),
        keep_builds: 5,
    };
    let err = build(&missing).unwrap_err();
    assert!(matches!(err, BuildError::SourceMissing(_)), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");

    assert!(matches!(site.build(0), Err(BuildError::ZeroKeepBuilds)));

    let inside = Options {
        src: site.src.clone(),
        out: site.src.join("dist"),
        keep_builds: 5,
    };
    assert!(matches!(
        build(&inside),
        Err(BuildError::OutputInsideSource { .. })
    ));

    site.put("asset-manifest.json", "{}");
    assert!(matches!(site.build(5), Err(BuildError::ReservedName(_))));
    fs::remove_file(site.src.join("asset-manifest.json")).unwrap();

    fs::write(site.src.join("bad.css"), [0xff, 0xfe]).unwrap();
    let err = site.build(5).unwrap_err();
    assert!(
        matches!(&err, BuildError::NotUtf8(p) if p.ends_with("bad.css")),
        "{err:?}"
    );
}

#[test]
fn an_unreadable_previous_manifest_stops_the_build() {
    let site = Site::new(&[("a.css", "a{}")]);
    fs::create_dir_all(&site.out).unwrap();
    fs::write(site.out.join("asset-manifest.json"), r#"{"version": 9}"#).unwrap();
    let err = site.build(5).unwrap_err();
    assert!(
        matches!(err, BuildError::PreviousManifest { .. }),
        "{err:?}"
    );
    assert!(Path::new(&site.out.join("asset-manifest.json")).exists());
}
