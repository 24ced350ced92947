//! Several origins (`ORIGINS`): a second edge ([`Env::pool`]) balances over two origins, each
//! behind a fault proxy of its own. Traffic spreads over both; an origin that stops answering is
//! ejected (a few refusals, then none while it is out) and no GET fails meanwhile, each refused
//! one being retried on the other origin, while a POST without an idempotency key is not
//! repeated; the origin comes back when it heals; with both down the ejection cap keeps one in
//! rotation, so requests still try an origin and fail as problem+json rather than finding none.
//! Active health checks (the cron trigger, fired through `/__scheduled`) take an origin out after
//! two failed checks and put it back after two passed ones.
//!
//! Paths under `/api/pool/` are bypassed by the cache policy and answered 404 by both origins:
//! every request reaches an origin and none is an error unless the proxy makes it one.

use crate::harness::{EDGE_ADMIN_TOKEN, Env, Pool, Reply};
use crate::proxy::Mode;
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 4] = [
    (
        "origins::traffic_is_spread_over_both",
        traffic_is_spread_over_both,
    ),
    (
        "origins::a_killed_origin_is_ejected_and_no_get_fails",
        a_killed_origin_is_ejected_and_no_get_fails,
    ),
    (
        "origins::an_origin_failing_health_checks_is_avoided_until_it_passes_them",
        an_origin_failing_health_checks_is_avoided_until_it_passes_them,
    ),
    (
        "origins::the_ejection_cap_keeps_an_origin_to_try",
        the_ejection_cap_keeps_an_origin_to_try,
    ),
];

/// `POOL_EJECTION`'s failures in a row that eject, and its first ejection period.
const CONSECUTIVE_FAILURES: usize = 3;
const BASE_EJECTION: Duration = Duration::from_millis(1500);

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn get(env: &Env, pool: &Pool, path: &str) -> Result<Reply, String> {
    env.send_to(&pool.edge, "GET", path, &[], None)
}

fn failed(r: &Reply) -> bool {
    r.status >= 500
}

fn traffic_is_spread_over_both(env: &Env) -> Result<(), String> {
    let pool = env.pool()?;
    let before = [pool.proxies[0].gets(), pool.proxies[1].gets()];
    for i in 0..20 {
        let r = get(env, pool, &format!("/api/pool/spread/{i}"))?;
        check(!failed(&r), || {
            format!("GET {i}: {}: {}", r.status, r.text())
        })?;
    }
    let served = [
        pool.proxies[0].gets() - before[0],
        pool.proxies[1].gets() - before[1],
    ];
    check(served[0] + served[1] >= 20, || {
        format!("only {served:?} of 20 requests reached an origin")
    })?;
    // Round robin while nothing differs markedly: about half each.
    check(served.iter().all(|&n| n >= 5), || {
        format!("requests per origin: {served:?}")
    })
}

