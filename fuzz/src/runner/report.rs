//! After a failure: shrinking the input, and the report that says how to reproduce it.

use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use super::{Failure, SHRINK_TIME, SHRINK_TRIES, execute};
use crate::targets::Target;

/// Shrinks `input` while it still fails the same way: drops ever smaller chunks.
pub fn shrink(target: &Target, input: &[u8], failure: &Failure) -> Vec<u8> {
    let want = failure.identity();
    let started = Instant::now();
    let mut best = input.to_vec();
    let mut tries = 0;
    let mut chunk = (best.len() / 2).max(1);
    while tries < SHRINK_TRIES && started.elapsed() < SHRINK_TIME {
        let mut at = 0;
        let mut progressed = false;
        while at + chunk <= best.len() && tries < SHRINK_TRIES {
            let mut candidate = best.clone();
            candidate.drain(at..at + chunk);
            tries += 1;
            match execute(target, &candidate) {
                Err(f) if f.identity() == want => {
                    best = candidate;
                    progressed = true;
                }
                _ => at += chunk,
            }
        }
        if !progressed {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    best
}

/// Prints a failure with everything needed to reproduce it.
pub fn print_crash(
    out: &mut dyn Write,
    target: &str,
    seed: u64,
    failure: &Failure,
    input: &[u8],
    artifact: Option<&Path>,
    full: Option<&Path>,
) -> io::Result<()> {
    writeln!(
        out,
        "\x1b[1;31mCRASH\x1b[0m in target `{target}` ({}): {}",
        failure.kind(),
        failure.message()
    )?;
    writeln!(out, "    seed {seed}")?;
    if input.len() <= 600 {
        writeln!(
            out,
            "    input ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        )?;
    } else {
        writeln!(out, "    input: {} bytes", input.len())?;
    }
    if let Some(path) = artifact {
        let path = relative(path);
        writeln!(out, "    written to {path}")?;
        if let Some(full) = full {
            writeln!(out, "    (as found, before shrinking: {})", relative(full))?;
        }
        writeln!(
            out,
            "    reproduce: cargo run --profile fuzz -p breakwater-fuzz -- replay {target} {path}"
        )?;
    }
    writeln!(
        out,
        "    search again: cargo run --profile fuzz -p breakwater-fuzz -- run {target} --seed {seed}"
    )
}

/// `path` relative to the current directory when it is inside it.
fn relative(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
