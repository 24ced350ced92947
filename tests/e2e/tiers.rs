//! The lower cache tiers (Cache API, KV) as Miniflare simulates them, promotion after an edge
//! restart, purges (admin endpoint and writes through the edge) across every tier,
//! stale-while-revalidate refreshes, cron warming, and the cache's safety cases.
//!
//! Test-only routes (see `harness::TEST_ROUTES`) give product ids 9001–9003 their own tiers.

use crate::harness::{EDGE_ADMIN_TOKEN, Env, ORIGIN_ADMIN_TOKEN, Reply, WARM_PATH};
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 10] = [
    (
        "tiers::cache_api_answers_its_route",
        cache_api_answers_its_route,
    ),
    ("tiers::kv_answers_its_route", kv_answers_its_route),
    (
        "tiers::stale_while_revalidate_refreshes_after_answering",
        stale_while_revalidate_refreshes_after_answering,
    ),
    (
        "tiers::the_admin_purge_endpoint_refuses_bad_calls",
        the_admin_purge_endpoint_refuses_bad_calls,
    ),
    (
        "tiers::wrong_admin_tokens_are_throttled_per_address",
        wrong_admin_tokens_are_throttled_per_address,
    ),
    (
        "tiers::purge_and_promotion_across_a_restart",
        purge_and_promotion_across_a_restart,
    ),
    (
        "tiers::a_write_through_the_edge_purges_its_tags",
        a_write_through_the_edge_purges_its_tags,
    ),
    ("tiers::cron_warms_the_hot_set", cron_warms_the_hot_set),
    (
        "tiers::unkeyed_headers_cannot_poison_an_entry",
        unkeyed_headers_cannot_poison_an_entry,
    ),
    (
        "tiers::errors_and_credentialed_answers_are_never_shared",
        errors_and_credentialed_answers_are_never_shared,
    ),
];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn cache_status(r: &Reply) -> String {
    r.header("cache-status").unwrap_or_default().to_owned()
}

/// GETs `path` and checks its `Cache-Status` is exactly `want`.
fn expect(env: &Env, path: &str, want: &str) -> Result<Reply, String> {
    let r = env.get(path, &[])?;
    check(r.status == 200, || {
        format!("{path}: status {}: {}", r.status, r.text())
    })?;
    let status = cache_status(&r);
    check(status == want, || {
        format!("{path}: cache-status {status:?}, want {want:?}")
    })?;
    Ok(r)
}

const STORED: &str = "breakwater; fwd=miss; stored";

fn purge(env: &Env, token: Option<&str>, body: &str) -> Result<Reply, String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    env.send("POST", "/_breakwater/purge", &headers, Some(body))
}

