//! When the edge's own stores fail (README § When a dependency fails): one edge in front of the
//! shared origin with none of them bound ([`Env::unbound`]), so each call fails as an
//! unreachable binding does, through the real code path. Each case checks one dependency's row
//! of the table; none may answer `500`.
//!
//! The Cache API is the one store that cannot be unbound: it is the runtime's global `caches`,
//! not a binding, so its row (a failed read or write is a miss for that tier) is not covered
//! here.

use crate::harness::{EDGE_ADMIN_TOKEN, Env, Reply};

pub const CASES: [(&str, crate::Case); 5] = [
    (
        "dependencies::without_the_limiter_open_routes_admit_and_sign_in_fails_closed",
        without_the_limiter_open_routes_admit_and_sign_in_fails_closed,
    ),
    (
        "dependencies::without_idempotency_records_orders_stay_exactly_once_and_other_keyed_writes_wait",
        without_idempotency_records_orders_stay_exactly_once_and_other_keyed_writes_wait,
    ),
    (
        "dependencies::without_kv_reads_are_served_from_the_other_tiers",
        without_kv_reads_are_served_from_the_other_tiers,
    ),
    (
        "dependencies::without_the_queue_write_behind_answers_503_and_records_nothing",
        without_the_queue_write_behind_answers_503_and_records_nothing,
    ),
    (
        "dependencies::without_control_purges_and_dead_letters_answer_503",
        without_control_purges_and_dead_letters_answer_503,
    ),
];

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn send(
    env: &Env,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Reply, String> {
    let edge = env.unbound()?;
    let reply = env.send_to(edge, method, path, headers, body)?;
    check(reply.status != 500, || {
        format!("{method} {path}: 500 {}", reply.text())
    })?;
    Ok(reply)
}

/// `status` and a problem of `kind` with `Retry-After: retry_after`.
fn unavailable(reply: &Reply, kind: &str, retry_after: &str) -> Result<(), String> {
    check(
        reply.status == 503
            && reply.text().contains(kind)
            && reply.header("retry-after") == Some(retry_after)
            && reply.header("content-type") == Some("application/problem+json"),
        || {
            format!(
                "want 503 {kind} with Retry-After {retry_after}: {} {:?} {}",
                reply.status,
                reply.header("retry-after"),
                reply.text()
            )
        },
    )
}

fn without_the_limiter_open_routes_admit_and_sign_in_fails_closed(env: &Env) -> Result<(), String> {
    let open = send(env, "GET", "/api/products/9030", &[], None)?;
    check(open.status == 200, || {
        format!("a fail-open route: {} {}", open.status, open.text())
    })?;
    let login = send(
        env,
        "POST",
        "/api/auth/login",
        &[("content-type", "application/json")],
        Some(r#"{"email": "nobody@example.com", "password": "wrong password"}"#),
    )?;
    unavailable(&login, "limiter-unavailable", "1")
}

fn without_idempotency_records_orders_stay_exactly_once_and_other_keyed_writes_wait(
    env: &Env,
) -> Result<(), String> {
    let key = "e2e-order-key-unbound-1";
    let order = |env: &Env| {
        send(
            env,
            "POST",
            "/api/orders",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            Some(r#"{"items": [{"product_id": 2, "quantity": 1}]}"#),
        )
    };
    let first = order(env)?;
    check(first.status == 201, || {
        format!("first: {} {}", first.status, first.text())
    })?;
    let retry = order(env)?;
    check(retry.status == 201 && retry.body == first.body, || {
        format!(
            "the origin's record answers the retry: {} {}",
            retry.status,
            retry.text()
        )
    })?;
    let orders = env
        .rt
        .block_on(breakwater_origin::order::count_with_key(
            &env.origin_db,
            key,
        ))
        .map_err(|e| e.to_string())?;
    check(orders == 1, || format!("{orders} orders for one key"))?;

    // A keyed write on a route whose origin keeps no record: refused before anything is sent.
    let before = env.proxy.heads("PUT /api/products/9031 ").len();
    let put = send(
        env,
        "PUT",
        "/api/products/9031",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", "e2e-unbound-product-put-1"),
        ],
        Some(r#"{"name": "never sent"}"#),
    )?;
    unavailable(&put, "idempotency-unavailable", "1")?;
    let sent = env.proxy.heads("PUT /api/products/9031 ").len() - before;
    check(sent == 0, || format!("{sent} PUT(s) reached the origin"))
}

fn without_kv_reads_are_served_from_the_other_tiers(env: &Env) -> Result<(), String> {
    let path = "/api/products/9032";
    let first = send(env, "GET", path, &[], None)?;
    let second = send(env, "GET", path, &[], None)?;
    let status = |r: &Reply| r.header("cache-status").unwrap_or_default().to_owned();
    check(first.status == 200 && second.status == 200, || {
        format!("{} then {}", first.status, second.status)
    })?;
    check(status(&second).contains("hit"), || {
        format!("the second read: {}", status(&second))
    })
}

fn without_the_queue_write_behind_answers_503_and_records_nothing(env: &Env) -> Result<(), String> {
    let view = send(env, "POST", "/api/products/9033/views", &[], None)?;
    unavailable(&view, "queue-unavailable", "5")
}

fn without_control_purges_and_dead_letters_answer_503(env: &Env) -> Result<(), String> {
    let auth = format!("Bearer {EDGE_ADMIN_TOKEN}");
    let purge = send(
        env,
        "POST",
        "/_breakwater/purge",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(r#"{"tags": ["product:9034"]}"#),
    )?;
    unavailable(&purge, "dependency-unavailable", "1")?;
    let dead = send(
        env,
        "GET",
        "/_breakwater/dead-events",
        &[("authorization", &auth)],
        None,
    )?;
    unavailable(&dead, "dependency-unavailable", "1")?;
    // Requests that only report to CONTROL are served all the same.
    let read = send(env, "GET", "/api/products/9034", &[], None)?;
    check(read.status == 200, || {
        format!("a read: {} {}", read.status, read.text())
    })
}
