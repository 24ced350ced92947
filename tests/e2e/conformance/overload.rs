//! The origin's concurrency limit at the edge: a burst far over what a slow origin serves at once
//! gets `503 overloaded` problem+json with `Retry-After` for the excess, promptly, and every
//! request the edge admits is answered `200` by the origin (none waits into the origin timeout).
//!
//! On an edge of its own with the limit on ([`Env::limited`]), in front of a scripted origin
//! that takes 200 ms per request and serves any number at once; the edge's limit
//! starts at 20 in flight and a request waits for a slot at most about one unloaded round trip,
//! so of 120 requests at once at most a few dozen can be admitted in time: the rest must be
//! refused, not queued into the origin.

use super::{PROMPT_MS, client, ok, send};
use crate::harness::Env;
use std::time::{Duration, Instant};

const BURST: usize = 120;
const SERVICE_MS: u64 = 200;

pub fn run(env: &Env) -> Result<(), String> {
    let conf = env.limited()?;
    let client = client();
    let path = "/c/overload/slow";
    conf.origin
        .script(path, vec![ok("no-store", "served").service_ms(SERVICE_MS)]);
    let base = conf.edge.clone();
    // A few requests one at a time: the limit learns the origin's unloaded round trip.
    for i in 0..5 {
        let got = env.rt.block_on(send(
            &client,
            &format!("{base}{path}?warm={i}"),
            "GET",
            &[],
            None,
        ))?;
        if got.status != 200 {
            return Err(format!("warming request {i}: status {}", got.status));
        }
    }

    let outcomes = env.rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..BURST {
            let client = client.clone();
            // Distinct keys: each request is its own fill, not a single-flight follower.
            let url = format!("{base}{path}?burst={i}");
            tasks.spawn(async move {
                let started = Instant::now();
                let got = send(&client, &url, "GET", &[], None).await;
                (got, started.elapsed())
            });
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            out.push(done.map_err(|e| e.to_string()));
        }
        out
    });

    let limit = Duration::from_millis(PROMPT_MS);
    let (mut served, mut refused, mut failures) = (0, 0, Vec::new());
    for outcome in outcomes {
        let (got, elapsed) = outcome?;
        let got = got?;
        let header = |name: &str| {
            got.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        match got.status {
            200 if got.body == b"served" => served += 1,
            503 if header("content-type") == "application/problem+json"
                && String::from_utf8_lossy(&got.body).contains("overloaded")
                && header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1) =>
            {
                refused += 1
            }
            status => failures.push(format!(
                "{status} {:?} (want 200 served, or 503 overloaded with Retry-After)",
                String::from_utf8_lossy(&got.body)
            )),
        }
        if elapsed > limit {
            failures.push(format!("an answer took {elapsed:?} (> {limit:?})"));
        }
    }
    if refused == 0 {
        failures.push(format!(
            "all {served} of {BURST} were admitted: the limit refused none of a burst six times its start"
        ));
    }
    if failures.is_empty() {
        println!("    overload: {served} served, {refused} refused of {BURST} at once");
        Ok(())
    } else {
        Err(format!(
            "{served} served, {refused} refused of {BURST}:\n  {}",
            failures.join("\n  ")
        ))
    }
}
