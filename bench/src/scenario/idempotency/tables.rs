//! The idempotency scenario's part of the report: the added latency (as the limiter's), then the
//! retry storm's answers, its exactly-once check against the database, and its timings.

use std::collections::BTreeMap;
use std::time::Duration;

use super::storm::{KeyRun, Reply};
use super::{NO_ADMISSION, Plan, RECORDS_OFF, Records, StormRun, storm_vars};
use crate::report::{Run, Section, Table, latency_table, ms, ratio_table};
use crate::stats::percentile;

/// The answer columns of the storm, in order (as [`Reply::column`] names them).
const COLUMNS: [&str; 7] = [
    "201 fresh",
    "201 replayed",
    "422",
    "409",
    "5xx",
    "no answer",
    "other",
];
/// Problem keys shown on stderr per kind of problem.
const SHOWN_KEYS: usize = 10;

/// The section; `concurrency` is the loaded latency pass's.
pub fn section(
    plan: &Plan,
    concurrency: usize,
    latency: &[[Run; 2]],
    storms: &[StormRun],
) -> Section {
    let storm = &plan.storm;
    let on_vars: Vec<String> = storm_vars(storm, Records::On)
        .into_iter()
        .map(|(name, value)| format!("`{name}={value}`"))
        .collect();
    let mut tables = vec![(String::new(), latency_table(latency.iter().flatten()))];
    if let [off, on] = latency {
        tables.push((
            "Records on / records off, same run and concurrency: latency added by the edge's \
             `IDEMPOTENCY` records (a claim before the origin call, the one Durable Object round \
             trip the client waits on; the answer is kept as the response goes back), difference \
             and ratio, and throughput"
                .to_owned(),
            ratio_table([0, 1].map(|pass| (&on[pass], &off[pass].summary)), true),
        ));
    }
    tables.extend([
        (
            "Retry storm: every send's answer (201 fresh = this send placed the order; \
             replayed = `Idempotent-Replayed: true`, from the edge's record or the origin's)"
                .to_owned(),
            answers_table(storms),
        ),
        (
            "Retry storm: exactly once, checked in the origin's database (orders carrying each \
             key, `order::count_with_key`)"
                .to_owned(),
            exactly_once_table(storms),
        ),
        (
            "Retry storm: time from a key's first send to its first 201 (waits included), each \
             send's latency, and what the fault relay did"
                .to_owned(),
            timing_table(storms),
        ),
    ]);
    for run in storms {
        report_problems(run);
    }
    let client = &storm.client;
    Section {
        plots: Vec::new(),
        title: "Idempotency".into(),
        intro: vec![
            format!(
                "Added latency: `POST {}` with `{{\"items\": [{{\"product_id\": N, \
                 \"quantity\": 1}}]}}` (N seeded over 1..={}) and a fresh `Idempotency-Key` \
                 each, through two fresh edges: records on (wrangler.toml's \
                 `IDEMPOTENCY_POLICY`) and records off (`IDEMPOTENCY_POLICY={RECORDS_OFF}`: keys \
                 go to the origin alone, which still requires and dedupes them); both \
                 `ADMISSION={NO_ADMISSION}`. After untimed warm-up orders: {} orders one at a \
                 time, then {} at {} in flight. Every order reaches the origin (offload 0%).",
                super::ORDERS,
                plan.products,
                plan.serial,
                plan.loaded,
                concurrency,
            ),
            format!(
                "Retry storm: {} distinct keys (one order each), {} keys at a time. Each key is \
                 sent {} times when nothing fails: {} copies at once, then one after another; \
                 a key without a terminal answer (201 or 422) is retried, after the longest \
                 `Retry-After` of a 409, 429 or 503 it was given, else after an exponential \
                 backoff from 100 ms (equal jitter, at most 2 s; the edge's `Retry-After: 5` on \
                 a 502/504 is not waited for), and given up {} s after its first send. \
                 Between edge and origin a TCP relay refuses {:.0}% of POSTs (the connection \
                 closes before the request is forwarded: origin unreachable) and \
                 drops {:.0}% of the origin's answers (the order is committed, the edge never \
                 hears: the worst case), drawn per POST from seed {} in arrival order. Each \
                 storm has a fresh edge and relay. Records on: {}. Records off: the same with \
                 `IDEMPOTENCY_POLICY={RECORDS_OFF}`.",
                storm.keys,
                client.keys_in_flight,
                client.attempts,
                client.concurrent.min(client.attempts),
                client.deadline.as_secs(),
                storm.faults.refuse * 100.0,
                storm.faults.drop_response * 100.0,
                storm.faults.seed,
                on_vars.join(" "),
            ),
        ],
        tables,
    }
}

fn answers_table(storms: &[StormRun]) -> Table {
    let mut table = Table::new(
        ["edge", "keys", "sends"]
            .into_iter()
            .chain(COLUMNS)
            .chain(["5xx and other by kind"]),
    )
    .left(3 + COLUMNS.len());
    for run in storms {
        let mut columns: BTreeMap<&str, u64> = BTreeMap::new();
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for sent in run.runs.iter().flat_map(|k| &k.sends) {
            *columns.entry(sent.reply.column()).or_default() += 1;
            if matches!(sent.reply, Reply::ServerError(..) | Reply::Other(_)) {
                *kinds.entry(sent.reply.detail()).or_default() += 1;
            }
        }
        let sends: u64 = columns.values().sum();
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        let mut row = vec![
            run.records.as_str().to_owned(),
            run.keys.len().to_string(),
            sends.to_string(),
        ];
        row.extend(COLUMNS.map(|c| columns.get(c).copied().unwrap_or(0).to_string()));
        row.push(if kinds.is_empty() {
            "-".into()
        } else {
            kinds.join(", ")
        });
        table.row(row);
    }
    table
}

