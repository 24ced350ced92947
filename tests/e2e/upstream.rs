//! What the origin receives from each caller of the edge's upstream layer: the proxy (the origin
//! stage), a cache fill, a `stale-while-revalidate` refresh, an idempotent write (through the
//! stages it wraps) and the queue consumer. The fault proxy records each request head it relays,
//! so the rules (end-to-end headers, hop-by-hop removal, principal, request id, trace context)
//! are checked on the wire, one caller at a time, and cannot drift apart. And a write with an
//! `Idempotency-Key` purges what it makes stale like any other write.

use crate::harness::{Env, ORIGIN_ADMIN_TOKEN, Reply};
use crate::proxy::Head;
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 5] = [
    (
        "upstream::the_proxy_forwards_end_to_end_headers_principal_and_trace",
        the_proxy_forwards_end_to_end_headers_principal_and_trace,
    ),
    (
        "upstream::a_fill_forwards_end_to_end_headers_and_no_principal",
        a_fill_forwards_end_to_end_headers_and_no_principal,
    ),
    (
        "upstream::a_refresh_follows_the_fill_rules",
        a_refresh_follows_the_fill_rules,
    ),
    (
        "upstream::a_keyed_write_reaches_the_origin_whole_and_purges",
        a_keyed_write_reaches_the_origin_whole_and_purges,
    ),
    (
        "upstream::the_consumer_sends_its_own_credential_and_trace",
        the_consumer_sends_its_own_credential_and_trace,
    ),
];

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// What a client sends besides its request: an application header, a forged principal, its own
/// request id and trace. (Not a header named by `Connection`: workerd consumes `Connection`
/// before the worker runs, so no worker can see which headers it named.)
fn client_headers(request_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-app-probe", "kept".into()),
        ("breakwater-principal", "user:forged".into()),
        ("x-request-id", request_id.into()),
        ("traceparent", TRACEPARENT.into()),
    ]
}

fn send(
    env: &Env,
    method: &str,
    path: &str,
    extra: &[(&str, String)],
    body: Option<&str>,
) -> Result<Reply, String> {
    let mut headers = client_headers(&format!("req-{}", path.len()));
    headers.extend(extra.iter().map(|(n, v)| (*n, v.clone())));
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    env.send(method, path, &borrowed, body)
}

