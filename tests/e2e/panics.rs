//! What a panic costs (README § What a panic costs): the edge never panics on purpose (`src/`
//! denies the constructs that can, and the fuzz targets feed every remote-input parser), but if
//! one ever did, this is what would happen. A scripted edge with `PANIC_PROBE` on is panicked
//! through its admin endpoint while eight requests wait at the origin.
//!
//! Checked: the panicking request gets a `500`, and the next request is served (workers-rs
//! instantiates the wasm module again). Reported, not asserted: what the requests in flight got.
//! With stable Rust's `panic=abort` on wasm32 the module cannot unwind, and the fresh instance
//! cannot resume the old one's work, so they fail (the shim's "Cannot invoke closure from
//! previous WASM instance"); only a build with `panic=unwind` (nightly) could keep them.

use crate::harness::{EDGE_ADMIN_TOKEN, Env};
use crate::scripted::{Answer, Gate};

pub const CASES: [(&str, crate::Case); 1] = [(
    "panics::a_panic_fails_its_request_and_the_next_request_is_served",
    a_panic_fails_its_request_and_the_next_request_is_served,
)];

const IN_FLIGHT: usize = 8;

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn a_panic_fails_its_request_and_the_next_request_is_served(env: &Env) -> Result<(), String> {
    let conf = env.panicky()?;
    let gate = Gate::new();
    for i in 0..IN_FLIGHT {
        conf.origin.script(
            &format!("/c/panic/held-{i}"),
            vec![
                Answer::new(200)
                    .h("Cache-Control", "no-store")
                    .body("held")
                    .held_by(&gate),
            ],
        );
    }
    conf.origin.script(
        "/c/panic/after",
        vec![
            Answer::new(200)
                .h("Cache-Control", "no-store")
                .body("after"),
        ],
    );
    let base = conf.edge.clone();
    let client = reqwest::Client::new();
    let (panicked, held) = env.rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..IN_FLIGHT {
            let (client, url) = (client.clone(), format!("{base}/c/panic/held-{i}"));
            tasks.spawn(async move {
                match client.get(url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            });
        }
        // Wait until every one of them is at the origin: they are in flight in the isolate.
        let held: Vec<String> = (0..IN_FLIGHT)
            .map(|i| format!("/c/panic/held-{i}"))
            .collect();
        if !conf
            .origin
            .reached(&held, std::time::Duration::from_secs(30))
            .await
        {
            return Err("the held requests never reached the origin".to_owned());
        }
        let panicked = client
            .post(format!("{base}/_breakwater/panic"))
            .bearer_auth(EDGE_ADMIN_TOKEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())?;
        gate.open();
        let mut held = Vec::new();
        while let Some(status) = tasks.join_next().await {
            held.push(status.unwrap_or(0));
        }
        Ok::<_, String>((panicked, held))
    })?;
    let served = held.iter().filter(|&&s| s == 200).count();
    eprintln!(
        "    panic probe: {panicked}; {served} of {IN_FLIGHT} requests in flight served, the rest got {:?}",
        held.iter().filter(|&&s| s != 200).collect::<Vec<_>>()
    );
    check(panicked == 500, || {
        format!("the panicking request got {panicked}")
    })?;
    let after = env.send_to(&conf.edge, "GET", "/c/panic/after", &[], None)?;
    check(after.status == 200 && after.body == b"after", || {
        format!("the next request: {} {}", after.status, after.text())
    })
}
