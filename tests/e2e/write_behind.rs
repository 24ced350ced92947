//! Write-behind: views and votes answered `202` by the edge, queued on `EVENTS` (Miniflare's
//! queue simulation), batched by the consumer to the real origin, and counted in its
//! `product_stats`. "Exactly once" is read from the origin's database, never inferred from
//! answers; every wait polls that database (or the dead-letter list) against a deadline.
//!
//! The harness gives the consumer 4 attempts with 1-2 s of backoff, and the queue waits up to
//! 2 s to fill a batch, so an outage exhausts a message in about 12 s. Each case uses products
//! of its own.

use crate::harness::{EDGE_ADMIN_TOKEN, Env, Reply, WRITE_BEHIND_MAX_ATTEMPTS};
use crate::proxy::Mode;
use breakwater_origin::Db;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub const CASES: [(&str, crate::Case); 6] = [
    (
        "write_behind::invalid_events_are_refused_before_queueing",
        invalid_events_are_refused_before_queueing,
    ),
    (
        "write_behind::events_are_counted_exactly_once",
        events_are_counted_exactly_once,
    ),
    (
        "write_behind::a_poison_event_is_dead_lettered_at_once",
        a_poison_event_is_dead_lettered_at_once,
    ),
    (
        "write_behind::a_redelivered_batch_changes_nothing",
        a_redelivered_batch_changes_nothing,
    ),
    (
        "write_behind::an_outage_delays_but_loses_nothing",
        an_outage_delays_but_loses_nothing,
    ),
    (
        "write_behind::exhausted_events_are_listed_and_replayed_once",
        exhausted_events_are_listed_and_replayed_once,
    ),
];

/// The longest any wait here takes before it fails.
pub const DEADLINE: Duration = Duration::from_secs(25);

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// Polls `done` every 100 ms until it holds or `limit` passes.
pub fn wait_for(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> Result<bool, String>,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if done()? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!("{what}: not within {} s", limit.as_secs()));
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stats {
    views: i64,
    upvotes: i64,
    downvotes: i64,
}

impl Stats {
    fn add(&mut self, kind: &str, value: i64) {
        match (kind, value) {
            ("views", _) => self.views += 1,
            (_, 1) => self.upvotes += 1,
            _ => self.downvotes += 1,
        }
    }
}

fn sqlite(env: &Env) -> Result<&sqlx::SqlitePool, String> {
    match &env.origin_db {
        Db::Sqlite(pool) => Ok(pool),
        Db::Postgres(_) => Err("the e2e origin runs on SQLite".into()),
    }
}

/// The origin's `product_stats` row for `product` (zeros when there is none).
fn stats(env: &Env, product: i64) -> Result<Stats, String> {
    let pool = sqlite(env)?;
    let row: Option<(i64, i64, i64)> = env
        .rt
        .block_on(
            sqlx::query_as(
                "SELECT views, upvotes, downvotes FROM product_stats WHERE product_id = ?",
            )
            .bind(product)
            .fetch_optional(pool),
        )
        .map_err(|e| e.to_string())?;
    let (views, upvotes, downvotes) = row.unwrap_or_default();
    Ok(Stats {
        views,
        upvotes,
        downvotes,
    })
}

/// Every event id the origin has applied, with the batch that applied it.
fn processed(env: &Env) -> Result<HashMap<String, String>, String> {
    let pool = sqlite(env)?;
    let rows: Vec<(String, String)> = env
        .rt
        .block_on(sqlx::query_as("SELECT event_id, batch_id FROM processed_events").fetch_all(pool))
        .map_err(|e| e.to_string())?;
    Ok(rows.into_iter().collect())
}

/// How many times the origin received batch `id` (0 if never).
fn deliveries(env: &Env, batch_id: &str) -> Result<i64, String> {
    let pool = sqlite(env)?;
    let row: Option<(i64,)> = env
        .rt
        .block_on(
            sqlx::query_as("SELECT deliveries FROM event_batches WHERE batch_id = ?")
                .bind(batch_id)
                .fetch_optional(pool),
        )
        .map_err(|e| e.to_string())?;
    Ok(row.map_or(0, |r| r.0))
}

/// Runs `during` with the proxy in `mode`, then puts it back to `Pass` whatever happened.
fn with_fault<T>(
    env: &Env,
    mode: Mode,
    during: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    env.proxy.set(mode);
    let outcome = during();
    env.proxy.set(Mode::Pass);
    outcome
}

fn all_processed(env: &Env, ids: &[String]) -> Result<bool, String> {
    let done = processed(env)?;
    Ok(ids.iter().all(|id| done.contains_key(id)))
}