fn a_killed_origin_is_ejected_and_no_get_fails(env: &Env) -> Result<(), String> {
    let pool = env.pool()?;
    let [a, b] = &pool.proxies;
    b.set(Mode::Refuse);

    // A POST without an Idempotency-Key is never repeated: the first to land on the killed
    // origin fails, and the other origin never sees it.
    let a_posts = a.posts();
    let mut posts = 0;
    let failed_post = loop {
        let r = env.send_to(
            &pool.edge,
            "POST",
            &format!("/api/pool/post/{posts}"),
            &[],
            Some("{}"),
        );
        posts += 1;
        match r {
            Ok(r) if failed(&r) => break Ok(r),
            Ok(_) if posts < 20 => {}
            Ok(_) => break Err("20 POSTs and none went to the killed origin".to_owned()),
            Err(e) => break Err(e),
        }
    };
    let failed_post = match failed_post {
        Ok(r) => r,
        Err(e) => {
            b.set(Mode::Pass);
            return Err(e);
        }
    };
    let posts_at_a = a.posts() - a_posts;

    let refused_before = b.refused();
    let started = Instant::now();
    let outage: Result<Vec<Reply>, String> = (0..CONSECUTIVE_FAILURES + 50)
        .map(|i| get(env, pool, &format!("/api/pool/outage/{i}")))
        .collect();
    let elapsed = started.elapsed();
    let refused = b.refused() - refused_before;
    b.set(Mode::Pass);
    check(
        failed_post.status == 502
            && failed_post.header("content-type") == Some("application/problem+json"),
        || {
            format!(
                "the refused POST: {} {}",
                failed_post.status,
                failed_post.text()
            )
        },
    )?;
    check(posts_at_a == posts - 1, || {
        format!("{posts} POSTs, {posts_at_a} at the live origin: the refused one was repeated")
    })?;
    let outage = outage?;
    println!(
        "    {} GETs during the outage ({elapsed:?}): {refused} refused by the killed origin",
        outage.len()
    );
    for r in &outage {
        check(!failed(r), || {
            format!("a GET failed during the outage: {} {}", r.status, r.text())
        })?;
    }
    // Without ejection about half would go to the killed origin. With it: the refusals that
    // eject it (one already spent by the POST), then one each time it comes back (periods only
    // grow, so at most once per base period).
    let allowed =
        CONSECUTIVE_FAILURES + 1 + (elapsed.as_millis() / BASE_EJECTION.as_millis()) as usize;
    check(refused >= 1 && refused as usize <= allowed, || {
        format!("{refused} GETs went to the killed origin (allowed 1..={allowed})")
    })?;

    // Healed: once its ejection ends it takes traffic again.
    let before = b.gets();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while b.gets() == before {
        check(Instant::now() < deadline, || {
            "the healed origin got no traffic within 20 s".into()
        })?;
        let r = get(env, pool, &format!("/api/pool/healed/{n}"))?;
        check(!failed(&r), || {
            format!("after healing: {} {}", r.status, r.text())
        })?;
        n += 1;
    }
    let a_before = a.gets();
    let b_before = b.gets();
    for i in 0..10 {
        let r = get(env, pool, &format!("/api/pool/after/{i}"))?;
        check(!failed(&r), || {
            format!("after healing: {} {}", r.status, r.text())
        })?;
    }
    check(a.gets() > a_before && b.gets() > b_before, || {
        format!(
            "after healing: {} and {} requests",
            a.gets() - a_before,
            b.gets() - b_before
        )
    })
}

/// Fires the pool edge's cron trigger (health checks due at every run) and waits for it.
fn run_health_checks(env: &Env, pool: &Pool) -> Result<(), String> {
    let r = get(env, pool, "/__scheduled?cron=*+*+*+*+*")?;
    check(r.status == 200, || {
        format!("/__scheduled: {} {}", r.status, r.text())
    })
}

/// The second origin in `GET /_breakwater/origins`.
fn second_origin(env: &Env, pool: &Pool) -> Result<serde_json::Value, String> {
    let auth = format!("Bearer {EDGE_ADMIN_TOKEN}");
    let r = env.send_to(
        &pool.edge,
        "GET",
        "/_breakwater/origins",
        &[("authorization", auth.as_str())],
        None,
    )?;
    check(r.status == 200, || {
        format!("/_breakwater/origins: {} {}", r.status, r.text())
    })?;
    Ok(r.json()?["origins"][1].clone())
}

/// Polls the admin view until the isolate (which learns health with its periodic report to
/// CONTROL) believes the second origin `healthy`, and it is not passively ejected.
fn wait_for_isolate(env: &Env, pool: &Pool, healthy: bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = second_origin(env, pool)?;
        if view["isolate"]["healthy"] == healthy && view["isolate"]["ejected"] == false {
            return Ok(());
        }
        check(Instant::now() < deadline, || {
            format!("the isolate did not learn healthy={healthy} within 20 s: {view}")
        })?;
    }
}

