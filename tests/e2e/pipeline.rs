//! The request path: intake validation, proxying to the origin, and the origin's failures.

use crate::harness::{Env, ORIGIN_TIMEOUT_MS};
use crate::proxy::Mode;

pub const CASES: [(&str, crate::Case); 7] = [
    (
        "pipeline::proxies_api_reads_to_the_origin",
        proxies_api_reads_to_the_origin,
    ),
    (
        "pipeline::request_id_is_echoed_or_assigned",
        request_id_is_echoed_or_assigned,
    ),
    (
        "pipeline::origin_errors_pass_through",
        origin_errors_pass_through,
    ),
    (
        "pipeline::origin_down_is_502_problem",
        origin_down_is_502_problem,
    ),
    (
        "pipeline::origin_stalled_is_504_problem",
        origin_stalled_is_504_problem,
    ),
    (
        "pipeline::intake_rejects_bad_methods_and_sizes",
        intake_rejects_bad_methods_and_sizes,
    ),
    (
        "pipeline::server_timing_names_each_stage",
        server_timing_names_each_stage,
    ),
];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// Sets the proxy mode for the duration of `f`, restoring `Pass` even when `f` fails.
fn with_mode<T>(env: &Env, mode: Mode, f: impl FnOnce() -> T) -> T {
    env.proxy.set(mode);
    let out = f();
    env.proxy.set(Mode::Pass);
    out
}

fn proxies_api_reads_to_the_origin(env: &Env) -> Result<(), String> {
    let r = env.get("/api/products?page=2", &[])?;
    check(r.status == 200, || {
        format!("status {}: {}", r.status, r.text())
    })?;
    let v = r.json()?;
    check(v["page"] == 2, || format!("page {}", v["page"]))?;
    let items = v["items"].as_array().ok_or("no items")?;
    check(items.len() == 24, || format!("{} items", items.len()))?;
    check(v["total"].as_u64().unwrap_or(0) >= 10_000, || {
        format!("total {}", v["total"])
    })?;
    // The origin's caching headers reach the client unchanged.
    check(
        r.header("cache-control")
            .is_some_and(|c| c.contains("max-age")),
        || format!("{:?}", r.headers),
    )?;
    let id = items[0]["id"].as_u64().ok_or("no id")?;
    let one = env.get(&format!("/api/products/{id}"), &[])?;
    check(one.status == 200 && one.json()?["id"] == id, || {
        format!("product {id}: {}", one.text())
    })
}

fn request_id_is_echoed_or_assigned(env: &Env) -> Result<(), String> {
    let mine = env.get("/api/products/1", &[("x-request-id", "e2e-given-id")])?;
    check(mine.header("x-request-id") == Some("e2e-given-id"), || {
        format!("{:?}", mine.header("x-request-id"))
    })?;
    // The origin answers with its own `traceparent`; the edge never passes it on (a cached copy
    // would name another request's trace).
    check(mine.header("traceparent").is_none(), || {
        format!("{:?}", mine.header("traceparent"))
    })?;
    let a = env.get("/", &[])?;
    let b = env.get("/", &[])?;
    let (a, b) = (
        a.header("x-request-id").unwrap_or(""),
        b.header("x-request-id").unwrap_or(""),
    );
    check(a.len() == 32 && a != b, || {
        format!("assigned ids {a:?} and {b:?}")
    })?;
    // An id that could forge a log line or header is replaced, not echoed.
    let bad = env.get(
        "/api/products/1",
        &[("x-request-id", "forged id\"; admin=1")],
    )?;
    let replaced = bad.header("x-request-id").unwrap_or_default();
    check(
        replaced.len() == 32 && replaced.bytes().all(|b| b.is_ascii_hexdigit()),
        || format!("echoed {replaced:?}"),
    )?;
    // A problem body names the request id too, so a user's report can be traced.
    let (status, text) = env.raw("GET", "/%2e%2e%2fx")?;
    check(status == 400, || format!("status {status}"))?;
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .ok_or_else(|| format!("no x-request-id header: {text}"))?;
    check(
        text.contains(&format!("\"request_id\":\"{}\"", id.trim())),
        || format!("problem lacks the id: {text}"),
    )
}

