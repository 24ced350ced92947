//! Browser tests: scenarios under `tests/browser/` run in headless Chromium (Debian's package,
//! driven by `playwright-core`) against this suite's edge. `make test` installs Chromium
//! (`scripts/chromium.sh`) and passes it in `BREAKWATER_CHROMIUM`; screenshots are kept under
//! `target/browser/` for review.

use crate::harness::{EDGE_ADMIN_TOKEN, Env};
use crate::write_behind::{DEADLINE, dead_letters, send_event, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const CASES: [(&str, crate::Case); 1] = [(
    "browser::the_dashboard_signs_in_shows_traffic_and_replays_a_dead_letter",
    the_dashboard_signs_in_shows_traffic_and_replays_a_dead_letter,
)];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Chromium binary: `BREAKWATER_CHROMIUM`, else `chromium` on the `PATH`.
fn chromium() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("BREAKWATER_CHROMIUM") {
        return Ok(path.into());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "Chromium was not found: run `make test` (scripts/chromium.sh installs Debian's \
             chromium package) or set BREAKWATER_CHROMIUM"
                .into()
        })
}

/// Runs the scenario `tests/browser/<name>.mjs` with `vars`; its failure message if it fails.
fn scenario(env: &Env, name: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let root = root();
    let bin = root.join("node_modules/.bin");
    if !Path::new(&root.join("node_modules/playwright-core")).exists() {
        return Err("node_modules/playwright-core is missing: run make setup".into());
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(bin.join("node"))
        .current_dir(&root)
        .arg(format!("tests/browser/{name}.mjs"))
        .env("PATH", path)
        .env("BREAKWATER_CHROMIUM", chromium()?)
        .env("EDGE_URL", &env.edge)
        .env("SCREENSHOTS", root.join("target/browser"))
        .envs(vars.iter().copied())
        .output()
        .map_err(|e| format!("node tests/browser/{name}.mjs: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "tests/browser/{name}.mjs failed ({}):\n{}{stdout}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn the_dashboard_signs_in_shows_traffic_and_replays_a_dead_letter(env: &Env) -> Result<(), String> {
    // A view of a product that does not exist: the origin rejects it, so it is dead-lettered
    // at once.
    let id = send_event(env, "views", 99_999_998, 1)?;
    wait_for("the poison event in the dead-letter list", DEADLINE, || {
        Ok(dead_letters(env)?.contains_key(&id))
    })?;
    let summary = scenario(
        env,
        "dashboard",
        &[("ADMIN_TOKEN", EDGE_ADMIN_TOKEN), ("DEAD_LETTER", &id)],
    )?;
    eprintln!("    {}", summary.trim());
    Ok(())
}
