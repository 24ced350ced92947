//! Safe retries: `POST /api/orders` with an `Idempotency-Key` through the edge's `IDEMPOTENCY`
//! records and the origin's own unique (principal, key) rows. "Exactly once" is checked in the
//! origin's database, not inferred from answers.
//!
//! The harness gives `/api/orders` a 3 s lease and a 5 s retention, so expiry runs in seconds.

use crate::harness::{Env, ORIGIN_ADMIN_TOKEN, PRO_API_KEY, Reply};
use crate::proxy::Mode;
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 8] = [
    (
        "idempotency::concurrent_duplicates_make_one_order",
        concurrent_duplicates_make_one_order,
    ),
    (
        "idempotency::a_replay_is_byte_identical",
        a_replay_is_byte_identical,
    ),
    (
        "idempotency::bad_keys_and_reused_keys_are_refused",
        bad_keys_and_reused_keys_are_refused,
    ),
    (
        "idempotency::another_principal_gets_its_own_record",
        another_principal_gets_its_own_record,
    ),
    (
        "idempotency::a_lost_answer_is_recovered_without_a_duplicate",
        a_lost_answer_is_recovered_without_a_duplicate,
    ),
    (
        "idempotency::a_key_past_retention_still_cannot_duplicate",
        a_key_past_retention_still_cannot_duplicate,
    ),
    (
        "idempotency::guests_own_their_orders_by_session_not_by_address",
        guests_own_their_orders_by_session_not_by_address,
    ),
    (
        "idempotency::a_record_survives_an_edge_restart",
        a_record_survives_an_edge_restart,
    ),
];

const BODY: &str = r#"{"items": [{"product_id": 1, "quantity": 2}]}"#;

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn order(env: &Env, key: &str, body: &str, extra: &[(&str, &str)]) -> Result<Reply, String> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("idempotency-key", key),
    ];
    headers.extend_from_slice(extra);
    env.send("POST", "/api/orders", &headers, Some(body))
}

fn orders_with_key(env: &Env, key: &str) -> Result<i64, String> {
    env.rt
        .block_on(breakwater_origin::order::count_with_key(
            &env.origin_db,
            key,
        ))
        .map_err(|e| e.to_string())
}

fn replayed(r: &Reply) -> bool {
    r.header("idempotent-replayed") == Some("true")
}

/// Retries `key` until the answer is not a `409` (the claim's lease ran out), at most 15 s.
fn retry_until_not_in_flight(env: &Env, key: &str) -> Result<Reply, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = order(env, key, BODY, &[])?;
        if r.status != 409 {
            return Ok(r);
        }
        check(r.header("retry-after").is_some(), || {
            "409 without Retry-After".into()
        })?;
        if Instant::now() > deadline {
            return Err("still 409 after 15 s".into());
        }
        std::thread::park_timeout(Duration::from_millis(200));
    }
}

fn concurrent_duplicates_make_one_order(env: &Env) -> Result<(), String> {
    const N: usize = 20;
    let key = "e2e-order-key-concurrent-1";
    let url = format!("{}/api/orders", env.edge);
    let replies: Vec<Result<(u16, bool, String), String>> = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("idempotency-key", key)
                        .body(BODY)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = r.status().as_u16();
                    let replayed = r.headers().get("idempotent-replayed").is_some();
                    Ok((status, replayed, r.text().await.map_err(|e| e.to_string())?))
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    });
    let replies: Vec<(u16, bool, String)> = replies.into_iter().collect::<Result<_, _>>()?;
    let created: Vec<&String> = replies
        .iter()
        .filter(|r| r.0 == 201)
        .map(|r| &r.2)
        .collect();
    let in_flight = replies.iter().filter(|r| r.0 == 409).count();
    eprintln!(
        "    {N} concurrent duplicates: {} × 201, {in_flight} × 409",
        created.len()
    );
    check(created.len() + in_flight == N, || {
        format!(
            "statuses {:?}",
            replies.iter().map(|r| r.0).collect::<Vec<_>>()
        )
    })?;
    check(created.iter().all(|b| *b == created[0]), || {
        "201 bodies differ".into()
    })?;
    let fresh = replies.iter().filter(|r| r.0 == 201 && !r.1).count();
    check(fresh == 1, || format!("{fresh} answers were not replays"))?;
    check(orders_with_key(env, key)? == 1, || {
        "not exactly one order".into()
    })
}

