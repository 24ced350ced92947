//! Browser tests: scenarios under `tests/browser/` run in headless Chromium (Debian's package,
//! driven by `playwright-core`) against this suite's edge. `make test` installs Chromium
//! (`scripts/chromium.sh`) and passes it in `BREAKWATER_CHROMIUM`; screenshots are kept under
//! `target/browser/` for review.

use crate::harness::{EDGE_ADMIN_TOKEN, Env};
use crate::proxy::Mode;
use crate::write_behind::{DEADLINE, dead_letters, send_event, wait_for};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 5] = [
    (
        "browser::the_shop_renders_paginates_and_opens_a_product",
        the_shop_renders_paginates_and_opens_a_product,
    ),
    (
        "browser::an_origin_outage_shows_the_error_banner_with_a_request_id",
        an_origin_outage_shows_the_error_banner_with_a_request_id,
    ),
    (
        "browser::a_double_clicked_checkout_with_a_dropped_answer_makes_one_order",
        a_double_clicked_checkout_with_a_dropped_answer_makes_one_order,
    ),
    (
        "browser::a_page_of_the_previous_build_loads_every_asset",
        a_page_of_the_previous_build_loads_every_asset,
    ),
    (
        "browser::the_dashboard_signs_in_shows_traffic_and_replays_a_dead_letter",
        the_dashboard_signs_in_shows_traffic_and_replays_a_dead_letter,
    ),
];

/// A catalogue page no other case reads, so no cache tier holds it.
const UNCACHED_PAGE: &str = "333";

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
    let child = start_scenario(env, name, vars)?;
    finish_scenario(name, child)
}

/// Starts the scenario `tests/browser/<name>.mjs` with `vars`, for a case that acts while it runs.
fn start_scenario(env: &Env, name: &str, vars: &[(&str, &str)]) -> Result<Child, String> {
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
    Command::new(bin.join("node"))
        .current_dir(&root)
        .arg(format!("tests/browser/{name}.mjs"))
        .env("PATH", path)
        .env("BREAKWATER_CHROMIUM", chromium()?)
        .env("EDGE_URL", &env.edge)
        .env("SCREENSHOTS", root.join("target/browser"))
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("node tests/browser/{name}.mjs: {e}"))
}

/// Waits for a scenario: its summary (stdout), or its failure message.
fn finish_scenario(name: &str, child: Child) -> Result<String, String> {
    let output = child
        .wait_with_output()
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

fn the_shop_renders_paginates_and_opens_a_product(env: &Env) -> Result<(), String> {
    let summary = scenario(env, "shop", &[("PHASE", "browse")])?;
    eprintln!("    {}", summary.trim());
    Ok(())
}

fn an_origin_outage_shows_the_error_banner_with_a_request_id(env: &Env) -> Result<(), String> {
    env.proxy.set(Mode::Refuse);
    let outcome = scenario(
        env,
        "shop",
        &[("PHASE", "outage"), ("UNCACHED_PAGE", UNCACHED_PAGE)],
    );
    env.proxy.set(Mode::Pass);
    eprintln!("    {}", outcome?.trim());
    Ok(())
}

/// The request line of an order, as the fault proxy sees it.
const ORDER: &str = "POST /api/orders ";

fn a_double_clicked_checkout_with_a_dropped_answer_makes_one_order(
    env: &Env,
) -> Result<(), String> {
    let shopper = format!("shopper-{}@example.com", std::process::id());
    let mut child = start_scenario(env, "shop", &[("PHASE", "checkout"), ("SHOPPER", &shopper)])?;
    // The scenario signs up and fills the cart, then says so and waits for a line on stdin.
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l == "ready-to-check-out");
    if !ready {
        return Err(finish_scenario("shop", child)
            .err()
            .unwrap_or_else(|| "the checkout scenario ended before the checkout".into()));
    }
    // The origin's first answer to the order is cut after it committed; then the proxy passes.
    let dropped_before = env.proxy.dropped(ORDER);
    env.proxy.set(Mode::DropResponse);
    // Nothing returns early from here until the proxy passes again: the cases after this one
    // need their answers.
    let mut stdin = child.stdin.take();
    let sent = stdin.as_mut().map(|s| writeln!(s, "go"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let dropped = matches!(sent, Some(Ok(())))
        && loop {
            if env.proxy.dropped(ORDER) > dropped_before {
                break true;
            }
            let exited = !matches!(child.try_wait(), Ok(None));
            if exited || Instant::now() > deadline {
                break false;
            }
            std::thread::park_timeout(Duration::from_millis(10));
        };
    env.proxy.set(Mode::Pass);
    drop(stdin);
    finish_scenario("shop", child)?;
    let summary: Vec<String> = lines.map_while(Result::ok).collect();
    eprintln!("    {}", summary.join(" ").trim());
    if !dropped {
        return Err("no order's answer was dropped on its way back from the origin".into());
    }
    let orders = orders_of(env, &shopper)?;
    if orders != 1 {
        return Err(format!(
            "{shopper} has {orders} orders in the database, not 1"
        ));
    }
    Ok(())
}

/// Orders in the origin's database of the account `email`.
fn orders_of(env: &Env, email: &str) -> Result<i64, String> {
    let breakwater_origin::Db::Sqlite(pool) = &env.origin_db else {
        return Err("the e2e origin runs on SQLite".into());
    };
    let sql = "SELECT COUNT(*) FROM orders o JOIN users u ON o.principal = 'user:' || u.id \
               WHERE u.email = ?";
    env.rt
        .block_on(sqlx::query_scalar(sql).bind(email).fetch_one(pool))
        .map_err(|e| e.to_string())
}

fn a_page_of_the_previous_build_loads_every_asset(env: &Env) -> Result<(), String> {
    let old = env
        .first_build
        .current()
        .get("/index.html")
        .ok_or("the first build has no /index.html")?
        .clone();
    if env.second_build.current().get("/index.html") == Some(&old) {
        return Err("both builds have the same front page: nothing to show".into());
    }
    let summary = scenario(env, "shop", &[("PHASE", "old-page"), ("OLD_PAGE", &old)])?;
    eprintln!("    {}", summary.trim());
    Ok(())
}
