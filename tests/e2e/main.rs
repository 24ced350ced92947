//! End-to-end tests: the real origin (in-process, temp SQLite) behind a fault-injecting TCP
//! proxy, and the real edge under `wrangler dev` (workerd + Miniflare) with its own persist
//! directory and a freshly built assets directory. Requests go over real HTTP on loopback.
//!
//! A custom harness (libtest-mimic) so that one edge and one origin serve every case, and the
//! processes are stopped when the run ends. Cases run one at a time because some switch the
//! fault proxy. `make test` builds the edge first; `cargo test --test e2e` alone needs `make build`.
//!
//! The conformance table (`conformance::*`, RFC 9111 and friends) runs against a third edge of
//! its own, in front of a scripted origin that can answer anything (`scripted.rs`), started by
//! the first of its trials.

#[cfg(not(target_arch = "wasm32"))]
mod admission;
#[cfg(not(target_arch = "wasm32"))]
mod assets;
#[cfg(not(target_arch = "wasm32"))]
mod browser;
#[cfg(not(target_arch = "wasm32"))]
mod cache;
#[cfg(not(target_arch = "wasm32"))]
mod conformance;
#[cfg(not(target_arch = "wasm32"))]
mod dependencies;
#[cfg(not(target_arch = "wasm32"))]
mod harness;
#[cfg(not(target_arch = "wasm32"))]
mod idempotency;
#[cfg(not(target_arch = "wasm32"))]
mod metrics;
#[cfg(not(target_arch = "wasm32"))]
mod origins;
#[cfg(not(target_arch = "wasm32"))]
mod panics;
#[cfg(not(target_arch = "wasm32"))]
mod pipeline;
#[cfg(not(target_arch = "wasm32"))]
mod privacy;
#[cfg(not(target_arch = "wasm32"))]
mod proxy;
#[cfg(not(target_arch = "wasm32"))]
mod scripted;
#[cfg(not(target_arch = "wasm32"))]
mod tiers;
#[cfg(not(target_arch = "wasm32"))]
mod tokens;
#[cfg(not(target_arch = "wasm32"))]
mod upstream;
#[cfg(not(target_arch = "wasm32"))]
mod write_behind;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use libtest_mimic::{Arguments, Trial};
    use std::sync::Arc;

    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    if args.list {
        let trials: Vec<Trial> = cases()
            .into_iter()
            .map(|(name, _)| Trial::test(name, || Ok(())))
            .collect();
        libtest_mimic::run(&args, trials).exit();
    }
    let env = match harness::Env::start() {
        Ok(env) => Arc::new(env),
        Err(e) => {
            eprintln!("e2e: could not start the environment: {e}");
            std::process::exit(1);
        }
    };
    let trials = cases()
        .into_iter()
        .map(|(name, case)| {
            let env = env.clone();
            Trial::test(name, move || case(&env).map_err(Into::into))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    env.stop();
    conclusion.exit();
}

#[cfg(not(target_arch = "wasm32"))]
type Case = fn(&harness::Env) -> Result<(), String>;

#[cfg(not(target_arch = "wasm32"))]
fn cases() -> Vec<(&'static str, Case)> {
    let mut all: Vec<(&'static str, Case)> = Vec::new();
    all.extend(assets::CASES);
    all.extend(pipeline::CASES);
    all.extend(cache::CASES);
    all.extend(tiers::CASES);
    all.extend(upstream::CASES);
    all.extend(idempotency::CASES);
    all.extend(write_behind::CASES);
    all.extend(tokens::CASES);
    all.extend(privacy::CASES);
    all.extend(origins::CASES);
    all.extend(metrics::CASES);
    // Its own edge, without its stores, in front of the shared origin.
    all.extend(dependencies::CASES);
    // Its own edge, panicked on purpose.
    all.extend(panics::CASES);
    // Its own edge and origin: it shares nothing with the cases around it.
    all.extend(conformance::CASES);
    // It trips the breaker (and heals it).
    all.extend(admission::CASES);
    // Last, so the dashboard's screenshots show what every case before did.
    all.extend(browser::CASES);
    all
}

#[cfg(target_arch = "wasm32")]
fn main() {}
