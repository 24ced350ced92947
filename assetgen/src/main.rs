//! `breakwater-assetgen`: versions `static/` into the directory the edge serves assets from.
//! Run by `make dev` and by wrangler's build command (scripts/build-edge.sh).

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use breakwater_assetgen::{Options, build};
use clap::Parser;

/// Hash every file under --src, rewrite HTML/CSS references to hashed names, and write the
/// hashed copies and asset-manifest.json into --out.
#[derive(Debug, Parser)]
#[command(name = "breakwater-assetgen", version)]
struct Cli {
    /// Source directory of the front end.
    #[arg(long, default_value = "static")]
    src: PathBuf,
    /// Output directory (the wrangler assets directory).
    #[arg(long, default_value = "dist")]
    out: PathBuf,
    /// Builds whose hashed files stay servable, the new one included, so pages opened before a
    /// deploy keep loading their assets.
    #[arg(
        long,
        env = "BREAKWATER_KEEP_BUILDS",
        default_value_t = 5,
        value_parser = at_least_one
    )]
    keep_builds: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        src: cli.src,
        out: cli.out,
        keep_builds: cli.keep_builds,
    };
    match build(&opts) {
        Ok(report) => {
            let id = report.manifest.build_id();
            println!(
                "assets: hashed {} files from {} → {} (build {}…, wrote {} files, kept {} earlier builds, pruned {} files)",
                report.hashed,
                dir(&opts.src),
                dir(&opts.out),
                &id[..8.min(id.len())],
                report.written,
                report.kept_earlier,
                report.pruned,
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            let mut message = format!("assets: error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1: the current build is always kept".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `static/`: a directory shown with its trailing slash, as in the rest of the tooling output.
fn dir(path: &std::path::Path) -> String {
    let shown = path.display().to_string();
    if shown.ends_with('/') {
        shown
    } else {
        format!("{shown}/")
    }
}