/// What the database says about one storm.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Keys that got a 201 (fresh or replayed).
    created: usize,
    /// Keys given up at the deadline without a terminal answer.
    gave_up: usize,
    /// Keys that ended on a 422 or another 4xx without a 201.
    refused: usize,
    orders: i64,
    /// Keys with more than one order.
    duplicated: usize,
    /// Keys with a 201 and no order, and keys with an order and no 201.
    created_without_order: usize,
    order_without_created: usize,
}

impl Tally {
    fn of(runs: &[KeyRun], orders: &[i64]) -> Self {
        let mut t = Self::default();
        for (run, &n) in runs.iter().zip(orders) {
            let created = run.got_created();
            t.created += usize::from(created);
            t.gave_up += usize::from(run.terminal_after.is_none());
            t.refused += usize::from(run.terminal_after.is_some() && !created);
            t.orders += n;
            t.duplicated += usize::from(n > 1);
            t.created_without_order += usize::from(created && n == 0);
            t.order_without_created += usize::from(!created && n > 0);
        }
        t
    }

    /// Exactly once: one order per key that was told it has one, none twice.
    fn holds(&self) -> bool {
        self.orders == self.created as i64 && self.duplicated == 0
    }
}

fn exactly_once_table(storms: &[StormRun]) -> Table {
    let mut table = Table::new([
        "edge",
        "keys with a 201",
        "gave up (no terminal answer)",
        "ended on 422/4xx",
        "orders created",
        "keys with > 1 order",
        "201 but no order",
        "order but no 201",
        "orders == keys with a 201, 0 duplicates",
    ])
    .left(8);
    for run in storms {
        let t = Tally::of(&run.runs, &run.orders);
        table.row(vec![
            run.records.as_str().to_owned(),
            t.created.to_string(),
            t.gave_up.to_string(),
            t.refused.to_string(),
            t.orders.to_string(),
            t.duplicated.to_string(),
            t.created_without_order.to_string(),
            t.order_without_created.to_string(),
            if t.holds() { "yes" } else { "**NO**" }.to_owned(),
        ]);
    }
    table
}

fn timing_table(storms: &[StormRun]) -> Table {
    let mut table = Table::new([
        "edge",
        "wall s",
        "to 201 p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "send p50 ms",
        "send p99 ms",
        "POSTs at relay",
        "refused",
        "answers dropped",
    ]);
    for run in storms {
        let mut to_created: Vec<Duration> = run
            .runs
            .iter()
            .filter(|k| k.got_created())
            .filter_map(|k| k.terminal_after)
            .collect();
        to_created.sort_unstable();
        let mut sends: Vec<Duration> = run
            .runs
            .iter()
            .flat_map(|k| &k.sends)
            .filter(|s| s.reply != Reply::NoAnswer)
            .map(|s| s.latency)
            .collect();
        sends.sort_unstable();
        table.row(vec![
            run.records.as_str().to_owned(),
            format!("{:.1}", run.wall.as_secs_f64()),
            ms(percentile(&to_created, 50.0)),
            ms(percentile(&to_created, 95.0)),
            ms(percentile(&to_created, 99.0)),
            ms(to_created.last().copied()),
            ms(percentile(&sends, 50.0)),
            ms(percentile(&sends, 99.0)),
            run.relay.posts.to_string(),
            run.relay.refused.to_string(),
            run.relay.dropped.to_string(),
        ]);
    }
    table
}

/// Names the keys that broke exactly once or never got an answer, with what they were told, on
/// stderr (the report has the counts).
fn report_problems(run: &StormRun) {
    let mut problems: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((key, k), &orders) in run.keys.iter().zip(&run.runs).zip(&run.orders) {
        let created = k.got_created();
        let problem = if orders > 1 {
            "more than one order"
        } else if created && orders == 0 {
            "a 201 but no order"
        } else if !created && orders > 0 {
            "an order but no 201"
        } else if k.terminal_after.is_none() {
            "no terminal answer"
        } else {
            continue;
        };
        problems
            .entry(problem)
            .or_default()
            .push(format!("{key} ({orders} orders): {}", k.history()));
    }
    let slowest = run
        .keys
        .iter()
        .zip(&run.runs)
        .filter_map(|(key, k)| Some((k.terminal_after?, key, k)))
        .max_by_key(|(after, ..)| *after);
    if let Some((after, key, k)) = slowest {
        eprintln!(
            "    retry storm, {}: slowest key {key}, terminal after {} ms: {}",
            run.records.as_str(),
            after.as_millis(),
            k.history()
        );
    }
    for (problem, keys) in problems {
        eprintln!(
            "    retry storm, {}: {} keys with {problem}",
            run.records.as_str(),
            keys.len()
        );
        for key in keys.iter().take(SHOWN_KEYS) {
            eprintln!("      {key}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_once_needs_one_order_per_created_key_and_no_duplicate() {
        let runs = vec![
            KeyRun::of(vec![Reply::InFlight]),
            KeyRun::of(vec![Reply::Mismatch]),
            KeyRun::of(vec![Reply::NoAnswer, Reply::Replayed]),
        ];
        let t = Tally::of(&runs, &[0, 0, 1]);
        assert_eq!((t.gave_up, t.refused, t.created, t.orders), (1, 1, 1, 1));
        assert!(t.holds());
        let t = Tally::of(&runs, &[1, 0, 1]);
        assert_eq!(t.order_without_created, 1);
        assert!(!t.holds());
        let t = Tally::of(&runs, &[0, 0, 0]);
        assert_eq!(t.created_without_order, 1);
        assert!(!t.holds());
        let t = Tally::of(&runs, &[0, 0, 2]);
        assert_eq!(t.duplicated, 1);
        assert!(!t.holds());
    }
}