/// Waits (up to 10 s) until the origin has seen more than `before` GETs.
fn wait_for_origin_gets(env: &Env, before: u64) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.proxy.gets() <= before {
        if Instant::now() > deadline {
            return Err("the origin saw no request within 10 s".into());
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    Ok(env.proxy.gets())
}

fn cache_api_answers_its_route(env: &Env) -> Result<(), String> {
    let first = expect(env, "/api/products/9001", STORED)?;
    let before = env.proxy.gets();
    let second = expect(
        env,
        "/api/products/9001",
        "breakwater; hit; detail=cache-api",
    )?;
    check(env.proxy.gets() == before, || {
        "a Cache API hit reached the origin".into()
    })?;
    check(second.body == first.body, || "bodies differ".into())
}

fn kv_answers_its_route(env: &Env) -> Result<(), String> {
    let first = expect(env, "/api/products/9002", STORED)?;
    let second = expect(env, "/api/products/9002", "breakwater; hit; detail=kv")?;
    check(second.body == first.body, || "bodies differ".into())
}

fn stale_while_revalidate_refreshes_after_answering(env: &Env) -> Result<(), String> {
    let first = expect(env, "/api/products/9003", STORED)?;
    let before = env.proxy.gets();
    let stale = expect(
        env,
        "/api/products/9003",
        "breakwater; hit; detail=memory.stale-while-revalidate",
    )?;
    check(stale.body == first.body, || "bodies differ".into())?;
    // The refresh runs after the answer (ctx.wait_until) and reaches the origin.
    wait_for_origin_gets(env, before)?;
    Ok(())
}

fn the_admin_purge_endpoint_refuses_bad_calls(env: &Env) -> Result<(), String> {
    let body = r#"{"tags": ["product:1"]}"#;
    for (token, want) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some(ORIGIN_ADMIN_TOKEN), 401),
    ] {
        let r = purge(env, token, body)?;
        check(r.status == want, || {
            format!("{token:?}: status {}", r.status)
        })?;
        check(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            || format!("{token:?}: no Bearer challenge"),
        )?;
    }
    for (body, want) in [
        ("not json", 400),
        (r#"{"tags": ["product:1"], "extra": 1}"#, 400),
        ("{}", 422),
        (r#"{"tags": ["a b"]}"#, 422),
        (r#"{"urls": ["api/products/1"]}"#, 400),
    ] {
        let r = purge(env, Some(EDGE_ADMIN_TOKEN), body)?;
        check(r.status == want, || {
            format!("{body}: status {} ({})", r.status, r.text())
        })?;
        check(
            r.header("content-type") == Some("application/problem+json"),
            || format!("{body}: {:?}", r.header("content-type")),
        )?;
    }
    let r = env.get("/_breakwater/purge", &[])?;
    check(r.status == 405, || format!("GET: status {}", r.status))
}

/// Ten wrong admin tokens from one address get `401`; the eleventh gets `429` with
/// `Retry-After`, and the right token still works. On the limited edge, which no other case sends
/// wrong tokens to: every client of the suite shares one address.
fn wrong_admin_tokens_are_throttled_per_address(env: &Env) -> Result<(), String> {
    use crate::conformance::{client, send};
    let edge = &env.limited()?.edge;
    let client = client();
    let origins = format!("{edge}/_breakwater/origins");
    let with = |token: &str| vec![("authorization".to_owned(), format!("Bearer {token}"))];
    for i in 0..10 {
        let r = env
            .rt
            .block_on(send(&client, &origins, "GET", &with("wrong"), None))?;
        check(r.status == 401, || {
            format!("guess {i}: status {}", r.status)
        })?;
    }
    let r = env
        .rt
        .block_on(send(&client, &origins, "GET", &with("wrong"), None))?;
    check(r.status == 429 && r.header("retry-after").is_some(), || {
        format!(
            "guess 11: status {}, retry-after {:?}",
            r.status,
            r.header("retry-after")
        )
    })?;
    let r = env.rt.block_on(send(
        &client,
        &origins,
        "GET",
        &with(EDGE_ADMIN_TOKEN),
        None,
    ))?;
    check(r.status == 200, || {
        format!("the right token after the guesses: status {}", r.status)
    })
}

fn purge_and_promotion_across_a_restart(env: &Env) -> Result<(), String> {
    // Both land in memory, the Cache API and KV (the /api/products route uses all three).
    expect(env, "/api/products/9004", STORED)?;
    expect(env, "/api/products/9005", STORED)?;
    expect(env, "/api/products?page=9&per_page=3", STORED)?;
    let r = purge(env, Some(EDGE_ADMIN_TOKEN), r#"{"tags": ["product:9005"]}"#)?;
    check(r.status == 200, || {
        format!("purge: {} {}", r.status, r.text())
    })?;
    let r = purge(
        env,
        Some(EDGE_ADMIN_TOKEN),
        r#"{"urls": ["/api/products?per_page=3&utm_source=mail&page=9"]}"#,
    )?;
    check(r.status == 200, || {
        format!("url purge: {} {}", r.status, r.text())
    })?;

    // A new isolate: memory is empty, the lower tiers and the purge log are not.
    env.restart_edge()?;
    expect(
        env,
        "/api/products/9004",
        "breakwater; hit; detail=cache-api",
    )?;
    expect(env, "/api/products/9004", "breakwater; hit; detail=memory")?;
    // The purged entries are still in the Cache API and KV, but stamped before the purge.
    expect(env, "/api/products/9005", STORED)?;
    expect(env, "/api/products?page=9&per_page=3", STORED)?;
    Ok(())
}

fn a_write_through_the_edge_purges_its_tags(env: &Env) -> Result<(), String> {
    let path = "/api/products/9006";
    // A listing page showing the product: only its tags (not the write's URL) can purge it.
    let page = "/api/products?page=9006&per_page=1";
    expect(env, path, STORED)?;
    expect(env, path, "breakwater; hit; detail=memory")?;
    let listed = expect(env, page, STORED)?;
    check(listed.text().contains("\"id\":9006"), || listed.text())?;
    expect(env, page, "breakwater; hit; detail=memory")?;
    let auth = format!("Bearer {ORIGIN_ADMIN_TOKEN}");
    let r = env.send(
        "PUT",
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(r#"{"name": "Renamed through the edge"}"#),
    )?;
    check(r.status == 200, || {
        format!("PUT: {} {}", r.status, r.text())
    })?;
    let after = expect(env, path, STORED)?;
    check(after.text().contains("Renamed through the edge"), || {
        format!("stale body after the write: {}", after.text())
    })?;
    let page_after = expect(env, page, STORED)?;
    check(
        page_after.text().contains("Renamed through the edge"),
        || format!("stale listing after the write: {}", page_after.text()),
    )
}

fn cron_warms_the_hot_set(env: &Env) -> Result<(), String> {
    let before = env.proxy.gets();
    let r = env.get("/__scheduled?cron=*+*+*+*+*", &[])?;
    check(r.status == 200, || {
        format!("/__scheduled: {} {}", r.status, r.text())
    })?;
    let fetched = wait_for_origin_gets(env, before)?;
    // The cron run fetched the warm path; the first client request is already a hit.
    let r = env.get(WARM_PATH, &[])?;
    let status = cache_status(&r);
    check(status.contains("; hit;"), || {
        format!("{WARM_PATH}: cache-status {status:?}")
    })?;
    check(env.proxy.gets() == fetched, || {
        "the warm path went to the origin".into()
    })
}

fn unkeyed_headers_cannot_poison_an_entry(env: &Env) -> Result<(), String> {
    let path = "/api/products/9008";
    let poisoned = env.get(
        path,
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-original-url", "/admin"),
            ("x-http-method-override", "DELETE"),
            ("accept-language", "xx"),
        ],
    )?;
    check(cache_status(&poisoned) == STORED, || {
        cache_status(&poisoned)
    })?;
    // What the origin received: the routing overrides did not reach it (the edge's own host
    // travels as X-Forwarded-Host), an ordinary end-to-end header did.
    let heads = env.proxy.heads(&format!("GET {path}"));
    let head = heads.last().ok_or("the fill never reached the origin")?;
    let edge_host = env.edge_addr.to_string();
    check(
        head.get("x-forwarded-host") == Some(edge_host.as_str()),
        || {
            format!(
                "x-forwarded-host at the origin: {:?}",
                head.get("x-forwarded-host")
            )
        },
    )?;
    for name in ["x-original-url", "x-http-method-override"] {
        check(head.get(name).is_none(), || {
            format!("{name} reached the origin")
        })?;
    }
    check(head.get("accept-language") == Some("xx"), || {
        "accept-language did not reach the origin".into()
    })?;
    let clean = expect(env, path, "breakwater; hit; detail=memory")?;
    check(!clean.text().contains("evil"), || clean.text())
}

fn errors_and_credentialed_answers_are_never_shared(env: &Env) -> Result<(), String> {
    // Path confusion (`/x.css` after a dynamic path): the origin says 404, which is not stored.
    for _ in 0..2 {
        let r = env.get("/api/products/5/account.css", &[])?;
        check(r.status == 404, || format!("status {}", r.status))?;
        let status = cache_status(&r);
        check(!status.contains("hit"), || {
            format!("cache-status {status:?}")
        })?;
    }
    // A response to a request with an Authorization the edge did not verify is not stored: the
    // origin did not opt in with public, s-maxage or must-revalidate (RFC 9111 §3.5). The next
    // visitor's request fills the entry afresh.
    let path = "/api/products/9009";
    let personal = env.get(path, &[("authorization", "Basic c29tZW9uZTpzZWNyZXQ=")])?;
    check(
        cache_status(&personal) == "breakwater; fwd=miss; detail=credentials",
        || cache_status(&personal),
    )?;
    expect(env, path, STORED).map(|_| ())
}
