//! The origin's concurrency limit at the edge: a burst far over what a slow origin serves at once
//! gets `503 overloaded` problem+json with `Retry-After` for the excess, promptly, and every
//! request the edge admits is answered `200` by the origin (none waits into the origin timeout).
//!
//! On an edge of its own with the limit on ([`Env::limited`]), in front of a scripted
//! origin that holds every burst request until the test lets it go (a busy origin, with no
//! sleeping): the edge's limit starts at 20 in flight and a request waits for a slot at most
//! about one unloaded round trip (50 ms at least), so of 120 requests at once 20 reach the origin
//! and the rest must be refused, not queued into it. Once every request is either refused or held
//! at the origin, the origin answers the held ones.

use super::{PROMPT_MS, client, ok, send};
use crate::harness::{Env, ORIGIN_TIMEOUT_MS};
use crate::scripted::Gate;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const BURST: usize = 120;
/// How long the test waits for every request to be refused or held at the origin: the origin
/// timeout, since a request the edge kept that long was queued into it, not refused. (The 120
/// requests share the edge's isolate and wrangler's proxy, which on two CPUs take about half a
/// second to get through at all.)
const SETTLE: Duration = Duration::from_millis(ORIGIN_TIMEOUT_MS);

pub fn run(env: &Env) -> Result<(), String> {
    let conf = env.limited()?;
    let client = client();
    let warm = "/c/overload/warm";
    let path = "/c/overload/held";
    conf.origin.script(warm, vec![ok("no-store", "warm")]);
    let gate = Gate::new();
    conf.origin
        .script(path, vec![ok("no-store", "served").held_by(&gate)]);
    let base = conf.edge.clone();
    // A few requests one at a time: the limit learns the origin's unloaded round trip.
    for i in 0..5 {
        let got = env.rt.block_on(send(
            &client,
            &format!("{base}{warm}?i={i}"),
            "GET",
            &[],
            None,
        ))?;
        if got.status != 200 {
            return Err(format!("warming request {i}: status {}", got.status));
        }
    }

    let origin = conf.origin.clone();
    let (outcomes, settled) = env.rt.block_on(async {
        let done = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..BURST {
            let (client, done, answered) = (client.clone(), done.clone(), answered.clone());
            // Distinct keys: each request is its own fill, not a single-flight follower.
            let url = format!("{base}{path}?burst={i}");
            tasks.spawn(async move {
                let started = Instant::now();
                let got = send(&client, &url, "GET", &[], None).await;
                done.fetch_add(1, Ordering::SeqCst);
                answered.notify_one();
                (got, started.elapsed())
            });
        }
        // Every request refused or held at the origin: then the origin may answer.
        let deadline = Instant::now() + SETTLE;
        let settled = loop {
            if done.load(Ordering::SeqCst) + origin.count(path) >= BURST {
                break true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            // Woken by each answer; the deadline bounds a wait on arrivals at the origin.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), answered.notified())
                .await;
        };
        gate.open();
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            out.push(done.map_err(|e| e.to_string()));
        }
        (out, settled)
    });
    if !settled {
        return Err(format!(
            "within {SETTLE:?} the {BURST} requests were neither all refused nor held at the origin ({} reached it)",
            origin.count(path)
        ));
    }

    let limit = Duration::from_millis(PROMPT_MS);
    let (mut served, mut refused, mut failures) = (0, 0, Vec::new());
    for outcome in outcomes {
        let (got, elapsed) = outcome?;
        let got = got?;
        let header = |name: &str| got.header(name).unwrap_or_default();
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