/// Sends one event; it must be answered `202 {"event_id", "status": "queued"}`, `no-store`.
pub fn send_event(env: &Env, kind: &str, product: i64, value: i64) -> Result<String, String> {
    send_event_with(env, kind, product, value, &[])
}

fn send_event_with(
    env: &Env,
    kind: &str,
    product: i64,
    value: i64,
    extra: &[(&str, &str)],
) -> Result<String, String> {
    let path = format!("/api/products/{product}/{kind}");
    let body = (kind == "votes").then(|| json!({ "value": value }).to_string());
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(extra);
    let r = env.send("POST", &path, &headers, body.as_deref())?;
    check(r.status == 202, || {
        format!("{path}: {} {}", r.status, r.text())
    })?;
    check(r.header("cache-control") == Some("no-store"), || {
        format!("{path}: cache-control {:?}", r.header("cache-control"))
    })?;
    let answer = r.json()?;
    check(answer["status"] == "queued", || format!("{path}: {answer}"))?;
    answer["event_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{path}: no event_id in {answer}"))
}

fn admin(env: &Env, method: &str, path: &str, body: Option<&str>) -> Result<Reply, String> {
    let auth = format!("Bearer {EDGE_ADMIN_TOKEN}");
    env.send(
        method,
        path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body,
    )
}

/// The dead-letter list, by id.
pub fn dead_letters(env: &Env) -> Result<HashMap<String, Value>, String> {
    let r = admin(env, "GET", "/_breakwater/dead-events?limit=1000", None)?;
    check(r.status == 200, || {
        format!("dead-events: {} {}", r.status, r.text())
    })?;
    let page = r.json()?;
    let list = page["dead_events"]
        .as_array()
        .ok_or_else(|| format!("dead-events: {page}"))?;
    Ok(list
        .iter()
        .filter_map(|d| Some((d["id"].as_str()?.to_owned(), d.clone())))
        .collect())
}

/// A request the edge must refuse: path, headers, body, status, problem type.
type Refusal<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
    u16,
    &'a str,
);