fn origin_errors_pass_through(env: &Env) -> Result<(), String> {
    let r = env.get("/api/products/999999999", &[])?;
    check(r.status == 404, || format!("status {}", r.status))?;
    check(
        r.header("content-type") == Some("application/problem+json"),
        || format!("{:?}", r.header("content-type")),
    )?;
    let r = env.get("/api/products?page=0", &[])?;
    check(r.status == 400, || format!("page=0 was {}", r.status))
}

fn origin_down_is_502_problem(env: &Env) -> Result<(), String> {
    let r = with_mode(env, Mode::Refuse, || env.get("/api/products", &[]))?;
    check(r.status == 502, || {
        format!("status {}: {}", r.status, r.text())
    })?;
    check(
        r.header("content-type") == Some("application/problem+json"),
        || format!("{:?}", r.headers),
    )?;
    check(r.header("retry-after").is_some(), || {
        "no retry-after".into()
    })?;
    let v = r.json()?;
    check(
        v["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/origin-unreachable")),
        || format!("{v}"),
    )?;
    check(v["status"] == 502, || format!("{v}"))?;
    // Healthy again once the origin is back.
    let after = env.get("/api/products", &[])?;
    check(after.status == 200, || {
        format!("after recovery: {}", after.status)
    })
}

fn origin_stalled_is_504_problem(env: &Env) -> Result<(), String> {
    let started = std::time::Instant::now();
    let r = with_mode(env, Mode::Stall, || env.get("/api/products/2", &[]))?;
    let waited = started.elapsed().as_millis() as u64;
    check(r.status == 504, || {
        format!("status {}: {}", r.status, r.text())
    })?;
    let v = r.json()?;
    check(
        v["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/origin-timeout")),
        || format!("{v}"),
    )?;
    // Not a timing assertion on speed: only that the edge did wait for its configured timeout.
    check(waited >= ORIGIN_TIMEOUT_MS, || {
        format!("answered after {waited} ms, before the timeout")
    })?;
    let after = env.get("/api/products/2", &[])?;
    check(after.status == 200, || {
        format!("after recovery: {}", after.status)
    })
}

fn intake_rejects_bad_methods_and_sizes(env: &Env) -> Result<(), String> {
    let (status, text) = env.raw("TRACE", "/")?;
    check(status == 405, || format!("TRACE: {status}"))?;
    check(
        text.to_ascii_lowercase().contains("allow: get, head, post"),
        || format!("TRACE: {text}"),
    )?;
    let long = format!("/api/products?q={}", "a".repeat(9000));
    let r = env.get(&long, &[])?;
    check(r.status == 414, || format!("long URL: {}", r.status))?;
    check(
        r.header("content-type") == Some("application/problem+json"),
        || "414 not problem+json".into(),
    )?;
    let big = "x".repeat(20_000);
    let r = env.get("/", &[("x-big-1", &big), ("x-big-2", &big)])?;
    check(r.status == 431, || format!("large headers: {}", r.status))
}

fn server_timing_names_each_stage(env: &Env) -> Result<(), String> {
    let r = env.get("/api/products/3", &[])?;
    let timing = r.header("server-timing").unwrap_or_default().to_owned();
    // A cold key on a cached route: the cache stage answers, timing its origin fetch inside.
    for stage in ["intake;dur=", "assets;dur=", "cache;dur=", "origin;dur="] {
        check(timing.contains(stage), || {
            format!("server-timing {timing:?} lacks {stage}")
        })?;
    }
    let page = env.get("/", &[])?;
    let timing = page.header("server-timing").unwrap_or_default();
    check(
        timing.contains("assets;dur=") && !timing.contains("origin") && !timing.contains("cache"),
        || format!("front page timing {timing:?}"),
    )
}
