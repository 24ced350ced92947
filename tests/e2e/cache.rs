//! The edge cache stage: memory-tier hits, keys per the route policy, credentials bypassing the
//! cache, stale-if-error, and single-flight misses (counted at the fault proxy).

use crate::harness::{Env, Reply};
use crate::proxy::Mode;

pub const CASES: [(&str, crate::Case); 5] = [
    (
        "cache::second_get_is_a_memory_hit",
        second_get_is_a_memory_hit,
    ),
    (
        "cache::credentials_follow_rfc_9111_3_5",
        credentials_follow_rfc_9111_3_5,
    ),
    (
        "cache::tracking_params_share_an_entry",
        tracking_params_share_an_entry,
    ),
    (
        "cache::origin_down_serves_the_stored_entry",
        origin_down_serves_the_stored_entry,
    ),
    (
        "cache::concurrent_misses_make_one_origin_fetch",
        concurrent_misses_make_one_origin_fetch,
    ),
];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn cache_status(r: &Reply) -> String {
    r.header("cache-status").unwrap_or_default().to_owned()
}

fn second_get_is_a_memory_hit(env: &Env) -> Result<(), String> {
    let first = env.get("/api/products/5", &[])?;
    check(first.status == 200, || format!("status {}", first.status))?;
    let status = cache_status(&first);
    check(status == "breakwater; fwd=miss; stored", || {
        format!("first: cache-status {status:?}")
    })?;
    let second = env.get("/api/products/5", &[])?;
    let status = cache_status(&second);
    check(status == "breakwater; hit; detail=memory", || {
        format!("second: cache-status {status:?}")
    })?;
    check(second.header("age").is_some(), || "no Age on a hit".into())?;
    check(second.body == first.body, || {
        format!("bodies differ: {} vs {}", first.text(), second.text())
    })?;
    // Stored headers come back (the origin's caching headers), hop-by-hop ones do not.
    check(
        second
            .header("cache-control")
            .is_some_and(|c| c.contains("max-age")),
        || format!("{:?}", second.headers),
    )?;
    let timing = second.header("server-timing").unwrap_or_default();
    check(
        timing.contains("cache;dur=") && !timing.contains("origin"),
        || format!("hit timing {timing:?}"),
    )
}

fn credentials_follow_rfc_9111_3_5(env: &Env) -> Result<(), String> {
    env.get("/api/products/6", &[])?;
    // The product's answer is not marked shareable with credentialed requests (no public,
    // s-maxage or must-revalidate): a request with an Authorization the edge did not verify is
    // not served it, and the origin's answer to it is not stored.
    let r = env.get("/api/products/6", &[("authorization", "Basic dTpw")])?;
    check(r.status == 200, || {
        format!("authorization: status {}", r.status)
    })?;
    let status = cache_status(&r);
    check(status == "breakwater; fwd=miss; detail=credentials", || {
        format!("authorization: cache-status {status:?}")
    })?;
    // A Cookie is not a credential for reading: the shared entry answers.
    let r = env.get("/api/products/6", &[("cookie", "session=1")])?;
    let status = cache_status(&r);
    check(status.contains("; hit;"), || {
        format!("cookie: cache-status {status:?}")
    })
}

fn tracking_params_share_an_entry(env: &Env) -> Result<(), String> {
    let first = env.get("/api/products?page=3&utm_source=x", &[])?;
    check(first.status == 200, || format!("status {}", first.status))?;
    let second = env.get("/api/products?page=3", &[])?;
    let status = cache_status(&second);
    check(status.contains("hit"), || {
        format!("cache-status {status:?}")
    })?;
    check(second.body == first.body, || "bodies differ".into())
}

fn origin_down_serves_the_stored_entry(env: &Env) -> Result<(), String> {
    let first = env.get("/api/products/7", &[])?;
    check(first.status == 200, || format!("status {}", first.status))?;
    // `no-cache` makes the edge ask the origin; with the origin down, the stored entry stands in
    // (RFC 5861 §4: request directives do not prevent stale-if-error).
    env.proxy.set(Mode::Refuse);
    let r = env.get("/api/products/7", &[("cache-control", "no-cache")]);
    env.proxy.set(Mode::Pass);
    let r = r?;
    check(r.status == 200, || {
        format!("status {}: {}", r.status, r.text())
    })?;
    let status = cache_status(&r);
    check(status.contains("hit"), || {
        format!("cache-status {status:?}")
    })?;
    check(r.body == first.body, || "bodies differ".into())?;
    // Nothing stored for this key: the origin's failure shows.
    env.proxy.set(Mode::Refuse);
    let r = env.get("/api/products/8", &[]);
    env.proxy.set(Mode::Pass);
    let r = r?;
    check(r.status == 502, || format!("uncached: status {}", r.status))
}

fn concurrent_misses_make_one_origin_fetch(env: &Env) -> Result<(), String> {
    const N: usize = 20;
    let before = env.proxy.gets();
    let url = format!("{}/api/products/4242", env.edge);
    let replies: Vec<Result<(u16, String), String>> = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for _ in 0..N {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = r.status().as_u16();
                let cs = r
                    .headers()
                    .get("cache-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                Ok((status, cs))
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    });
    let fetched = env.proxy.gets() - before;
    let mut statuses = Vec::new();
    for r in replies {
        let (status, cs) = r?;
        check(status == 200, || format!("status {status}"))?;
        statuses.push(cs);
    }
    eprintln!("    single-flight: {N} concurrent cold GETs made {fetched} origin fetch(es)");
    // Not exactly 1: a request that arrives after the leader stored is a hit, but one that
    // arrives before workerd dispatches the leader could lead too.
    check(fetched <= 3, || {
        format!("{fetched} origin fetches for {N} requests: {statuses:?}")
    })
}
