//! breakwater-assetgen: the build step that versions the front end.
//!
//! It reads every file under the source directory, rewrites references in HTML and CSS to
//! content-hashed names (dependencies first), writes an unhashed and a hashed copy of each file,
//! keeps the hashed files of the last N builds so open pages never lose their assets, verifies
//! every listed file against its digest, and writes the manifest the edge serves from. Every
//! decision is made by `breakwater_core::assets`; this crate does the file I/O and the hashing.

mod digest;
mod error;
mod order;
mod output;
mod references;
mod sources;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use breakwater_core::assets::{BuiltFile, Manifest, hashed_name};

pub use digest::{build_id, sha256_hex};
pub use error::BuildError;

use output::Output;

/// What to build, and how many builds stay reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The source tree (`static/`).
    pub src: PathBuf,
    /// The output directory the edge's asset binding serves (`dist/`).
    pub out: PathBuf,
    /// How many builds, the new one included, keep their hashed files servable (at least 1).
    pub keep_builds: usize,
}

/// What a successful build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The manifest now in the output directory.
    pub manifest: Manifest,
    /// Source files hashed.
    pub hashed: usize,
    /// Files written (new or changed), the manifest not counted.
    pub written: usize,
    /// Files deleted: hashed files of builds beyond the retention limit and removed sources.
    pub pruned: usize,
    /// Earlier builds whose hashed files stay servable.
    pub kept_earlier: usize,
}

/// Runs one asset build (see the crate docs). On error nothing is pruned and the previous manifest
/// stays in place.
pub fn build(opts: &Options) -> Result<Report, BuildError> {
    if opts.keep_builds == 0 {
        return Err(BuildError::ZeroKeepBuilds);
    }
    check_directories(opts)?;
    let sources = sources::read_sources(&opts.src)?;
    let order = order::build_order(&references::dependencies(&sources)?)?;

    let mut current = BTreeMap::new();
    let mut bodies = BTreeMap::new();
    let mut built = BTreeMap::new();
    for logical in order {
        let body = references::rewritten(&logical, &sources[&logical], &current)?;
        let sha256 = sha256_hex(&body);
        current.insert(logical.clone(), hashed_name(&logical, &sha256));
        built.insert(
            logical.clone(),
            BuiltFile {
                sha256,
                size: body.len() as u64,
            },
        );
        bodies.insert(logical, body);
    }

    let output = Output::new(&opts.out);
    let previous = output.previous_manifest()?;
    let next = Manifest::next(
        previous.as_ref(),
        &build_id(&built),
        &built,
        opts.keep_builds,
    )?;

    let mut written = 0;
    for (logical, body) in &bodies {
        written += usize::from(output.write_if_missing(&current[logical], body)?);
    }
    for (logical, body) in &bodies {
        written += usize::from(output.write_if_changed(logical, body)?);
    }
    output.verify(&next.manifest)?;
    output.write_manifest(&next.manifest)?;
    let pruned = output.prune(&next.prune)?;

    Ok(Report {
        hashed: bodies.len(),
        written,
        pruned,
        kept_earlier: next.kept_earlier,
        manifest: next.manifest,
    })
}

/// The source must be a directory and the output must not be inside it (the next build would
/// hash its own output).
fn check_directories(opts: &Options) -> Result<(), BuildError> {
    let src = match fs::canonicalize(&opts.src) {
        Ok(src) => src,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BuildError::SourceMissing(opts.src.clone()));
        }
        Err(e) => return Err(BuildError::io("reading", &opts.src)(e)),
    };
    if !src.is_dir() {
        return Err(BuildError::SourceNotDirectory(opts.src.clone()));
    }
    fs::create_dir_all(&opts.out).map_err(BuildError::io("creating", &opts.out))?;
    let out = fs::canonicalize(&opts.out).map_err(BuildError::io("reading", &opts.out))?;
    if out.starts_with(&src) {
        return Err(BuildError::OutputInsideSource {
            src: opts.src.clone(),
            out: opts.out.clone(),
        });
    }
    Ok(())
}