fn a_replay_is_byte_identical(env: &Env) -> Result<(), String> {
    let key = "e2e-order-key-replay-1";
    let first = order(env, key, BODY, &[])?;
    check(first.status == 201, || {
        format!("first: {} {}", first.status, first.text())
    })?;
    check(!replayed(&first), || {
        "the first answer claims to be a replay".into()
    })?;
    let before = env.proxy.posts();
    let again = order(env, key, BODY, &[])?;
    check(again.status == 201 && replayed(&again), || {
        format!("replay: {} {:?}", again.status, again.headers)
    })?;
    check(again.body == first.body, || "replayed body differs".into())?;
    check(again.header("location") == first.header("location"), || {
        "replayed Location differs".into()
    })?;
    check(env.proxy.posts() == before, || {
        "the replay reached the origin".into()
    })?;
    check(orders_with_key(env, key)? == 1, || {
        "not exactly one order".into()
    })
}

fn bad_keys_and_reused_keys_are_refused(env: &Env) -> Result<(), String> {
    let missing = env.send(
        "POST",
        "/api/orders",
        &[("content-type", "application/json")],
        Some(BODY),
    )?;
    check(missing.status == 400, || {
        format!("no key: {}", missing.status)
    })?;
    check(missing.text().contains("idempotency-key-missing"), || {
        missing.text()
    })?;
    let bad = order(env, "\"unterminated", BODY, &[])?;
    check(bad.status == 400, || format!("bad key: {}", bad.status))?;
    check(bad.text().contains("idempotency-key-invalid"), || {
        bad.text()
    })?;
    // Valid, but short enough for two clients to pick it by chance.
    let short = order(env, "\"order-1\"", BODY, &[])?;
    check(
        short.status == 400 && short.text().contains("at least 16"),
        || format!("short key: {} {}", short.status, short.text()),
    )?;

    let key = "e2e-order-key-reuse-1";
    let first = order(env, key, BODY, &[])?;
    check(first.status == 201, || format!("first: {}", first.status))?;
    let other = order(
        env,
        key,
        r#"{"items": [{"product_id": 2, "quantity": 1}]}"#,
        &[],
    )?;
    check(other.status == 422, || {
        format!("reuse: {} {}", other.status, other.text())
    })?;
    check(other.text().contains("idempotency-key-reused"), || {
        other.text()
    })?;
    check(!other.text().contains("total_cents"), || {
        "the 422 reveals the stored answer".into()
    })?;
    check(orders_with_key(env, key)? == 1, || {
        "not exactly one order".into()
    })
}

fn another_principal_gets_its_own_record(env: &Env) -> Result<(), String> {
    let key = "e2e-order-key-principals-1";
    let mine = order(env, key, BODY, &[])?;
    let theirs = order(env, key, BODY, &[("x-api-key", PRO_API_KEY)])?;
    check(mine.status == 201 && theirs.status == 201, || {
        format!("{} / {}", mine.status, theirs.status)
    })?;
    check(!replayed(&theirs), || {
        "another principal got my stored answer".into()
    })?;
    check(mine.header("location") != theirs.header("location"), || {
        "both principals got the same order".into()
    })?;
    check(orders_with_key(env, key)? == 2, || {
        "expected one order each".into()
    })
}

fn a_lost_answer_is_recovered_without_a_duplicate(env: &Env) -> Result<(), String> {
    let key = "e2e-order-key-lost-1";
    // The origin commits the order, then the connection dies before the edge sees the answer.
    env.proxy.set(Mode::DropResponse);
    let lost = order(env, key, BODY, &[]);
    env.proxy.set(Mode::Pass);
    let lost = lost?;
    check(lost.status == 502, || {
        format!("lost answer: {} {}", lost.status, lost.text())
    })?;
    check(orders_with_key(env, key)? == 1, || {
        "the order was not committed".into()
    })?;
    // The claim is kept (the first attempt may still be running): 409 until its lease ends,
    // then the retry reaches the origin, whose own record replays the committed order.
    let recovered = retry_until_not_in_flight(env, key)?;
    check(recovered.status == 201, || {
        format!("recovered: {} {}", recovered.status, recovered.text())
    })?;
    check(orders_with_key(env, key)? == 1, || {
        "the retry made a second order".into()
    })
}

fn a_key_past_retention_still_cannot_duplicate(env: &Env) -> Result<(), String> {
    let key = "e2e-order-key-retention-1";
    let first = order(env, key, BODY, &[])?;
    check(first.status == 201, || format!("first: {}", first.status))?;
    // Replays come from the edge until its record expires; then the origin answers.
    let before = env.proxy.posts();
    let deadline = Instant::now() + Duration::from_secs(20);
    let late = loop {
        let r = order(env, key, BODY, &[])?;
        if env.proxy.posts() > before {
            break r;
        }
        check(Instant::now() < deadline, || {
            "the edge never let the key expire".into()
        })?;
        std::thread::park_timeout(Duration::from_millis(250));
    };
    check(late.status == 201 && late.body == first.body, || {
        format!("after retention: {} {}", late.status, late.text())
    })?;
    check(orders_with_key(env, key)? == 1, || {
        "reuse after retention duplicated".into()
    })
}

