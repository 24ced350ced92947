//! The failover scenario's report: per run and phase the requests, errors and latency with
//! ratios to the single-origin run, what reached each origin, recovery and the cron, and a
//! timeline by the second.

use super::phases::{self, Phase};
use super::{CRON_EVERY, Measured, Plan};
use crate::report::{Section, Table, ms, percent, ratio, secs, tally_cell};

pub fn section(
    plan: &Plan,
    pool_vars: &[(&str, String)],
    pool: &Measured,
    single: &Measured,
) -> Section {
    let p = plan.phases;
    let shown: Vec<String> = pool_vars
        .iter()
        .map(|(name, value)| format!("`{name}={value}`"))
        .collect();
    Section {
        plots: Vec::new(),
        title: "Failover: an origin killed mid-run".into(),
        intro: vec![
            plan.workload.clone(),
            format!(
                "Edge under workerd via the Miniflare API (not wrangler dev), a fresh one per run. \
                 Origins A and B are real origins, each in-process on its own runtime and its \
                 own SQLite database seeded with the same catalogue, each behind a killable TCP \
                 relay: a kill resets every open connection and every new one (what a crashed \
                 process looks like to the edge), a restart accepts again. Phases: {} s before, \
                 {} s during (B down), {} s after (B restarted); an answer counts in the phase \
                 it arrived in. The bench is the cron: it fires the worker's `scheduled` handler \
                 every {} s through Miniflare's scheduled route, so health checks run if the \
                 edge has them. The single-origin run is the baseline: the same, with B alone in \
                 `ORIGINS`.",
                p.before.as_secs(),
                p.during.as_secs(),
                p.after.as_secs(),
                CRON_EVERY.as_secs(),
            ),
            format!(
                "Vars of the pool run: {}; everything else wrangler.toml's (`BREAKER`, \
                 `ORIGIN_TIMEOUT_MS`).",
                shown.join(", ")
            ),
        ],
        tables: vec![
            (
                "Per phase. Error rate: requests without a 2xx answer (no answer included) / \
                 requests. p50/p99: of the served answers. Ratios to the single-origin run of \
                 this bench run: p99 to its `before` p99, error rate to its `during` error rate."
                    .into(),
                phase_table(pool, single),
            ),
            (
                "What reached each origin (GET request lines its relay forwarded) and what B's \
                 relay did: connections accepted while B was down and reset at once (requests \
                 that reached the dead origin), open connections reset by the kill."
                    .into(),
                origin_table(&[pool, single]),
            ),
            (
                "Recovery: from B's restart to the first request it was sent; the cron firings \
                 (`scheduled` handler runs) over each run."
                    .into(),
                recovery_table(&[pool, single]),
            ),
            (
                "Timeline: answers per second of the run, and of them without a 2xx.".into(),
                timeline_table(plan, pool, single),
            ),
        ],
    }
}

fn phase_table(pool: &Measured, single: &Measured) -> Table {
    let mut table = Table::new([
        "run",
        "phase",
        "requests",
        "req/s",
        "non-2xx",
        "error rate",
        "p50 ms",
        "p99 ms",
        "p99 / single before",
        "error rate / single during",
    ])
    .left(1)
    .left(4);
    let rate = |m: &Measured, phase: Phase| {
        let s = &m.summaries[phase.index()];
        phases::error_rate(s.non_2xx_count(), s.requests)
    };
    let single_before_p99 = single.summaries[Phase::Before.index()].p(99.0).map(secs);
    let single_during_rate = rate(single, Phase::During);
    for m in [pool, single] {
        for phase in Phase::ALL {
            let s = &m.summaries[phase.index()];
            table.row(vec![
                m.name.to_owned(),
                phase.as_str().to_owned(),
                s.requests.to_string(),
                format!("{:.0}", s.throughput()),
                tally_cell(s.non_2xx_count(), &s.non_2xx),
                rate(m, phase).map_or("-".into(), percent_2),
                ms(s.p(50.0)),
                ms(s.p(99.0)),
                ratio(s.p(99.0).map(secs), single_before_p99),
                ratio(rate(m, phase), single_during_rate),
            ]);
        }
    }
    table
}

/// A share with two decimals: error rates of a pool are often well under 1%.
fn percent_2(f: f64) -> String {
    if f == 0.0 || f >= 0.1 {
        percent(f)
    } else {
        format!("{:.2}%", f * 100.0)
    }
}

fn origin_table(runs: &[&Measured]) -> Table {
    let mut table = Table::new([
        "run",
        "phase",
        "reached A",
        "reached B",
        "B refused (down)",
        "B connections reset by the kill",
    ])
    .left(1);
    for m in runs {
        for phase in Phase::ALL {
            let i = phase.index();
            table.row(vec![
                m.name.to_owned(),
                phase.as_str().to_owned(),
                m.a.map_or("-".into(), |a| a[i].gets.to_string()),
                m.b[i].gets.to_string(),
                m.b[i].refused.to_string(),
                m.b[i].reset.to_string(),
            ]);
        }
    }
    table
}

fn recovery_table(runs: &[&Measured]) -> Table {
    let mut table = Table::new([
        "run",
        "B's first request after the restart",
        "cron firings ok",
        "failed",
        "first failure",
    ])
    .left(4);
    for m in runs {
        table.row(vec![
            m.name.to_owned(),
            m.b_back_after
                .map_or("none in the run".into(), |d| format!("{} ms", ms(Some(d)))),
            m.cron.ok.to_string(),
            m.cron.failed.to_string(),
            m.cron
                .first_failure
                .as_deref()
                .map_or("-".into(), |e| format!("`{}`", e.replace('|', "/"))),
        ]);
    }
    table
}

fn timeline_table(plan: &Plan, pool: &Measured, single: &Measured) -> Table {
    let mut table = Table::new([
        "second",
        "phase",
        "pool: answers",
        "pool: non-2xx",
        "single: answers",
        "single: non-2xx",
    ])
    .left(1);
    let n = pool.seconds.len().max(single.seconds.len());
    for i in 0..n {
        let cell = |m: &Measured, f: fn(&phases::Second) -> u64| {
            m.seconds.get(i).map_or("-".into(), |s| f(s).to_string())
        };
        let phase = plan.phases.of(std::time::Duration::from_secs(i as u64));
        table.row(vec![
            i.to_string(),
            phase.as_str().to_owned(),
            cell(pool, |s| s.requests),
            cell(pool, |s| s.non_2xx),
            cell(single, |s| s.requests),
            cell(single, |s| s.non_2xx),
        ]);
    }
    table
}
