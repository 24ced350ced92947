//! Containment: a foreign origin's broken answers (status 999, a 103 then 999, invalid header
//! bytes) must fail only the requests they answer. 50 ordinary cacheable requests to distinct
//! paths run concurrently with requests drawing those answers; every ordinary one must get its
//! 200 and body within the origin timeout plus a second, and afterwards a path warmed into the
//! memory tier before the storm is still served without the origin: the isolate kept its memory
//! (a panic would have killed it, and with it the tier).

use super::{PROMPT_MS, client, ok, send};
use crate::harness::Env;
use crate::scripted::Answer;
use std::time::{Duration, Instant};

const ORDINARY: usize = 50;
const HOSTILE_EACH: usize = 5;

pub fn run(env: &Env) -> Result<(), String> {
    let conf = env.conformance()?;
    let client = client();
    let warm = "/c/containment/warm";
    conf.origin.script(
        warm,
        vec![ok("max-age=600", "warm"), ok("no-store", "refetched")],
    );
    let base = conf.edge.clone();
    let warmed = env
        .rt
        .block_on(send(&client, &format!("{base}{warm}"), "GET", &[], None))?;
    if warmed.status != 200 || warmed.body != b"warm" {
        return Err(format!(
            "warming: {} {:?}",
            warmed.status,
            String::from_utf8_lossy(&warmed.body)
        ));
    }

    let hostile: [(&str, Answer); 3] = [
        (
            "/c/containment/999",
            Answer::new(999)
                .h("Cache-Control", "max-age=100")
                .body("odd"),
        ),
        (
            "/c/containment/103-999",
            Answer::new(999)
                .interim(103, &["Link: </a.css>; rel=preload"])
                .body("odd"),
        ),
        (
            "/c/containment/bad-byte",
            Answer::new(200)
                .h("Cache-Control", "max-age=100")
                .raw_field(b"X-Bad: a\x01b")
                .body("odd"),
        ),
    ];
    for (path, answer) in &hostile {
        conf.origin.script(path, vec![answer.clone()]);
    }
    for i in 0..ORDINARY {
        let path = format!("/c/containment/ordinary-{i}");
        conf.origin
            .script(&path, vec![ok("max-age=100", &format!("ordinary-{i}"))]);
    }

    let outcomes = env.rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..ORDINARY {
            let client = client.clone();
            let url = format!("{base}/c/containment/ordinary-{i}");
            tasks.spawn(async move {
                let started = Instant::now();
                let got = send(&client, &url, "GET", &[], None).await;
                (Some(i), got.map(|g| (g.status, g.body)), started.elapsed())
            });
        }
        for round in 0..HOSTILE_EACH {
            for (path, _) in &hostile {
                let client = client.clone();
                let url = format!("{base}{path}?round={round}");
                tasks.spawn(async move {
                    let started = Instant::now();
                    let got = send(&client, &url, "GET", &[], None).await;
                    (None, got.map(|g| (g.status, g.body)), started.elapsed())
                });
            }
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            out.push(done.map_err(|e| e.to_string()));
        }
        out
    });

    let mut failures = Vec::new();
    let limit = Duration::from_millis(PROMPT_MS);
    let mut ordinary_ok = 0;
    for outcome in outcomes {
        let (which, got, elapsed) = outcome?;
        match which {
            Some(i) => {
                let want = format!("ordinary-{i}");
                match got {
                    Ok((200, body)) if body == want.as_bytes() && elapsed <= limit => ordinary_ok += 1,
                    Ok((status, body)) => failures.push(format!(
                        "ordinary-{i}: {status} {:?} after {elapsed:?} (want 200 {want:?} within {limit:?})",
                        String::from_utf8_lossy(&body)
                    )),
                    Err(e) => failures.push(format!("ordinary-{i}: {e} after {elapsed:?}")),
                }
            }
            None => {
                // The hostile ones may fail, but not hang.
                if elapsed > limit {
                    failures.push(format!("a hostile request took {elapsed:?} (> {limit:?})"));
                }
            }
        }
    }
    let before = conf.origin.count(warm);
    let after = env
        .rt
        .block_on(send(&client, &format!("{base}{warm}"), "GET", &[], None))?;
    let reached = conf.origin.count(warm) - before;
    if after.status != 200 || after.body != b"warm" || reached != 0 {
        failures.push(format!(
            "the warmed path after the storm: {} {:?}, origin contacted {reached} times (want a memory hit: the isolate survived)",
            after.status,
            String::from_utf8_lossy(&after.body)
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{ordinary_ok} of {ORDINARY} ordinary requests succeeded:\n  {}",
            failures.join("\n  ")
        ))
    }
}