/// The newest head the origin received for `line` once there are more than `seen` of them,
/// polled every 20 ms against a deadline: some callers reach the origin after the answer
/// (a refresh) or on their own schedule (the queue consumer).
fn received_after(env: &Env, line: &str, seen: usize) -> Result<Head, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut heads = env.proxy.heads(line);
        if heads.len() > seen {
            return Ok(heads.pop().expect("more than `seen`"));
        }
        if Instant::now() > deadline {
            return Err(format!("the origin did not receive {line:?} within 60 s"));
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn received(env: &Env, line: &str) -> Result<Head, String> {
    received_after(env, line, 0)
}

/// The rules every caller shares: hop-by-hop fields and the client's forged principal never
/// arrive; the trace continues the client's trace id (or, for the edge's own requests, starts one);
/// the edge signs the request (`EDGE_KEY`; the origin checks it, so a wrong one would fail the
/// answer as well).
fn common_rules(head: &Head, client_trace: bool) -> Result<(), String> {
    let signature = head.get("breakwater-signature").unwrap_or_default();
    check(
        ["t=", "n=", "v1="].iter().all(|p| signature.contains(p)),
        || format!("not signed by the edge: {head:?}"),
    )?;
    check(head.get("x-hop").is_none(), || {
        format!("x-hop arrived: {head:?}")
    })?;
    check(
        head.get("breakwater-principal") != Some("user:forged"),
        || format!("the forged principal arrived: {head:?}"),
    )?;
    let trace = head
        .get("traceparent")
        .ok_or_else(|| format!("no traceparent: {head:?}"))?;
    check(trace.split('-').count() == 4, || {
        format!("traceparent {trace:?}")
    })?;
    check(trace.contains(TRACE_ID) == client_trace, || {
        format!("traceparent {trace:?} (client trace expected: {client_trace})")
    })?;
    check(trace != TRACEPARENT, || {
        "the edge is a hop: a new parent id".into()
    })?;
    check(head.get("x-request-id").is_some(), || {
        format!("no request id: {head:?}")
    })
}

fn the_proxy_forwards_end_to_end_headers_principal_and_trace(env: &Env) -> Result<(), String> {
    // The cart route is never cached: the origin stage forwards it.
    send(env, "GET", "/api/cart?probe=proxy", &[], None)?;
    let head = received(env, "GET /api/cart?probe=proxy ")?;
    common_rules(&head, true)?;
    check(head.get("x-app-probe") == Some("kept"), || {
        format!("{head:?}")
    })?;
    check(head.get("x-forwarded-host").is_some(), || {
        format!("{head:?}")
    })?;
    check(
        head.get("x-request-id") == Some(&format!("req-{}", "/api/cart?probe=proxy".len())[..]),
        || format!("the client's request id is kept: {head:?}"),
    )
}

fn a_fill_forwards_end_to_end_headers_and_no_principal(env: &Env) -> Result<(), String> {
    let r = send(env, "GET", "/api/products/9010", &[], None)?;
    check(r.status == 200, || format!("{} {}", r.status, r.text()))?;
    let head = received(env, "GET /api/products/9010 ")?;
    common_rules(&head, true)?;
    check(head.get("x-app-probe") == Some("kept"), || {
        format!("an end-to-end header did not reach the origin: {head:?}")
    })?;
    check(head.get("breakwater-principal").is_none(), || {
        format!("a shared fill named a principal: {head:?}")
    })
}

fn a_refresh_follows_the_fill_rules(env: &Env) -> Result<(), String> {
    // 9003's route is stale at once with a stale-while-revalidate window: the second read is
    // answered stale and refreshed after the answer.
    let path = "/api/products/9003?probe=refresh";
    send(env, "GET", path, &[], None)?;
    let before = env
        .proxy
        .heads("GET /api/products/9003?probe=refresh ")
        .len();
    let stale = send(env, "GET", path, &[], None)?;
    let status = stale.header("cache-status").unwrap_or_default().to_owned();
    check(status.contains("stale-while-revalidate"), || status.clone())?;
    let head = &received_after(env, "GET /api/products/9003?probe=refresh ", before)?;
    common_rules(head, true)?;
    check(head.get("x-app-probe") == Some("kept"), || {
        format!("{head:?}")
    })?;
    check(head.get("breakwater-principal").is_none(), || {
        format!("{head:?}")
    })
}

fn a_keyed_write_reaches_the_origin_whole_and_purges(env: &Env) -> Result<(), String> {
    let path = "/api/products/9012";
    let cached = |want: &str| -> Result<Reply, String> {
        let r = env.get(path, &[])?;
        let status = r.header("cache-status").unwrap_or_default();
        check(status == want, || {
            format!("GET {path}: {status:?}, want {want:?}")
        })?;
        Ok(r)
    };
    cached("breakwater; fwd=miss; stored")?;
    cached("breakwater; hit; detail=memory")?;
    let key = format!("\"rename-9012-{}\"", std::process::id());
    let auth = format!("Bearer {ORIGIN_ADMIN_TOKEN}");
    let extra = [
        ("authorization", auth),
        ("content-type", "application/json".to_owned()),
        ("idempotency-key", key.clone()),
    ];
    let r = send(
        env,
        "PUT",
        path,
        &extra,
        Some(r#"{"name": "Renamed with a key"}"#),
    )?;
    check(r.status == 200, || {
        format!("PUT: {} {}", r.status, r.text())
    })?;
    let head = received(env, "PUT /api/products/9012 ")?;
    common_rules(&head, true)?;
    check(head.get("x-app-probe") == Some("kept"), || {
        format!("{head:?}")
    })?;
    check(head.get("idempotency-key") == Some(key.as_str()), || {
        format!("{head:?}")
    })?;
    // The purge happened before the answer: the next read is a miss with the new name.
    let after = cached("breakwater; fwd=miss; stored")?;
    check(after.text().contains("Renamed with a key"), || {
        format!("stale body after a keyed write: {}", after.text())
    })
}

fn the_consumer_sends_its_own_credential_and_trace(env: &Env) -> Result<(), String> {
    let before = env.proxy.heads("POST /internal/events/batch ").len();
    let r = send(env, "POST", "/api/products/9011/views", &[], None)?;
    check(r.status == 202, || format!("{} {}", r.status, r.text()))?;
    let head = received_after(env, "POST /internal/events/batch ", before)?;
    // A request no client sent: a trace of its own, nothing of the client's.
    common_rules(&head, false)?;
    check(head.get("x-app-probe").is_none(), || format!("{head:?}"))?;
    check(
        head.get("authorization") == Some(&format!("Bearer {ORIGIN_ADMIN_TOKEN}")[..]),
        || format!("the batch carries ORIGIN_TOKEN: {head:?}"),
    )?;
    check(head.get("content-type") == Some("application/json"), || {
        format!("{head:?}")
    })
}