fn invalid_events_are_refused_before_queueing(env: &Env) -> Result<(), String> {
    let json = [("content-type", "application/json")];
    let big = format!(r#"{{"value": 1, "pad": "{}"}}"#, "x".repeat(2000));
    let cases: [Refusal; 9] = [
        (
            "/api/products/abc/views",
            &[],
            None,
            400,
            "invalid-product-id",
        ),
        (
            "/api/products/0/views",
            &[],
            None,
            400,
            "invalid-product-id",
        ),
        (
            "/api/products/1/views",
            &json,
            Some(r#"{"value": 1}"#),
            422,
            "invalid-event",
        ),
        (
            "/api/products/1/votes",
            &[],
            Some(r#"{"value": 1}"#),
            415,
            "unsupported-media-type",
        ),
        (
            "/api/products/1/votes",
            &json,
            Some(r#"{"value": 2}"#),
            422,
            "invalid-event",
        ),
        (
            "/api/products/1/votes",
            &json,
            Some(r#"{"value": 1, "x": 1}"#),
            422,
            "invalid-event",
        ),
        (
            "/api/products/1/votes",
            &json,
            Some(r#"{"value": "#),
            400,
            "malformed-json",
        ),
        ("/api/products/1/votes", &json, None, 400, "malformed-json"),
        (
            "/api/products/1/votes",
            &json,
            Some(big.as_str()),
            413,
            "body-too-large",
        ),
    ];
    for (path, headers, body, status, kind) in cases {
        let r = env.send("POST", path, headers, body)?;
        let problem = r.json()?;
        check(r.status == status, || {
            format!("{path} {body:?}: {} {problem}", r.status)
        })?;
        check(
            r.header("content-type") == Some("application/problem+json"),
            || format!("{path}: {:?}", r.header("content-type")),
        )?;
        check(
            problem["type"].as_str().is_some_and(|t| t.ends_with(kind)),
            || format!("{path} {body:?}: {problem}"),
        )?;
    }
    // The admin endpoints take the admin token, like the purge endpoint.
    let r = env.get("/_breakwater/dead-events", &[])?;
    check(r.status == 401, || format!("no token: {}", r.status))?;
    let r = env.get(
        "/_breakwater/dead-events",
        &[("authorization", "Bearer wrong")],
    )?;
    check(r.status == 401, || format!("wrong token: {}", r.status))?;
    let r = admin(env, "POST", "/_breakwater/dead-events", None)?;
    check(r.status == 405, || format!("POST list: {}", r.status))?;
    for bad in [r#"{}"#, r#"{"all": false}"#, r#"{"ids": []}"#, "nope"] {
        let r = admin(env, "POST", "/_breakwater/dead-events/replay", Some(bad))?;
        check(r.status == 400, || {
            format!("replay {bad}: {} {}", r.status, r.text())
        })?;
    }
    Ok(())
}

fn events_are_counted_exactly_once(env: &Env) -> Result<(), String> {
    const PRODUCTS: [i64; 3] = [101, 102, 103];
    let mut expected: HashMap<i64, Stats> = HashMap::new();
    let mut ids = Vec::new();
    let started = Instant::now();
    for i in 0..60usize {
        let product = PRODUCTS[i % 3];
        let (kind, value) = match i % 4 {
            0 | 2 => ("views", 1),
            1 => ("votes", 1),
            _ => ("votes", -1),
        };
        ids.push(send_event(env, kind, product, value)?);
        expected.entry(product).or_default().add(kind, value);
    }
    let accepted = started.elapsed();
    // A retried vote with the same Idempotency-Key is the same event: counted once.
    let key = [("idempotency-key", "\"e2e-write-behind-vote\"")];
    let first = send_event_with(env, "votes", PRODUCTS[0], 1, &key)?;
    let again = send_event_with(env, "votes", PRODUCTS[0], 1, &key)?;
    check(first == again, || format!("{first} then {again}"))?;
    expected.entry(PRODUCTS[0]).or_default().add("votes", 1);
    ids.push(first);
    let unique: HashSet<&String> = ids.iter().collect();
    check(unique.len() == ids.len(), || "event ids repeat".into())?;

    let waited = wait_for("all 61 events applied", DEADLINE, || {
        all_processed(env, &ids)
    })?;
    eprintln!(
        "    61 events (+1 repeat) answered 202 in {} ms; all applied {} ms later",
        accepted.as_millis(),
        waited.as_millis()
    );
    expect_counts(env, &expected)
}

fn a_poison_event_is_dead_lettered_at_once(env: &Env) -> Result<(), String> {
    let id = send_event(env, "views", 99_999_999, 1)?;
    let waited = wait_for("the poison event in the dead-letter list", DEADLINE, || {
        Ok(dead_letters(env)?.contains_key(&id))
    })?;
    let letter = dead_letters(env)?.remove(&id).unwrap_or_default();
    eprintln!(
        "    dead-lettered after {} ms: {}",
        waited.as_millis(),
        letter["reason"]
    );
    check(letter["attempts"] == 1, || format!("{letter}"))?;
    let reason = letter["reason"].as_str().unwrap_or_default();
    check(
        reason.starts_with("rejected by the origin") && reason.contains("does not exist"),
        || format!("reason: {reason}"),
    )?;
    check(letter["message"]["event"]["id"] == id.as_str(), || {
        format!("{letter}")
    })?;
    // It was acked when it was dead-lettered: its one-event batch reached the origin once.
    let event_id = breakwater_core::writebehind::EventId::parse(&id)?;
    let batch = breakwater_core::writebehind::batch_id([&event_id]);
    check(deliveries(env, &batch)? == 1, || {
        format!(
            "batch {batch} delivered {} times",
            deliveries(env, &batch).unwrap_or(-1)
        )
    })?;
    check(!processed(env)?.contains_key(&id), || {
        "the poison event was applied".into()
    })
}

fn a_redelivered_batch_changes_nothing(env: &Env) -> Result<(), String> {
    const PRODUCT: i64 = 131;
    let posts = env.proxy.posts();
    // The origin commits the batch, and the edge never hears it did.
    let ids = with_fault(env, Mode::DropResponse, || {
        let ids = (0..5)
            .map(|_| send_event(env, "views", PRODUCT, 1))
            .collect::<Result<Vec<String>, String>>()?;
        wait_for("the first delivery applied", DEADLINE, || {
            Ok(env.proxy.posts() > posts && all_processed(env, &ids)?)
        })?;
        Ok(ids)
    })?;
    let batches: HashSet<String> = {
        let done = processed(env)?;
        ids.iter().map(|id| done[id].clone()).collect()
    };
    wait_for("the same batch delivered again", DEADLINE, || {
        for batch in &batches {
            if deliveries(env, batch)? < 2 {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    eprintln!("    {} batch(es) delivered twice", batches.len());
    let got = stats(env, PRODUCT)?;
    check(got.views == 5, || format!("{got:?} after a redelivery"))?;
    let dead = dead_letters(env)?;
    check(ids.iter().all(|id| !dead.contains_key(id)), || {
        "a redelivered event was dead-lettered".into()
    })
}

fn an_outage_delays_but_loses_nothing(env: &Env) -> Result<(), String> {
    const PRODUCTS: [i64; 2] = [111, 112];
    let refused = env.proxy.refused();
    let (ids, expected) = with_fault(env, Mode::Refuse, || {
        let mut expected: HashMap<i64, Stats> = HashMap::new();
        let mut ids = Vec::new();
        for i in 0..20usize {
            let product = PRODUCTS[i % 2];
            let (kind, value) = if i % 3 == 0 {
                ("votes", -1)
            } else {
                ("views", 1)
            };
            ids.push(send_event(env, kind, product, value)?);
            expected.entry(product).or_default().add(kind, value);
        }
        wait_for("a failed delivery", DEADLINE, || {
            Ok(env.proxy.refused() > refused)
        })?;
        check(!all_processed(env, &ids)?, || {
            "applied during the outage".into()
        })?;
        Ok((ids, expected))
    })?;
    let failed = env.proxy.refused() - refused;
    let waited = wait_for("every event applied after the outage", DEADLINE, || {
        all_processed(env, &ids)
    })?;
    eprintln!(
        "    {failed} refused connection(s); all 20 events applied {} ms after the origin came back",
        waited.as_millis()
    );
    expect_counts(env, &expected)?;
    let dead = dead_letters(env)?;
    check(ids.iter().all(|id| !dead.contains_key(id)), || {
        "an event was dead-lettered during a short outage".into()
    })
}

fn exhausted_events_are_listed_and_replayed_once(env: &Env) -> Result<(), String> {
    const PRODUCTS: [i64; 2] = [121, 122];
    let (ids, expected) = with_fault(env, Mode::Refuse, || {
        let mut expected: HashMap<i64, Stats> = HashMap::new();
        let mut ids = Vec::new();
        for i in 0..6usize {
            let product = PRODUCTS[i % 2];
            let (kind, value) = if i < 2 { ("votes", 1) } else { ("views", 1) };
            ids.push(send_event(env, kind, product, value)?);
            expected.entry(product).or_default().add(kind, value);
        }
        let waited = wait_for("all six dead-lettered", DEADLINE, || {
            let dead = dead_letters(env)?;
            Ok(ids.iter().all(|id| dead.contains_key(id)))
        })?;
        eprintln!(
            "    dead-lettered after {} attempts, {} ms",
            WRITE_BEHIND_MAX_ATTEMPTS,
            waited.as_millis()
        );
        Ok((ids, expected))
    })?;
    let dead = dead_letters(env)?;
    for id in &ids {
        let letter = &dead[id];
        check(letter["attempts"] == WRITE_BEHIND_MAX_ATTEMPTS, || {
            format!("{letter}")
        })?;
        let reason = letter["reason"].as_str().unwrap_or_default();
        let prefix = format!("gave up after {WRITE_BEHIND_MAX_ATTEMPTS} attempts; last error: ");
        check(reason.starts_with(&prefix), || format!("reason: {reason}"))?;
    }
    for product in PRODUCTS {
        check(stats(env, product)? == Stats::default(), || {
            format!("product {product} counted during the outage")
        })?;
    }

    let body = json!({ "ids": ids }).to_string();
    let r = admin(env, "POST", "/_breakwater/dead-events/replay", Some(&body))?;
    let answer = r.json()?;
    check(r.status == 200 && answer["replayed"] == 6, || {
        format!("replay: {} {answer}", r.status)
    })?;
    check(answer["not_found"] == json!([]), || format!("{answer}"))?;
    wait_for("the replayed events applied", DEADLINE, || {
        all_processed(env, &ids)
    })?;
    expect_counts(env, &expected)?;
    let dead = dead_letters(env)?;
    check(ids.iter().all(|id| !dead.contains_key(id)), || {
        "replayed dead letters are still listed".into()
    })?;
    // Replaying them again finds nothing; nothing is counted twice.
    let r = admin(env, "POST", "/_breakwater/dead-events/replay", Some(&body))?;
    let answer = r.json()?;
    check(
        answer["replayed"] == 0 && answer["not_found"].as_array().map(Vec::len) == Some(6),
        || format!("second replay: {answer}"),
    )
}

/// Each product's counts at the origin are those `expected` holds.
fn expect_counts(env: &Env, expected: &HashMap<i64, Stats>) -> Result<(), String> {
    for (&product, want) in expected {
        let got = stats(env, product)?;
        check(got == *want, || {
            format!("product {product}: {got:?}, expected {want:?}")
        })?;
    }
    Ok(())
}
