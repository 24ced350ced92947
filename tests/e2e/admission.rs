//! Admission control: GCRA limits in `RATE_LIMITER` (429 and its headers, leases, spoofed
//! forwarding headers, a bucket surviving an edge restart, plans by API key), and the circuit
//! breaker and load shedding reacting to a failing origin and recovering when it heals.
//!
//! The harness's `ADMISSION` policy gives each case its own path prefix under `/api/limited/`;
//! the origin answers those 404 (admitted, not an error, not cached).

use crate::harness::{Env, PRO_API_KEY, Reply};
use crate::proxy::Mode;
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 7] = [
    (
        "admission::a_burst_gets_429_with_ratelimit_headers",
        a_burst_gets_429_with_ratelimit_headers,
    ),
    (
        "admission::concurrent_requests_admit_exactly_the_burst",
        concurrent_requests_admit_exactly_the_burst,
    ),
    (
        "admission::leases_never_admit_more_than_the_burst",
        leases_never_admit_more_than_the_burst,
    ),
    (
        "admission::spoofed_forwarding_headers_share_one_bucket",
        spoofed_forwarding_headers_share_one_bucket,
    ),
    (
        "admission::an_api_key_gets_its_plan",
        an_api_key_gets_its_plan,
    ),
    (
        "admission::a_bucket_survives_an_edge_restart",
        a_bucket_survives_an_edge_restart,
    ),
    (
        "admission::a_failing_origin_trips_the_breaker_and_sheds_then_both_recover",
        a_failing_origin_trips_the_breaker_and_sheds_then_both_recover,
    ),
];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn problem_type(r: &Reply) -> String {
    r.json()
        .ok()
        .and_then(|j| j["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn fire(env: &Env, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
    env.get(path, headers)
}

fn a_burst_gets_429_with_ratelimit_headers(env: &Env) -> Result<(), String> {
    let path = "/api/limited/burst";
    for i in 0..5u32 {
        let r = fire(env, path, &[])?;
        check(r.status == 404, || {
            format!("request {i}: status {} {}", r.status, r.text())
        })?;
        let state = r.header("ratelimit").unwrap_or_default();
        check(
            state.starts_with(&format!("\"per-minute\";r={};t=", 4 - i)),
            || format!("request {i}: RateLimit {state:?}"),
        )?;
        check(
            r.header("ratelimit-policy") == Some("\"per-minute\";q=5;w=60"),
            || format!("RateLimit-Policy {:?}", r.header("ratelimit-policy")),
        )?;
    }
    let denied = fire(env, path, &[])?;
    check(denied.status == 429, || {
        format!("6th: status {}", denied.status)
    })?;
    check(
        denied.header("content-type") == Some("application/problem+json"),
        || format!("{:?}", denied.header("content-type")),
    )?;
    // One token every 12 s: the wait is at most that, and at least a second.
    let retry: u64 = denied
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .ok_or("no integer Retry-After")?;
    check((1..=12).contains(&retry), || format!("Retry-After {retry}"))?;
    let state = denied.header("ratelimit").unwrap_or_default();
    check(state.starts_with("\"per-minute\";r=0;t="), || {
        format!("RateLimit on 429 {state:?}")
    })
}

fn concurrent_requests_admit_exactly_the_burst(env: &Env) -> Result<(), String> {
    const N: usize = 200;
    const BURST: usize = 50;
    let url = format!("{}/api/limited/concurrent", env.edge);
    let statuses: Vec<Result<u16, String>> = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
                    Ok(r.status().as_u16())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    });
    let statuses: Vec<u16> = statuses.into_iter().collect::<Result<_, _>>()?;
    let admitted = statuses.iter().filter(|&&s| s == 404).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    eprintln!("    {N} concurrent requests, burst {BURST}: {admitted} admitted, {limited} limited");
    check(admitted == BURST && limited == N - BURST, || {
        format!(
            "{admitted} admitted, {limited} limited; others: {:?}",
            statuses
                .iter()
                .filter(|s| **s != 404 && **s != 429)
                .collect::<Vec<_>>()
        )
    })
}

/// A lease route (`"mode": "lease"`): a steady client is admitted without a round trip per
/// request (its first request's lease covers the next ones), and however many arrive at once
/// afterwards, no more than the burst is ever admitted in all, as in exact mode.
fn leases_never_admit_more_than_the_burst(env: &Env) -> Result<(), String> {
    const BURST: usize = 50;
    const STEADY: usize = 20;
    const AT_ONCE: usize = 200;
    let url = format!("{}/api/limited/leased", env.edge);
    let statuses: Vec<u16> = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let mut out = Vec::new();
        for _ in 0..STEADY {
            let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
            out.push(r.status().as_u16());
        }
        let tasks: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
                    Ok::<u16, String>(r.status().as_u16())
                })
            })
            .collect();
        for t in tasks {
            out.push(t.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(out)
    })?;
    let (steady, at_once) = statuses.split_at(STEADY);
    let admitted = |s: &[u16]| s.iter().filter(|&&s| s == 404).count();
    let others: Vec<&u16> = statuses
        .iter()
        .filter(|s| **s != 404 && **s != 429)
        .collect();
    eprintln!(
        "    lease route, burst {BURST}: {} of {STEADY} steady admitted, then {} of {AT_ONCE} \
         at once",
        admitted(steady),
        admitted(at_once)
    );
    check(admitted(steady) == STEADY, || {
        format!("a steady client was refused: {steady:?}")
    })?;
    check(admitted(&statuses) <= BURST && others.is_empty(), || {
        format!(
            "{} admitted in all, burst {BURST}; other statuses {others:?}",
            admitted(&statuses)
        )
    })
}