/// The `name=value` of the guest cookie an answer sets, and its attributes.
fn guest_cookie(r: &Reply) -> Result<(String, String), String> {
    let set = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-breakwater-guest="))
        .ok_or_else(|| format!("no guest cookie set: {:?}", r.headers))?;
    let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
    Ok((pair.to_owned(), attributes.to_owned()))
}

fn history(env: &Env, cookie: Option<&str>) -> Result<Reply, String> {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    env.send("GET", "/api/orders", &headers, None)
}

fn history_ids(env: &Env, cookie: &str) -> Result<Vec<i64>, String> {
    let r = history(env, Some(cookie))?;
    check(r.status == 200, || {
        format!("history: {} {}", r.status, r.text())
    })?;
    Ok(r.json()?["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|o| o["id"].as_i64()).collect())
        .unwrap_or_default())
}

/// Two shoppers behind one address (every request here comes from 127.0.0.1) without accounts:
/// each first order opens a guest session, its retry without the cookie lands in the same one,
/// and each sees only their own orders. The address alone is nobody; a forged cookie too.
fn guests_own_their_orders_by_session_not_by_address(env: &Env) -> Result<(), String> {
    let first_key = "e2e-order-key-guest-a-1";
    let first = order(env, first_key, BODY, &[])?;
    check(first.status == 201, || {
        format!("{} {}", first.status, first.text())
    })?;
    let (alice, attributes) = guest_cookie(&first)?;
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        check(attributes.contains(attribute), || {
            format!("{attribute} missing: {attributes}")
        })?;
    }
    // The answer was lost: the retry has no cookie either, and still makes no second order.
    let retry = order(env, first_key, BODY, &[])?;
    check(retry.header("idempotent-replayed") == Some("true"), || {
        format!("retry: {} {:?}", retry.status, retry.headers)
    })?;
    check(guest_cookie(&retry)?.0 == alice, || {
        "the retry opened another session".into()
    })?;
    check(orders_with_key(env, first_key)? == 1, || {
        "a second order".into()
    })?;

    let bob_key = "e2e-order-key-guest-b-1";
    let bob_first = order(env, bob_key, BODY, &[])?;
    check(bob_first.status == 201, || bob_first.text())?;
    let (bob, _) = guest_cookie(&bob_first)?;
    check(bob != alice, || "two shoppers share a session".into())?;

    // With the cookie, no new session; the order joins Alice's.
    let second = order(env, "e2e-order-key-guest-a-2", BODY, &[("cookie", &alice)])?;
    check(second.status == 201, || second.text())?;
    check(guest_cookie(&second).is_err(), || {
        "a session was opened again".into()
    })?;

    let alice_ids = history_ids(env, &alice)?;
    let bob_ids = history_ids(env, &bob)?;
    check(alice_ids.len() == 2 && bob_ids.len() == 1, || {
        format!("alice {alice_ids:?}, bob {bob_ids:?}")
    })?;
    check(alice_ids.iter().all(|id| !bob_ids.contains(id)), || {
        format!("shared orders: alice {alice_ids:?}, bob {bob_ids:?}")
    })?;

    let mut forged = alice.clone();
    let last = forged
        .pop()
        .map_or('0', |c| if c == '0' { '1' } else { '0' });
    forged.push(last);
    for (who, cookie) in [
        ("the address alone", None),
        ("a forged cookie", Some(forged.as_str())),
    ] {
        let r = history(env, cookie)?;
        check(r.status == 401, || {
            format!("{who}: {} {}", r.status, r.text())
        })?;
    }
    Ok(())
}

/// The `IDEMPOTENCY` objects keep their records in Durable Object storage: a new isolate (the
/// edge restarted, its memory gone) answers a retry from the record, without the origin. A
/// keyed product update, since orders here are kept only 5 s and a restart takes longer.
fn a_record_survives_an_edge_restart(env: &Env) -> Result<(), String> {
    let auth = format!("Bearer {ORIGIN_ADMIN_TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", "e2e-record-survives-restart-1"),
    ];
    let body = Some(r#"{"name": "Kept across a restart"}"#);
    let first = env.send("PUT", "/api/products/9041", &headers, body)?;
    check(first.status == 200 && !replayed(&first), || {
        format!("first: {} {}", first.status, first.text())
    })?;
    env.restart_edge()?;
    let before = env.proxy.heads("PUT /api/products/9041 ").len();
    let again = env.send("PUT", "/api/products/9041", &headers, body)?;
    check(again.status == 200 && replayed(&again), || {
        format!("after the restart: {} {:?}", again.status, again.headers)
    })?;
    check(again.body == first.body, || "replayed body differs".into())?;
    let sent = env.proxy.heads("PUT /api/products/9041 ").len() - before;
    check(sent == 0, || format!("{sent} PUT(s) reached the origin"))
}