fn an_origin_failing_health_checks_is_avoided_until_it_passes_them(
    env: &Env,
) -> Result<(), String> {
    let pool = env.pool()?;
    let [_, b] = &pool.proxies;
    b.set(Mode::Refuse);
    let down = (|| {
        // Two failed checks in a row (POOL_HEALTH) make it unhealthy, one does not.
        run_health_checks(env, pool)?;
        let view = second_origin(env, pool)?;
        check(view["health"]["healthy"] == true, || {
            format!("unhealthy after one failed check: {view}")
        })?;
        run_health_checks(env, pool)?;
        let view = second_origin(env, pool)?;
        check(
            view["health"]["healthy"] == false && view["health"]["detail"].is_string(),
            || format!("still healthy after two failed checks: {view}"),
        )?;
        wait_for_isolate(env, pool, false)?;
        // No request goes to it, so none is refused and none needs a retry.
        let refused = b.refused();
        for i in 0..20 {
            let r = get(env, pool, &format!("/api/pool/unhealthy/{i}"))?;
            check(!failed(&r), || {
                format!("GET {i}: {} {}", r.status, r.text())
            })?;
        }
        check(b.refused() == refused, || {
            format!(
                "{} requests went to the unhealthy origin",
                b.refused() - refused
            )
        })
    })();
    b.set(Mode::Pass);
    down?;

    // Healed, it stays out until it has passed two checks in a row.
    run_health_checks(env, pool)?;
    let view = second_origin(env, pool)?;
    check(view["health"]["healthy"] == false, || {
        format!("healthy after one passed check: {view}")
    })?;
    let before = b.gets();
    for i in 0..10 {
        let r = get(env, pool, &format!("/api/pool/passing/{i}"))?;
        check(!failed(&r), || {
            format!("GET {i}: {} {}", r.status, r.text())
        })?;
    }
    check(b.gets() == before, || {
        format!(
            "{} requests reached it before it passed its checks",
            b.gets() - before
        )
    })?;
    run_health_checks(env, pool)?;
    let view = second_origin(env, pool)?;
    check(view["health"]["healthy"] == true, || {
        format!("unhealthy after two passed checks: {view}")
    })?;
    wait_for_isolate(env, pool, true)?;
    for i in 0..20 {
        let r = get(env, pool, &format!("/api/pool/healthy/{i}"))?;
        check(!failed(&r), || {
            format!("GET {i}: {} {}", r.status, r.text())
        })?;
    }
    check(b.gets() > before, || {
        "20 requests after it passed its checks and none reached it".into()
    })
}

fn the_ejection_cap_keeps_an_origin_to_try(env: &Env) -> Result<(), String> {
    let pool = env.pool()?;
    let [a, b] = &pool.proxies;
    let refused_before = a.refused() + b.refused();
    a.set(Mode::Refuse);
    b.set(Mode::Refuse);
    let down: Result<Vec<Reply>, String> = (0..10)
        .map(|i| get(env, pool, &format!("/api/pool/down/{i}")))
        .collect();
    let tried = a.refused() + b.refused() - refused_before;
    a.set(Mode::Pass);
    b.set(Mode::Pass);
    let down = down?;
    for r in &down {
        check(
            matches!(r.status, 502 | 503)
                && r.header("content-type") == Some("application/problem+json"),
            || format!("with both down: {} {:?}", r.status, r.text()),
        )?;
    }
    // Both are ejected after three failures each; the cap (50 % of two) keeps the one ejected
    // first in rotation, so every request still reached an origin's door.
    check(tried >= 10, || {
        format!("only {tried} of 10 requests reached an origin")
    })?;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        let r = get(env, pool, &format!("/api/pool/back/{n}"))?;
        if !failed(&r) {
            return Ok(());
        }
        check(Instant::now() < deadline, || {
            format!(
                "still failing 20 s after healing: {} {}",
                r.status,
                r.text()
            )
        })?;
        n += 1;
    }
}