fn spoofed_forwarding_headers_share_one_bucket(env: &Env) -> Result<(), String> {
    let path = "/api/limited/spoof";
    let mut statuses = Vec::new();
    for i in 0..12 {
        let fake = format!("203.0.113.{i}");
        let r = fire(
            env,
            path,
            &[
                ("x-forwarded-for", &fake),
                ("true-client-ip", &fake),
                ("x-real-ip", &fake),
            ],
        )?;
        statuses.push(r.status);
    }
    let admitted = statuses.iter().filter(|&&s| s == 404).count();
    check(admitted == 3, || {
        format!("{admitted} admitted of 12: {statuses:?}")
    })?;
    check(statuses[3..].iter().all(|&s| s == 429), || {
        format!("{statuses:?}")
    })
}

fn an_api_key_gets_its_plan(env: &Env) -> Result<(), String> {
    let path = "/api/limited/plans";
    for i in 0..6 {
        let r = fire(env, path, &[("x-api-key", PRO_API_KEY)])?;
        check(r.status == 404, || {
            format!("pro request {i}: status {}", r.status)
        })?;
    }
    let r = fire(env, path, &[("x-api-key", PRO_API_KEY)])?;
    check(
        r.header("ratelimit-policy") == Some("\"per-minute\";q=10;w=60"),
        || format!("pro policy {:?}", r.header("ratelimit-policy")),
    )?;
    // The address's own bucket is untouched by the key's and has the default quota.
    let statuses: Vec<u16> = (0..3)
        .map(|_| fire(env, path, &[]).map(|r| r.status))
        .collect::<Result<_, _>>()?;
    check(statuses == [404, 404, 429], || {
        format!("anonymous: {statuses:?}")
    })?;
    let unknown = fire(env, path, &[("x-api-key", "not-a-key")])?;
    check(unknown.status == 401, || {
        format!("unknown key: {}", unknown.status)
    })?;
    check(problem_type(&unknown).ends_with("unknown-api-key"), || {
        unknown.text()
    })
}

fn a_bucket_survives_an_edge_restart(env: &Env) -> Result<(), String> {
    let path = "/api/limited/restart";
    let statuses: Vec<u16> = (0..4)
        .map(|_| fire(env, path, &[]).map(|r| r.status))
        .collect::<Result<_, _>>()?;
    check(statuses == [404, 404, 404, 429], || {
        format!("before: {statuses:?}")
    })?;
    env.restart_edge()?;
    // A new isolate knows nothing of the denial; the object's stored bucket does.
    let after = fire(env, path, &[])?;
    check(after.status == 429, || {
        format!(
            "after restart: status {} (the bucket was reset)",
            after.status
        )
    })
}

/// Sends GETs to `path` until `done` holds for an answer (at most `limit`), returning them all.
fn until(
    env: &Env,
    path: &str,
    limit: Duration,
    done: impl Fn(&Reply) -> bool,
) -> Result<Vec<Reply>, String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let r = fire(env, path, &[])?;
        let finished = done(&r);
        seen.push(r);
        if finished {
            return Ok(seen);
        }
        if Instant::now() > deadline {
            let statuses: Vec<String> = seen
                .iter()
                .map(|r| format!("{} {}", r.status, problem_type(r)))
                .collect();
            return Err(format!("gave up after {limit:?}: {statuses:?}"));
        }
    }
}

fn a_failing_origin_trips_the_breaker_and_sheds_then_both_recover(env: &Env) -> Result<(), String> {
    // A critical route is never shed (the harness's fraction floor is 0.5): it shows the breaker.
    // A low-priority route is shed first: it shows the controller.
    let critical = "/api/limited/critical/x";
    let low = "/api/limited/low/x";
    let is = |kind: &'static str| move |r: &Reply| problem_type(r).ends_with(kind);
    env.proxy.set(Mode::Refuse);
    let failing = until(
        env,
        critical,
        Duration::from_secs(30),
        is("origin-circuit-open"),
    )
    .and_then(|seen| {
        Ok((
            seen,
            until(env, low, Duration::from_secs(30), is("overloaded"))?,
        ))
    });
    env.proxy.set(Mode::Pass);
    let (tripping, shedding) = failing?;
    check(tripping.iter().any(is("origin-unreachable")), || {
        "the breaker opened before any origin failure".into()
    })?;
    let open = tripping.last().unwrap();
    check(
        open.status == 503 && open.header("retry-after").is_some(),
        || {
            format!(
                "breaker open: {} {:?}",
                open.status,
                open.header("retry-after")
            )
        },
    )?;
    let shed = shedding.last().unwrap();
    check(
        shed.status == 503 && shed.header("retry-after").is_some(),
        || format!("shed: {} {:?}", shed.status, shed.header("retry-after")),
    )?;
    // Healed: a half-open probe closes the breaker, then the admission fraction climbs back.
    until(env, critical, Duration::from_secs(30), |r| r.status == 404)?;
    until(env, low, Duration::from_secs(30), |r| r.status == 404).map(|_| ())
}
